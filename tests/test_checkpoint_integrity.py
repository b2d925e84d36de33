"""Checkpoints carry a content hash that every reader checks, and are written atomically."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
import torch
from training_support import tiny_trained_run, training_config

from bigbird_genomics.inference.checkpoint import (
    INTEGRITY_KEY,
    CheckpointError,
    checkpoint_digests,
    load_checkpoint,
    load_encoder_weights,
    read_checkpoint,
)
from bigbird_genomics.training.checkpoint_io import AtomicCheckpointIO, CheckpointSaveError
from bigbird_genomics.training.config_checks import ConfigError
from bigbird_genomics.training.run import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_trained_run(tmp_path_factory.mktemp("integrity"))


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_trained_run(tmp_path_factory.mktemp("integrity_ema"), ["callbacks.ema_decay=0.9"])


def flip_one_bit(source: Path, target: Path, part: str = "state_dict") -> str:
    """Copy a checkpoint with one bit of one weight flipped, re-saved with torch.save."""
    checkpoint = torch.load(source, weights_only=True)
    key = next(k for k in checkpoint[part] if k.startswith("network.") and k.endswith("weight"))
    checkpoint[part][key].reshape(-1).view(torch.uint8)[3] ^= 0x01
    torch.save(checkpoint, target)
    return key


def test_every_checkpoint_carries_the_hash_of_what_it_stores(tiny_run) -> None:
    _, run = tiny_run
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(run / "checkpoints" / name, weights_only=True)
        stored = checkpoint[INTEGRITY_KEY]
        assert set(stored) == {"state_dict", "hyper_parameters"}
        assert stored == checkpoint_digests(checkpoint)
        assert all(len(value) == 64 for value in stored.values())  # sha256 hex


def test_ema_checkpoint_hashes_the_averaged_and_the_raw_weights(ema_run) -> None:
    _, run = ema_run
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert "current_model_state" in checkpoint  # the EMA callback swapped averaged weights in
    assert checkpoint[INTEGRITY_KEY] == checkpoint_digests(checkpoint)
    assert set(checkpoint[INTEGRITY_KEY]) == {
        "state_dict", "current_model_state", "hyper_parameters"
    }
    load_checkpoint(run / "checkpoints" / "best.ckpt")  # and it verifies


def test_one_flipped_bit_in_a_weight_is_caught_by_every_reader(tiny_run, tmp_path: Path) -> None:
    _, run = tiny_run
    damaged = tmp_path / "damaged.ckpt"
    flip_one_bit(run / "checkpoints" / "best.ckpt", damaged)
    for read in (read_checkpoint, load_checkpoint):
        with pytest.raises(
            CheckpointError, match=r"damaged\.ckpt is corrupt: the content hash of its state_dict "
        ):
            read(damaged)
    network = load_checkpoint(run / "checkpoints" / "best.ckpt").network
    with pytest.raises(CheckpointError, match="is corrupt"):
        load_encoder_weights(network, damaged)


def test_edited_hyper_parameters_are_caught(tiny_run, tmp_path: Path) -> None:
    _, run = tiny_run
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["attention"]["num_random_blocks"] = 0
    torch.save(checkpoint, tmp_path / "edited.ckpt")
    with pytest.raises(
        CheckpointError, match="corrupt: the content hash of its hyper_parameters differs"
    ):
        load_checkpoint(tmp_path / "edited.ckpt")


def test_a_checkpoint_without_hash_loads_with_a_warning(
    tiny_run, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, run = tiny_run
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    del checkpoint[INTEGRITY_KEY]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    with caplog.at_level(logging.WARNING):
        model = load_checkpoint(tmp_path / "old.ckpt")
    assert model.task_type == "binary"
    assert "carries no content hash" in caplog.text


def test_resume_from_a_corrupt_last_checkpoint_is_refused(tiny_run, tmp_path: Path) -> None:
    dataset, run = tiny_run
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    best = (run / "checkpoints" / "best.ckpt").read_bytes()
    (copy / "checkpoints" / "best.ckpt").write_bytes(best)
    flip_one_bit(run / "checkpoints" / "last.ckpt", copy / "checkpoints" / "last.ckpt")
    config = training_config(copy, dataset, ["trainer.max_epochs=2", "ckpt_path=last",
                                              "trainer.limit_train_batches=2"])
    with pytest.raises(CheckpointError, match=r"last\.ckpt is corrupt"):
        train(config, copy)


class FullDisk(AtomicCheckpointIO):
    """Writes part of the checkpoint, then fails as a full disk does."""

    def write(self, checkpoint, stream) -> None:
        stream.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_leaves_no_checkpoint_and_one_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "best.ckpt"
    with pytest.raises(CheckpointSaveError) as caught:
        FullDisk().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    message = str(caught.value)
    assert str(target) in message and "disk full?" in message and "\n" not in message
    assert isinstance(caught.value, ConfigError)  # the CLI prints it as one line, exit 2
    assert list(target.parent.iterdir()) == []  # neither best.ckpt nor the temp file


def test_full_disk_keeps_the_earlier_checkpoint_intact(tmp_path: Path) -> None:
    target = tmp_path / "best.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    before = target.read_bytes()
    with pytest.raises(CheckpointSaveError):
        FullDisk().save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_init_from_with_damaged_hyper_parameters_is_one_line(tiny_run, tmp_path: Path) -> None:
    _, run = tiny_run
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    del checkpoint[INTEGRITY_KEY]  # an older checkpoint: nothing to catch the damage but this
    checkpoint["hyper_parameters"]["model"]["vocab_size"] = [69]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    network = load_checkpoint(run / "checkpoints" / "best.ckpt").network
    with pytest.raises(CheckpointError, match=r"old\.ckpt: its hyper-parameters are damaged"):
        load_encoder_weights(network, tmp_path / "old.ckpt")


def test_full_disk_during_training_is_one_error_and_no_cut_off_checkpoint(
    tiny_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AtomicCheckpointIO, "write", FullDisk.write)
    dataset, _ = tiny_run
    run = tmp_path / "run"
    config = training_config(run, dataset, ["trainer.max_epochs=1",
                                            "trainer.limit_train_batches=2"])
    with pytest.raises(CheckpointSaveError, match=r"cannot write checkpoint .*best\.ckpt "
                       r"\(No space left on device\); disk full\?"):
        train(config, run)
    assert list((run / "checkpoints").iterdir()) == []
