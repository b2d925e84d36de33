"""Hostile input: no command overwrites its own input, every output is checked writable before
any work, training configs that cannot work are one line naming the key, and damaged
checkpoints, one-class splits, zero batch sizes and non-regular FASTA paths are clear errors."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from training_support import tiny_trained_run, training_config

from bigbird_genomics import cli
from bigbird_genomics.io import paths
from bigbird_genomics.io.writers import format_header, write_fasta
from bigbird_genomics.tokens.build import tokenize_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer
from bigbird_genomics.training.config_checks import ConfigError
from bigbird_genomics.training.run import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data set, run dir) of one real two-batch training run, shared by this module."""
    return tiny_trained_run(tmp_path_factory.mktemp("bad_inputs"))


@pytest.fixture
def checkpoint(tiny_run, tmp_path: Path) -> Path:
    """A private copy of the trained checkpoint (a test may try to overwrite it)."""
    copy = tmp_path / "model.ckpt"
    copy.write_bytes((tiny_run[1] / "checkpoints" / "best.ckpt").read_bytes())
    return copy


@pytest.fixture
def fasta(tmp_path: Path) -> Path:
    path = tmp_path / "x.fa"
    path.write_text(">a\nACGTACGTTATAATACGTACGTACGTAC\n>b\nTTTTGGGGCCCCAAAATTTTGGGGCCCC\n")
    return path


def snapshot(*items: Path) -> dict[str, bytes]:
    """Every file's bytes (folders: every file below them)."""
    files = [f for item in items for f in ([item] if item.is_file() else sorted(item.rglob("*")))]
    return {str(f): f.read_bytes() for f in files if f.is_file()}


def refused(argv: list[str], capsys, *inputs: Path) -> str:
    """Run the CLI; assert exit 2, a one-line error and byte-identical inputs; return it."""
    before = snapshot(*inputs)
    assert before
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert snapshot(*inputs) == before
    return err


# --- 1. no output may destroy an input (one test per writing command) -------------------------


def test_predict_refuses_out_equal_to_fasta_and_checkpoint(checkpoint, fasta, capsys) -> None:
    err = refused(["predict", "--checkpoint", checkpoint, "--fasta", fasta, "--out", fasta],
                  capsys, fasta, checkpoint)
    assert f"--out {fasta} is the input --fasta" in err
    err = refused(["predict", "--checkpoint", checkpoint, "--fasta", fasta, "--out",
                   fasta.with_suffix(".tsv"), "--bedgraph", checkpoint], capsys, checkpoint)
    assert "--bedgraph" in err and "--checkpoint" in err
    link = checkpoint.with_name("link.tsv")
    link.symlink_to(checkpoint)  # the same file under another name
    err = refused(["predict", "--checkpoint", checkpoint, "--fasta", fasta, "--out", link],
                  capsys, checkpoint)
    assert "is the input --checkpoint" in err


def test_evaluate_refuses_outputs_on_its_inputs(tiny_run, checkpoint, tmp_path, capsys) -> None:
    data = tiny_run[0]
    base = ["evaluate", "--checkpoint", checkpoint, "--data", data]
    err = refused([*base, "--out", checkpoint], capsys, checkpoint)
    assert "is the input --checkpoint" in err
    err = refused([*base, "--out", data / "meta.json"], capsys, data)
    assert f"is inside the input --data {data}" in err
    out = tmp_path / "m.json"
    err = refused([*base, "--out", out, "--predictions", out], capsys, checkpoint)
    assert "--out and --predictions are both" in err
    assert not out.exists()


def test_evaluate_checks_plots_before_writing_metrics(tiny_run, checkpoint, tmp_path,
                                                      capsys) -> None:
    plots = tmp_path / "plots"
    plots.write_text("a file where the plots folder goes\n")
    err = refused(["evaluate", "--checkpoint", checkpoint, "--data", tiny_run[0], "--out",
                   tmp_path / "metrics.json", "--plots", plots], capsys, plots)
    assert f"--plots {plots} is a file" in err
    assert not (tmp_path / "metrics.json").exists()  # nothing written before the refusal


def test_tokenize_refuses_to_replace_a_folder_holding_its_fasta(tiny_run, tmp_path,
                                                                capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "meta.json").write_text("{}\n")  # a data set folder, which tokenize may replace
    source = data / "in.fa"
    source.write_text(">a label=1\nACGTACGTACGT\n")
    err = refused(["tokenize", "--fasta", source, "--out", data, "--k", "3"], capsys, data)
    assert "is replaced as a whole, but the input --fasta" in err


def test_extract_refuses_out_equal_to_genome(tmp_path, capsys) -> None:
    genome = tmp_path / "genome.fa"
    genome.write_text(">chr1\n" + "ACGT" * 50 + "\n")
    bed = tmp_path / "x.bed"
    bed.write_text("chr1\t10\t20\n")
    err = refused(["extract", "--genome", genome, "--bed", bed, "--out", genome], capsys,
                  genome, bed)
    assert "--out" in err and "is the input --genome" in err


def test_build_promoters_refuses_out_equal_to_positives(fasta, capsys) -> None:
    err = refused(["build-promoters", "--positives", fasta, "--out", fasta], capsys, fasta)
    assert "is the input --positives" in err


def test_build_chromatin_refuses_an_output_on_its_input(tmp_path, fasta, capsys) -> None:
    out = tmp_path / "built"
    out.mkdir()
    positives = out / "chromatin.fa"  # the name build-chromatin writes
    positives.write_bytes(fasta.read_bytes())
    err = refused(["build-chromatin", "--positive-fasta", positives, "--negative-fasta", fasta,
                   "--out", out], capsys, positives, fasta)
    assert "is the input --positive-fasta" in err


def test_make_longrange_refuses_out_equal_to_background(fasta, capsys) -> None:
    err = refused(["make-longrange", "--background-fasta", fasta, "--out", fasta,
                   "--num-records", "4", "--length-bp", "2000"], capsys, fasta)
    assert "is the input --background-fasta" in err


def test_demo_data_refuses_a_file_as_its_folder(fasta, capsys) -> None:
    err = refused(["demo-data", "--out", fasta], capsys, fasta)
    assert f"--out {fasta} is a file, but a folder is written there" in err


def test_report_refuses_to_overwrite_an_input_in_its_folder(tmp_path, capsys) -> None:
    out = tmp_path / "report"
    out.mkdir()
    sweep = out / "summary.md"  # the name the report writes
    sweep.write_text("run\tauroc\nr1\t0.9\n")
    err = refused(["report", "--out-dir", out, "--sweep", sweep], capsys, sweep)
    assert "is the input --sweep" in err


def test_sweep_summary_refuses_to_write_into_a_run(tiny_run, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metrics.json").write_bytes((tiny_run[1] / "metrics.json").read_bytes())
    err = refused(["sweep-summary", "--runs", run, "--out-tsv", run / "metrics.json"], capsys,
                  run)
    assert f"--out-tsv {run / 'metrics.json'} is the input --runs" in err
    beside = tmp_path / "summary.tsv"  # among the runs is fine: nothing of theirs is replaced
    assert cli.main(["sweep-summary", "--runs", str(tmp_path), "--out-tsv", str(beside)]) == 0
    assert beside.is_file()


def test_validate_refuses_json_equal_to_a_fasta(fasta, capsys) -> None:
    err = refused(["validate", fasta, "--json", fasta], capsys, fasta)
    assert "--json" in err and "is the input FASTA" in err


def test_training_refuses_a_read_only_run_directory(tiny_run, tmp_path, monkeypatch) -> None:
    def read_only(folder: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(folder))

    monkeypatch.setattr(paths, "_probe_writable", read_only)
    run = tmp_path / "run"
    with pytest.raises(paths.OutputPathError, match=rf"hydra.run.dir {run}: cannot write in "
                       rf"{tmp_path} \(a read-only file system\)"):
        train(training_config(run, tiny_run[0]), run)
    assert not run.exists()


def test_guard_api(tmp_path: Path) -> None:
    """The rules the commands rely on, on the function itself."""
    source = tmp_path / "in.fa"
    source.write_text(">a\nACGT\n")
    paths.check_outputs("cmd", inputs={"--in": source}, outputs={"--out": tmp_path / "o.tsv",
                                                                 "--other": None})
    hard = tmp_path / "hard.fa"
    os.link(source, hard)
    with pytest.raises(paths.OutputPathError, match="--out .* is the input --in"):
        paths.check_outputs("cmd", inputs={"--in": source}, outputs={"--out": hard})
    with pytest.raises(paths.OutputPathError, match="below it"):
        paths.check_outputs("cmd", outputs={"--out": source / "sub" / "o.tsv"})
    with pytest.raises(paths.OutputPathError, match="is a folder, but a file"):
        paths.check_outputs("cmd", outputs={"--out": tmp_path})
    with pytest.raises(paths.OutputPathError, match="not a regular file"):
        paths.check_outputs("cmd", outputs={"--out": "/dev/null"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.fa", "in.fa"]  # probe removed


# --- 4. training configs that cannot work: one line naming the key, before any work ----------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hidden_size=0", "model.hidden_size=0 must be a whole number >= 1"),
        ("model.hidden_size=null", "model.hidden_size=null must be a whole number >= 1"),
        ("model.num_layers=0", "model.num_layers=0 must be"),
        ("model.intermediate_size=2.5", "model.intermediate_size=2.5 must be"),
        ("model.num_heads=3", "model.hidden_size=16 is not divisible by model.num_heads=3"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 trains nothing"),
        ("trainer.max_epochs=-1", "trainer.max_epochs=-1 without trainer.max_steps"),
        ("trainer.max_steps=abc", "trainer.max_steps='abc' must be a whole number"),
        ("trainer.min_epochs=5", "trainer.min_epochs=5 is more than trainer.max_epochs=1"),
        ("trainer.devices=0", "trainer.devices=0 must be >= 1"),
        ("trainer.precision=banana", "trainer.precision='banana' is not a Lightning precision"),
        ("trainer.val_check_interval=1.5", "trainer.val_check_interval=1.5 must be"),
        ("task.pos_weight=banana", "task.pos_weight='banana' must be null, auto"),
        ("task.pos_weight=3", "task.pos_weight=3 must be null, auto"),
        ("trainer.val_check_interval=1000", "trainer.val_check_interval=1000 is more than the 2 "
         "training batches"),
    ],
)
def test_config_that_cannot_train_is_one_line(tiny_run, tmp_path, override, message) -> None:
    run = tmp_path / "run"
    config = training_config(run, tiny_run[0], ["trainer.max_epochs=1",
                                                "trainer.limit_train_batches=2", override])
    with pytest.raises(ConfigError) as caught:
        train(config, run)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (run / "checkpoints").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_accelerator_without_gpu(tiny_run, tmp_path) -> None:
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match="trainer.accelerator=gpu but no CUDA GPU"):
        train(training_config(run, tiny_run[0], ["trainer.accelerator=gpu"]), run)


def write_labelled(path: Path, labels: list[int], splits: list[str]) -> Path:
    rng = np.random.default_rng(1)
    records = [
        (format_header(f"r{i}", {"label": label, "split": split}),
         "".join(rng.choice(list("ACGT"), size=60)))
        for i, (label, split) in enumerate(zip(labels, splits, strict=True))
    ]
    return write_fasta(path, records)


def test_one_class_training_split_is_refused(tmp_path) -> None:
    splits = ["train"] * 30 + ["val"] * 6 + ["test"] * 6
    labels = [0] * 30 + [0, 1] * 6  # train: negatives only
    fasta = write_labelled(tmp_path / "one.fa", labels, splits)
    data = tokenize_fasta(fasta, tmp_path / "one", KmerTokenizer(k=3), max_tokens=63)
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"the 'train' split of data set .* \(30 examples\) has "
                       r"label\(s\) of one class only \(label: 0 positive, 30 negative\)"):
        train(training_config(run, data), run)


# --- 5. evaluate and predict on odd inputs -----------------------------------------------------


def test_evaluate_one_class_split_names_the_undefined_metrics(checkpoint, tmp_path,
                                                               capsys) -> None:
    splits = ["train"] * 20 + ["val"] * 10 + ["test"] * 10
    labels = [0, 1] * 15 + [0] * 10  # test: negatives only
    fasta = write_labelled(tmp_path / "t.fa", labels, splits)
    data = tokenize_fasta(fasta, tmp_path / "t", KmerTokenizer(k=3), max_tokens=63)
    out = tmp_path / "metrics.json"
    code = cli.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--out",
                     str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert (f"the 'test' split of {data} holds one class only (10 with label 0, 0 with label 1): "
            "f1, mcc, auroc, auprc are undefined") in captured.err
    scores = json.loads(out.read_text())["test"]
    assert "accuracy" in scores and not {"f1", "mcc", "auroc", "auprc"} & set(scores)
    assert scores["undefined"] == ["f1", "mcc", "auroc", "auprc"]
    assert "nan" not in captured.out


def resaved(checkpoint: Path, change) -> Path:
    """The checkpoint changed by `change` and saved without its hash (as an older one)."""
    state = torch.load(checkpoint, weights_only=True)
    state.pop("bigbird_genomics_integrity")
    change(state)
    target = checkpoint.with_name("changed.ckpt")
    torch.save(state, target)
    return target


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_damaged_hyper_parameters_are_one_line(tiny_run, checkpoint, fasta, command,
                                               capsys) -> None:
    def damage(state: dict) -> None:
        state["hyper_parameters"]["model"]["hidden_size"] = [16]

    damaged = resaved(checkpoint, damage)
    out = fasta.with_suffix(".out")
    given = ["--fasta", fasta] if command == "predict" else ["--data", tiny_run[0]]
    err = refused([command, "--checkpoint", damaged, *given, "--out", out], capsys, damaged)
    assert f"checkpoint {damaged}: its hyper-parameters are damaged" in err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_weights_of_another_shape_are_one_line(tiny_run, checkpoint, fasta, command,
                                               capsys) -> None:
    def reshape(state: dict) -> None:
        key = next(k for k in state["state_dict"] if k.endswith("weight"))
        state["state_dict"][key] = torch.zeros(3, 3)

    other = resaved(checkpoint, reshape)
    given = ["--fasta", fasta] if command == "predict" else ["--data", tiny_run[0]]
    err = refused([command, "--checkpoint", other, *given, "--out", fasta.with_suffix(".out")],
                  capsys, other)
    assert "its weights do not fit the network" in err and "size mismatch" in err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_batch_size_zero_is_refused_by_argparse(tiny_run, checkpoint, fasta, command,
                                                capsys) -> None:
    given = ["--fasta", fasta] if command == "predict" else ["--data", tiny_run[0]]
    with pytest.raises(SystemExit) as caught:
        cli.main([command, "--checkpoint", str(checkpoint), *map(str, given), "--out",
                  str(fasta.with_suffix(".out")), "--batch-size", "0"])
    assert caught.value.code == 2
    assert "argument --batch-size: must be at least 1, got 0" in capsys.readouterr().err


def test_device_and_fifo_fasta_are_not_regular_files(checkpoint, tmp_path, capsys) -> None:
    fifo = tmp_path / "pipe.fa"
    os.mkfifo(fifo)
    for source in (Path("/dev/zero"), fifo):
        err = refused(["predict", "--checkpoint", checkpoint, "--fasta", source, "--out",
                       tmp_path / "p.tsv"], capsys, checkpoint)
        assert f"{source}: is not a regular file" in err
    assert not (tmp_path / "p.tsv").exists()


def test_hydra_refuses_a_read_only_run_directory_before_writing(tmp_path, monkeypatch,
                                                                capsys) -> None:
    """Hydra writes `.hydra/` into the run directory before training starts: the callback
    must refuse it first (checked by hand on a real read-only tmpfs mount too)."""
    from omegaconf import OmegaConf

    from bigbird_genomics.training.hydra_callbacks import CheckRunDir

    def read_only(folder: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(folder))

    monkeypatch.setattr(paths, "_probe_writable", read_only)
    run = tmp_path / "run"
    config = OmegaConf.create({"hydra": {"run": {"dir": str(run)}}})
    with pytest.raises(SystemExit) as caught:
        CheckRunDir().on_run_start(config)
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: bigbird-genomics-train: hydra.run.dir {run}: cannot write in "
                   f"{tmp_path} (a read-only file system); choose a writable location")
    assert not run.exists()
