"""Training end to end on a small motif data set: the run directory contract and its readers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer
from training_support import motif_dataset, training_config

from bigbird_genomics.cli import main as cli_main
from bigbird_genomics.inference.checkpoint import load_checkpoint, load_encoder_weights
from bigbird_genomics.tokens.store import TokenizedDataset
from bigbird_genomics.training.config_checks import ConfigError
from bigbird_genomics.training.module import warmup_cosine
from bigbird_genomics.training.run import build_module, train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return motif_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def run_dir(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "promoter"
    train(training_config(run, dataset, ["trainer.max_epochs=2"]), run)
    return run


def test_run_directory_contract(run_dir: Path, dataset: Path) -> None:
    for name in ("config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
                 "metrics.json", "test_predictions.tsv", "csv/metrics.csv",
                 "plots/roc.png", "plots/pr.png", "plots/loss.png",
                 "plots/attention_layout.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in ("val", "test"):
        assert {"accuracy", "f1", "mcc", "auroc", "auprc"} <= set(metrics[split])
    assert metrics["model"]["parameters"] > 0
    assert metrics["train"]["tokens_per_s"] > 0
    rows = (run_dir / "test_predictions.tsv").read_text().splitlines()
    data = TokenizedDataset(dataset)
    assert rows[0].split("\t") == ["id", "start", "end", "true_label", "prob_label"]
    assert len(rows) - 1 == len(data.split_indices("test")) == metrics["test"]["num_examples"]


def test_checkpoint_hyperparameters_are_plain_and_load_with_weights_only(run_dir: Path) -> None:
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert type(hparams) is dict
    assert hparams["task"]["label_names"] == ["label"]
    assert hparams["tokenizer"]["k"] == 3 and hparams["attention"]["block_size"] == 16
    assert hparams["model"]["vocab_size"] == 69


def test_loaded_model_matches_the_final_metrics(run_dir: Path, dataset: Path,
                                                tmp_path: Path) -> None:
    model = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    assert (model.task_type, model.label_names, model.max_tokens) == ("binary", ["label"], 64)
    data = TokenizedDataset(dataset)
    tokens = [data.tokens(int(i)) for i in data.split_indices("test")[:5]]
    first = model.predict_proba(tokens)
    assert first.shape == (5, 1) and ((first >= 0) & (first <= 1)).all()
    np.testing.assert_array_equal(first, model.predict_proba(tokens))  # deterministic
    out = tmp_path / "eval.json"
    assert cli_main(["evaluate", "--checkpoint", str(run_dir / "checkpoints" / "best.ckpt"),
                     "--data", str(dataset), "--split", "test", "--out", str(out)]) == 0
    evaluated = json.loads(out.read_text())["test"]
    final = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert evaluated["auroc"] == pytest.approx(final["auroc"], abs=1e-6)
    assert evaluated["accuracy"] == pytest.approx(final["accuracy"], abs=1e-6)


def test_sweep_summary_command(run_dir: Path, tmp_path: Path) -> None:
    tsv, png = tmp_path / "summary.tsv", tmp_path / "summary.png"
    assert cli_main(["sweep-summary", "--runs", str(run_dir.parent), "--out-tsv", str(tsv),
                     "--out-png", str(png)]) == 0
    header, row = tsv.read_text().splitlines()
    columns = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert columns["attention.block_size"] == "16"
    assert float(columns["test_auroc"]) >= 0 and png.is_file()
    assert cli_main(["sweep-summary", "--runs", str(tmp_path / "none"), "--out-tsv",
                     str(tsv)]) == 2


def test_init_from_copies_the_encoder_only(run_dir: Path, dataset: Path, tmp_path: Path) -> None:
    config = training_config(tmp_path / "run", dataset,
                             [f"model.init_from={run_dir / 'checkpoints' / 'best.ckpt'}"])
    module = build_module(config, TokenizedDataset(dataset))
    source = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    for key, value in module.network.encoder.state_dict().items():
        torch.testing.assert_close(value, source[f"network.encoder.{key}"])
    other = training_config(tmp_path / "run2", dataset, ["model.hidden_size=32"])
    bigger = build_module(other, TokenizedDataset(dataset))
    with pytest.raises(Exception, match="model size"):
        load_encoder_weights(bigger.network, run_dir / "checkpoints" / "best.ckpt")
    # A stem-less encoder starts a run with a conv stem: all but the fresh stem is copied.
    stem = training_config(tmp_path / "run3", dataset, [
        f"model.init_from={run_dir / 'checkpoints' / 'best.ckpt'}", "model.stem_kernel=3",
        "model.stem_pool=2"])  # fmt: skip
    stem_network = build_module(stem, TokenizedDataset(dataset)).network
    for key, value in stem_network.encoder.state_dict().items():
        if not key.startswith("stem."):
            torch.testing.assert_close(value, source[f"network.encoder.{key}"])


def test_masked_lm_task_trains_and_reports_loss(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "mlm"
    metrics = train(training_config(run, dataset, ["task=mlm", "trainer.max_epochs=1"]), run)
    assert metrics["val"]["loss"] > 0 and 0 <= metrics["val"]["accuracy"] <= 1
    assert load_checkpoint(run / "checkpoints" / "best.ckpt").task_type == "mlm"


def test_warmup_cosine_schedule() -> None:
    factors = [warmup_cosine(s, warmup_steps=10, total_steps=100, min_lr_ratio=0.1)
               for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))


def test_run_that_stops_before_its_first_validation(dataset: Path, tmp_path: Path) -> None:
    """trainer.max_steps inside the first epoch: early stopping must not demand val/loss."""
    run = tmp_path / "short"
    config = training_config(
        run, dataset, ["trainer.max_steps=2", "callbacks=default", "callbacks.progress_bar=null"]
    )
    train(config, run)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "test" in json.loads((run / "metrics.json").read_text())


def test_a_time_limit_that_cuts_the_schedule_is_reported(
    dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cosine schedule spans max_epochs; a max_time that stops training first leaves it in
    warm-up (as in the first real-data accuracy runs), so the user is told."""
    module = build_module(training_config(tmp_path / "run", dataset, []), TokenizedDataset(dataset))
    module._trainer = SimpleNamespace(estimated_stepping_batches=200, callbacks=[])
    with caplog.at_level("WARNING"):
        module.configure_optimizers()
    assert "max_time" not in caplog.text
    module._trainer.callbacks = [Timer(duration="00:00:30:00")]
    with caplog.at_level("WARNING"):
        module.configure_optimizers()
    assert "trainer.max_time is set" in caplog.text and "200 steps, 20 of warm-up" in caplog.text


def test_conv_stem_and_both_strands_train_end_to_end(dataset: Path, tmp_path: Path) -> None:
    """model=small_conv's options and data.reverse_complement through the whole run: training,
    checkpoint, evaluation and the loaded model's padding rule."""
    run = tmp_path / "stem"
    config = training_config(run, dataset, [
        "model.stem_kernel=3", "model.stem_pool=2", "model.stem_layers=2",
        "data.reverse_complement=true", "trainer.max_epochs=1"])  # fmt: skip
    metrics = train(config, run)
    assert np.isfinite(metrics["test"]["auroc"])
    loaded = load_checkpoint(run / "checkpoints" / "best.ckpt")
    assert loaded.network.encoder.config.stem_pool == 2
    assert loaded.network.encoder.config.downsample == 4  # two stages went into the checkpoint
    probs = loaded.predict_proba([np.arange(5, 40), np.arange(5, 12)])
    assert probs.shape == (2, 1) and np.isfinite(probs).all()
    # trained on both strands, so scored on both, at the end of training and by `evaluate`
    assert metrics["test"]["strands"] == "both"
    for strands in ("auto", "forward"):
        out = tmp_path / f"eval_{strands}.json"
        assert cli_main(["evaluate", "--checkpoint", str(run / "checkpoints" / "best.ckpt"),
                         "--data", str(dataset), "--out", str(out), "--strands", strands]) == 0
        evaluated = json.loads(out.read_text())["test"]
        assert evaluated["strands"] == {"auto": "both"}.get(strands, strands)
        if strands == "auto":
            assert evaluated["auroc"] == pytest.approx(metrics["test"]["auroc"], abs=1e-6)


class RecordWeights(pl.Callback):
    """The raw (not averaged) parameters after every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append(
            {name: p.detach().clone() for name, p in pl_module.named_parameters()}
        )


def test_ema_decay_puts_the_averaged_weights_in_the_checkpoints(
    dataset: Path, tmp_path: Path
) -> None:
    """callbacks.ema_decay: the checkpoints (hence evaluate, predict, init_from) hold the
    exponential moving average of the weights after each step; the raw ones stay for resuming."""
    run, decay, recorder = tmp_path / "ema", 0.5, RecordWeights()
    config = training_config(run, dataset, ["trainer.max_epochs=1", f"callbacks.ema_decay={decay}"])
    train(config, run, [recorder])
    assert len(recorder.steps) == 7  # 112 training records, batches of 16
    expected = dict(recorder.steps[0])  # the average starts at the first step's weights
    for step in recorder.steps[1:]:
        expected = {name: decay * expected[name] + (1 - decay) * step[name] for name in step}
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for name, value in expected.items():
        torch.testing.assert_close(checkpoint["state_dict"][name], value, rtol=0, atol=1e-6)
        torch.testing.assert_close(
            checkpoint["current_model_state"][name], recorder.steps[-1][name], rtol=0, atol=0
        )
    assert any(not torch.equal(expected[name], recorder.steps[-1][name]) for name in expected)
    # resuming restores both: training goes on from the raw weights, the average goes on too
    resumed = RecordWeights()
    config = training_config(run, dataset, [
        "trainer.max_epochs=2", f"callbacks.ema_decay={decay}", "ckpt_path=last"])  # fmt: skip
    train(config, run, [resumed])
    assert len(resumed.steps) == 7
    for step in resumed.steps:
        expected = {name: decay * expected[name] + (1 - decay) * step[name] for name in step}
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for name, value in expected.items():
        torch.testing.assert_close(checkpoint["state_dict"][name], value, rtol=0, atol=1e-6)
    # without the callback Lightning would resume the averaged weights as the trained ones
    with pytest.raises(ConfigError, match="callbacks.ema_decay: set in the checkpoint, null now"):
        train(training_config(run, dataset, ["trainer.max_epochs=3", "ckpt_path=last"]), run)
    loaded = load_checkpoint(run / "checkpoints" / "last.ckpt")
    name = "encoder.blocks.0.attention.qkv.weight"
    torch.testing.assert_close(
        dict(loaded.network.named_parameters())[name], expected[f"network.{name}"],
        rtol=0, atol=1e-6,
    )


def test_a_new_run_beside_earlier_checkpoints_is_refused(run_dir: Path, dataset: Path) -> None:
    """Otherwise a run that fails or never validates leaves the earlier best.ckpt beside its
    own config.yaml; nothing is written before the refusal."""
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="holds checkpoints of an earlier run .*ckpt_path=last"):
        train(training_config(run_dir, dataset, ["trainer.max_epochs=1"]), run_dir)
    # resuming with a model of another shape names the settings instead of a state_dict error
    changed = ["trainer.max_epochs=3", "ckpt_path=last", "model.hidden_size=32",
               "attention.num_random_blocks=0"]  # fmt: skip
    with pytest.raises(ConfigError, match=r"model\.hidden_size: 16 in the checkpoint, 32 now; "
                                          r"attention\.num_random_blocks: 1 .*, 0 now"):
        train(training_config(run_dir, dataset, changed), run_dir)
    assert before == {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}


def test_resuming_needs_both_checkpoints(run_dir: Path, dataset: Path, tmp_path: Path) -> None:
    """Without last.ckpt there is nothing to resume; without best.ckpt the resumed run could
    not write its outputs (Lightning remembers the deleted file as the best)."""
    import shutil

    for missing, message in (("last.ckpt", "but no last.ckpt to resume from"),
                             ("best.ckpt", "best.ckpt is missing")):  # fmt: skip
        copy = tmp_path / missing
        shutil.copytree(run_dir, copy)
        (copy / "checkpoints" / missing).unlink()
        config = training_config(copy, dataset, ["trainer.max_epochs=3", "ckpt_path=last"])
        with pytest.raises(ConfigError, match=message):
            train(config, copy)


def write_class_fasta(path: Path, count: int = 150, length: int = 60) -> Path:
    """Three classes: GATTACA planted (0), CCGGAATT planted (1), neither (2); `class=K`."""
    from bigbird_genomics.io.writers import format_header, write_fasta

    rng = np.random.default_rng(5)
    records = []
    for index in range(count):
        sequence = "".join(rng.choice(list("ACGT"), size=length))
        label = index % 3
        if label < 2:
            motif = ("GATTACA", "CCGGAATT")[label]
            start = int(rng.integers(0, length - len(motif)))
            sequence = sequence[:start] + motif + sequence[start + len(motif):]
        split = "train" if index < 0.7 * count else ("val" if index < 0.85 * count else "test")
        records.append((format_header(f"c{index:04d}", {"class": label, "split": split}),
                        sequence))  # fmt: skip
    return write_fasta(path, records)


def test_multiclass_trains_from_class_labels_end_to_end(tmp_path: Path) -> None:
    """`class=K` headers -> one `class` label -> task.type=multiclass: training, checkpoint,
    evaluate and the config checks that keep class and 0/1 data apart."""
    from bigbird_genomics.tokens.build import tokenize_fasta
    from bigbird_genomics.tokens.kmers import KmerTokenizer

    data = tokenize_fasta(write_class_fasta(tmp_path / "classes.fa"), tmp_path / "tok",
                          KmerTokenizer(k=3), max_tokens=63)  # fmt: skip
    assert TokenizedDataset(data).label_names == ["class"]
    multiclass = ["task.type=multiclass", "task.num_classes=3"]
    run = tmp_path / "run"
    metrics = train(training_config(run, data, [*multiclass, "trainer.max_epochs=2"]), run)
    assert {"accuracy", "f1", "mcc", "auroc", "auprc"} <= set(metrics["test"])
    loaded = load_checkpoint(run / "checkpoints" / "best.ckpt")
    assert loaded.label_names == ["class_0", "class_1", "class_2"]
    probs = loaded.predict_proba([TokenizedDataset(data).tokens(0)])
    assert probs.shape == (1, 3) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    out = tmp_path / "eval.json"
    assert cli_main(["evaluate", "--checkpoint", str(run / "checkpoints" / "best.ckpt"),
                     "--data", str(data), "--out", str(out)]) == 0  # fmt: skip
    assert json.loads(out.read_text())["test"]["num_examples"] == metrics["test"]["num_examples"]
    with pytest.raises(ConfigError, match=r"task\.num_classes=2 but .* has class 2"):
        train(training_config(tmp_path / "r2", data, ["task.type=multiclass",
                                                      "task.num_classes=2"]), tmp_path / "r2")
    with pytest.raises(ConfigError, match="has class labels .*task.type=multiclass"):
        train(training_config(tmp_path / "r3", data, []), tmp_path / "r3")
    binary = motif_dataset(tmp_path / "binary")
    with pytest.raises(ConfigError, match="task.type=multiclass needs class labels"):
        train(training_config(tmp_path / "r4", binary, multiclass), tmp_path / "r4")


def test_bf16_mixed_training_on_cpu_runs_the_block_backend_in_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`trainer.precision=bf16-mixed` on CPU: under autocast the encoder's attention tiles
    arrive in bf16 at the block backend's CPU kernels (not a silent float32 or plain-autograd
    fallback), the weights stay float32, and the losses are finite. (The run's closing scores
    of the best checkpoint run in float32, outside autocast.)"""
    from bigbird_genomics.attention import chunked

    tile_dtypes = []
    real_kernels = chunked._kernels

    def recording(dtype: torch.dtype):  # noqa: ANN202
        tile_dtypes.append((dtype, torch.is_autocast_enabled("cpu")))
        return real_kernels(dtype)

    monkeypatch.setattr(chunked, "_kernels", recording)
    chunked.cpu_flash_available()  # its own float32 check is not the model's call
    tile_dtypes.clear()
    run = tmp_path / "run"
    config = training_config(
        run, motif_dataset(tmp_path),
        ["trainer.precision=bf16-mixed", "model.num_layers=2", "attention.backend=block",
         "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"],
    )  # fmt: skip
    train(config, run)
    under_autocast = {dtype for dtype, autocast in tile_dtypes if autocast}
    assert under_autocast == {torch.bfloat16}
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["val"]["loss"])
    weights = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert {w.dtype for w in weights.values() if w.is_floating_point()} == {torch.float32}
