"""Units of the training path: metrics, batching, W&B mode choice."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning_fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import DataLoader

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.evaluation import check_labels
from bigbird_genomics.inference.metrics import compute_metrics
from bigbird_genomics.model.encoder import EncoderConfig
from bigbird_genomics.training.app import optimized_value
from bigbird_genomics.training.config_checks import ConfigError
from bigbird_genomics.training.datamodule import BlockPadCollator, LengthBucketBatchSampler
from bigbird_genomics.training.wandb_setup import choose_mode


def test_binary_metrics_on_known_predictions() -> None:
    probs = np.array([0.9, 0.8, 0.3, 0.2, 0.6])
    targets = np.array([1, 1, 0, 0, 0])
    scalars, per_label = compute_metrics("binary", probs, targets)
    assert scalars["auroc"] == pytest.approx(1.0)
    assert scalars["accuracy"] == pytest.approx(0.8)
    assert scalars["f1"] == pytest.approx(0.8)
    assert per_label == {}
    assert math.isnan(compute_metrics("binary", probs, np.ones(5))[0]["auroc"])


def test_multilabel_metrics_per_profile_and_group() -> None:
    targets = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 1, 1]])
    probs = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.5], [0.8, 0.1, 0.5], [0.2, 0.4, 0.5]])
    groups = {"CTCF": "TF", "GATA1": "TF", "DNase": "DHS"}
    scalars, per_label = compute_metrics(
        "multilabel", probs, targets, ["CTCF", "GATA1", "DNase"], groups
    )
    assert per_label["CTCF"]["auroc"] == pytest.approx(1.0)
    assert per_label["GATA1"]["auroc"] == pytest.approx(1.0)
    assert math.isnan(per_label["DNase"]["auroc"])  # all positive: undefined, left out
    assert per_label["DNase"]["positives"] == 4
    assert scalars["auroc_mean"] == pytest.approx(1.0)
    assert scalars["profiles_scored"] == 2
    assert scalars["group/TF/auroc_median"] == pytest.approx(1.0)
    assert math.isnan(scalars["group/DHS/auroc_mean"])


def test_bucketed_batches_are_seeded_sharded_and_similar_in_length() -> None:
    lengths = np.random.default_rng(0).integers(10, 500, size=1000)
    sampler = LengthBucketBatchSampler(lengths, 25, shuffle=True, seed=3)
    first = list(sampler)
    assert sorted(i for batch in first for i in batch) == list(range(1000))
    assert first == list(LengthBucketBatchSampler(lengths, 25, shuffle=True, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != first
    spread = np.mean([np.ptp(lengths[b]) for b in first])
    assert spread < 0.2 * np.ptp(lengths)  # bucketing: far less spread than random batches
    ranks = [
        list(LengthBucketBatchSampler(lengths, 25, shuffle=True, seed=3, num_replicas=3, rank=r))
        for r in range(3)
    ]
    assert len({len(r) for r in ranks}) == 1  # DDP ranks step together
    seen = [i for r in ranks for batch in r for i in batch]
    assert len(seen) == len(set(seen))
    evals = [
        list(
            LengthBucketBatchSampler(
                lengths[:3], 64, shuffle=False, num_replicas=2, rank=r, equal_batches_per_rank=False
            )
        )
        for r in range(2)
    ]
    assert all(evals) and sorted(i for e in evals for b in e for i in b) == [0, 1, 2]


def padding_fraction(lengths: np.ndarray, batches: list, block_size: int) -> float:
    """Share of padded positions when each batch is padded to a multiple of the block size."""
    padded = sum(-(-lengths[b].max() // block_size) * block_size * len(b) for b in batches)
    return 1 - sum(lengths[b].sum() for b in batches) / padded


def test_bucketed_batches_pad_far_less_than_random_batches() -> None:
    # Mixed lengths, as in a data set of short reads, promoters and long windows.
    rng = np.random.default_rng(0)
    lengths = np.concatenate(
        [rng.integers(20, 100, 400), rng.integers(250, 320, 400), rng.integers(400, 513, 200)]
    )
    random_order = rng.permutation(len(lengths))
    random_batches = [random_order[i : i + 32] for i in range(0, len(lengths), 32)]
    bucketed = [np.array(b) for b in LengthBucketBatchSampler(lengths, 32, shuffle=True)]
    random_padding = padding_fraction(lengths, random_batches, 64)
    bucketed_padding = padding_fraction(lengths, bucketed, 64)
    assert random_padding > 0.4  # each random batch is padded to its longest example
    # Measured: 0.14 bucketed vs 0.55 random (what remains is rounding up to the block size).
    assert bucketed_padding < min(0.2, random_padding / 3), (bucketed_padding, random_padding)


def test_lightning_epoch_hook_reaches_the_batch_sampler() -> None:
    """Lightning calls set_epoch on `loader.batch_sampler.sampler`: each epoch a new order."""
    sampler = LengthBucketBatchSampler(np.arange(100), 10, shuffle=True, seed=0)
    loader = DataLoader(list(range(100)), batch_sampler=sampler)
    first = list(sampler)
    _set_sampler_epoch(loader, 1)  # what the fit loop does at each epoch start
    assert sampler.epoch == 1
    assert list(sampler) != first
    _set_sampler_epoch(loader, 0)
    assert list(sampler) == first  # a pure function of (seed, epoch): resume stays exact


def test_optimized_value_reads_metrics_and_names_the_key() -> None:
    metrics = {"val": {"loss": 0.5, "auroc": 0.9}, "test": {"auroc": float("nan")}}
    assert optimized_value(metrics, "val/loss") == 0.5
    with pytest.raises(ConfigError, match=r"optimized_metric=val/auprc .*val/auroc, val/loss"):
        optimized_value(metrics, "val/auprc")
    with pytest.raises(UserError, match=r"optimized_metric=test/auroc is nan"):
        optimized_value(metrics, "test/auroc")


def test_collator_pads_to_the_block_size() -> None:
    plain = EncoderConfig(vocab_size=8)
    collate = BlockPadCollator(partial(plain.pad_width, block_size=16), max_tokens=64,
                               pad_token_id=0, task_type="binary")  # fmt: skip
    items = [(0, np.array([1, 7, 8]), np.array([1.0])), (5, np.arange(1, 21), np.array([0.0]))]
    batch = collate(items)
    assert batch["tokens"].shape == (2, 32)
    assert batch["attention_mask"].sum().item() == 23
    assert batch["labels"].dtype == torch.float32 and batch["index"].tolist() == [0, 5]
    # With a pooling conv stem, no padding beyond the longest record: the stem would only
    # convolve it, and the attention pads the pooled positions to whole blocks itself.
    stem = EncoderConfig(vocab_size=8, stem_kernel=3, stem_pool=2)
    pooled = BlockPadCollator(partial(stem.pad_width, block_size=16), max_tokens=64,
                              pad_token_id=0, task_type="binary")(items)  # fmt: skip
    assert pooled["tokens"].shape == (2, 20)


def test_wandb_mode_is_offline_without_credentials(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert choose_mode(None) == "offline"
    assert choose_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert choose_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert choose_mode("online") == "offline"  # the environment wins
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # wandb's older name for offline
    assert choose_mode(None) == "offline"
    monkeypatch.setenv("WANDB_MODE", "of")
    with pytest.raises(UserError, match="WANDB_MODE='of': the W&B mode must be one of"):
        choose_mode(None)


def test_evaluation_refuses_label_columns_that_are_not_the_checkpoints() -> None:
    """Same profiles in another order would score each against the wrong column."""
    model = SimpleNamespace(task_type="multilabel", label_names=["CTCF", "DNase"])
    data = SimpleNamespace(path="tok", label_names=["DNase", "CTCF"])
    with pytest.raises(UserError, match="same labels in another order"):
        check_labels(model, data)
    data.label_names = ["CTCF"]
    with pytest.raises(UserError, match=r"1 label\(s\) \(CTCF\), but the checkpoint predicts 2"):
        check_labels(model, data)
    data.label_names = ["CTCF", "DNase"]
    check_labels(model, data)
    # one binary label may carry another name in a new data set; multiclass has class indices
    check_labels(SimpleNamespace(task_type="binary", label_names=["label"]), SimpleNamespace(
        path="tok", label_names=["promoter"]))  # fmt: skip
    with pytest.raises(UserError, match="checkpoint predicts 1"):
        check_labels(SimpleNamespace(task_type="binary", label_names=["label"]), data)
    multiclass = SimpleNamespace(task_type="multiclass", label_names=["class_0", "class_1"])
    with pytest.raises(UserError, match="has 0/1 labels but the checkpoint is a multiclass"):
        check_labels(multiclass, data)
    data.label_names, data.label_array = ["class"], np.array([[0], [1]], dtype=np.uint8)
    check_labels(multiclass, data)
    data.label_array = np.array([[0], [2]], dtype=np.uint8)
    with pytest.raises(UserError, match=r"has class 2 but the checkpoint predicts 2 classes"):
        check_labels(multiclass, data)
    with pytest.raises(UserError, match="has no labels"):
        check_labels(multiclass, SimpleNamespace(path="tok", label_names=[]))
    with pytest.raises(UserError, match=r"has class labels \(class=K\) but .* binary model"):
        check_labels(SimpleNamespace(task_type="binary", label_names=["label"]), data)
