"""Hostile inputs to the data stages: a folder that is not ours, damaged data sets, NaN
models, contradicting labels, stale indexes, non-UTF-8 text and interrupted runs.

Each one must end in a one-line error naming the file (or a clean exit), never in a
traceback, a silent wrong result or a deleted user file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bigbird_genomics import cli
from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.checkpoint import CheckpointError, load_checkpoint
from bigbird_genomics.io.atomic import remove_stale, temp_prefix
from bigbird_genomics.io.labels import LabelError
from bigbird_genomics.io.writers import atomic_open
from bigbird_genomics.tokens.build import tokenize_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer
from bigbird_genomics.tokens.store import DatasetFormatError, TokenizedDataset

LATIN1 = "café".encode("latin-1")  # é is one byte (0xe9) in latin-1, not valid UTF-8
MODEL = {"vocab_size": 69, "hidden_size": 16, "num_layers": 1, "num_heads": 2,
         "intermediate_size": 32, "dropout": 0.1, "max_tokens": 64, "rotary_base": 10000.0}
ATTENTION = {"block_size": 16, "num_window_blocks": 3, "num_global_blocks": 2,
             "num_random_blocks": 1, "random_per_head": False, "seed": 0, "backend": "auto"}


def dna(rng: np.random.Generator, length: int) -> str:
    return rng.choice(np.frombuffer(b"ACGT", np.uint8), length).tobytes().decode()


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f">{header}\n{sequence}\n" for header, sequence in records))
    return path


@pytest.fixture
def fasta(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_fasta(
        tmp_path / "in.fa", [(f"r{i} label={i % 2}", dna(rng, 200)) for i in range(12)]
    )


@pytest.fixture
def dataset(tmp_path: Path, fasta: Path) -> Path:
    return tokenize_fasta(fasta, tmp_path / "data", KmerTokenizer(3), max_tokens=40)


def checkpoint(path: Path, nan: bool = False) -> Path:
    """A k=3 binary checkpoint in Lightning's layout (built without Lightning, which is slow to
    import); `nan` sets every weight to NaN."""
    from bigbird_genomics.model.network import GenomicsModel

    torch.manual_seed(0)
    task = {"name": "t", "type": "binary", "pooling": "cls", "num_classes": None,
            "label_names": ["label"], "label_groups": {}, "pos_weight": None}
    network = GenomicsModel(MODEL, ATTENTION, "binary", 1, pooling="cls")
    state = {f"network.{k}": v for k, v in network.state_dict().items()}
    if nan:
        state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                 for k, v in state.items()}
    hparams = {"model": MODEL, "attention": ATTENTION, "task": task,
               "tokenizer": KmerTokenizer(3).to_dict()}
    torch.save({"hyper_parameters": hparams, "state_dict": state}, path)
    return path


# --- tokenize --out never deletes what is not its own ----------------------------------------


def test_tokenize_refuses_a_folder_that_merely_holds_a_meta_json(
    tmp_path: Path, fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(fasta, folder / "input.fa")
    (folder / "meta.json").write_text("{}")
    code = cli.main(["tokenize", "--fasta", str(folder / "input.fa"), "--out", str(folder)])
    assert code == 2
    assert "input.fa" in capsys.readouterr().err
    assert (folder / "input.fa").read_bytes() == fasta.read_bytes()


def test_tokenize_refuses_a_data_set_with_other_files_and_replaces_its_own(
    tmp_path: Path, fasta: Path, dataset: Path
) -> None:
    (dataset / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt"):
        tokenize_fasta(fasta, dataset, KmerTokenizer(3), max_tokens=40)
    assert (dataset / "notes.txt").read_text() == "mine"
    (dataset / "notes.txt").unlink()
    tokenize_fasta(fasta, dataset, KmerTokenizer(4), max_tokens=40)  # its own: replaced
    assert TokenizedDataset(dataset).tokenizer.k == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "in.fa"]  # no leftovers


# --- damaged data sets ------------------------------------------------------------------------


def truncate_tokens(path: Path) -> None:
    with open(path / "tokens.bin", "r+b") as handle:
        handle.truncate(100)


def drop_file_records(path: Path) -> None:
    """A data set written without per-file sizes and checksums (only meta's counts to go by)."""
    meta = json.loads((path / "meta.json").read_text())
    del meta["files"]
    (path / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("recorded", [True, False], ids=["with-checksums", "without"])
@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (truncate_tokens, "tokens.bin"),
        (lambda p: np.save(p / "offsets.npy", np.load(p / "offsets.npy")[:5]), "offsets.npy"),
        (lambda p: np.save(p / "windows.npy", np.load(p / "windows.npy")[:5]), "windows.npy"),
        (lambda p: np.save(p / "split.npy", np.load(p / "split.npy")[:-1]), "split.npy"),
        (lambda p: np.save(p / "labels.npy", np.load(p / "labels.npy")[:, :0]), "labels.npy"),
        (lambda p: (p / "labels.npy").unlink(), "labels.npy"),
        (lambda p: (p / "records.txt").write_text("r0\n"), "records.txt"),
    ],
    ids=["tokens", "offsets", "windows", "split", "labels-shape", "labels-missing", "records"],
)
def test_damaged_data_set_is_refused_on_open(
    dataset: Path, damage, named: str, recorded: bool
) -> None:
    if not recorded:
        drop_file_records(dataset)
    damage(dataset)
    with pytest.raises(DatasetFormatError, match=named):
        TokenizedDataset(dataset)


def test_out_of_vocabulary_token_is_refused(dataset: Path) -> None:
    tokens = np.fromfile(dataset / "tokens.bin", dtype=np.uint16)
    tokens[3] = 60000
    tokens.tofile(dataset / "tokens.bin")
    data = TokenizedDataset(dataset)  # same size: opening is cheap and cannot tell
    with pytest.raises(DatasetFormatError, match="token id 60000"):
        data.tokens(0)
    drop_file_records(dataset)
    with pytest.raises(DatasetFormatError, match="outside the vocabulary"):
        TokenizedDataset(dataset).verify()


def test_validate_data_checks_checksums(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", "--data", str(dataset)]) == 0
    assert "ok" in capsys.readouterr().out
    tokens = np.fromfile(dataset / "tokens.bin", dtype=np.uint16)
    tokens[3] = 5 if tokens[3] != 5 else 6  # a valid id: only the checksum can tell
    tokens.tofile(dataset / "tokens.bin")
    assert cli.main(["validate", "--data", str(dataset)]) == 2
    err = capsys.readouterr().err
    assert "tokens.bin" in err and "sha256" in err and len(err.strip().splitlines()) == 1


# --- non-finite model outputs -----------------------------------------------------------------


def test_nan_weights_are_an_error_naming_the_checkpoint(
    tmp_path: Path, fasta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = checkpoint(tmp_path / "nan.ckpt", nan=True)
    with pytest.raises(CheckpointError, match="nan.ckpt.*non-finite"):
        load_checkpoint(path).predict_proba([np.arange(5, 20)])
    out = tmp_path / "p.tsv"
    assert cli.main(["predict", "--checkpoint", str(path), "--fasta", str(fasta),
                     "--out", str(out)]) == 2
    assert "nan.ckpt" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow  # evaluate imports torchmetrics: seconds on a busy machine
def test_nan_weights_fail_evaluate(
    tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = checkpoint(tmp_path / "nan.ckpt", nan=True)
    assert cli.main(["evaluate", "--checkpoint", str(path), "--data", str(dataset),
                     "--split", "train", "--out", str(tmp_path / "m.json")]) == 2
    assert "non-finite" in capsys.readouterr().err and not (tmp_path / "m.json").exists()


# --- labels from two sources ------------------------------------------------------------------


def test_labels_table_contradicting_the_headers_is_refused(tmp_path: Path, fasta: Path) -> None:
    agree = tmp_path / "agree.tsv"
    agree.write_text("id\tlabel\n" + "".join(f"r{i}\t{i % 2}\n" for i in range(12)))
    tokenize_fasta(fasta, tmp_path / "ok", KmerTokenizer(3), labels_table=agree)
    disagree = tmp_path / "disagree.tsv"
    disagree.write_text(agree.read_text().replace("r5\t1", "r5\t0"))
    with pytest.raises(
        LabelError, match=r"disagree.tsv: .*1 record.*'r5'.* says 1, line 7 of the table says 0"
    ):
        tokenize_fasta(fasta, tmp_path / "bad", KmerTokenizer(3), labels_table=disagree)


# --- a .fai that no longer fits its FASTA -----------------------------------------------------


def test_stale_fai_with_a_kept_time_stamp_is_rebuilt(tmp_path: Path) -> None:
    from bigbird_genomics.io.intervals import Interval, extract_intervals, open_genome

    rng = np.random.default_rng(1)
    genome = write_fasta(tmp_path / "g.fa", [("chr1", dna(rng, 500)), ("chr2", dna(rng, 500))])
    open_genome(genome)  # writes g.fa.fai
    stamp = genome.stat().st_mtime - 100
    chr2 = dna(rng, 900)
    write_fasta(genome, [("chr1", dna(rng, 200)), ("chr2", chr2)])  # chr2 starts 300 bytes early
    os.utime(genome, (stamp, stamp))  # as `cp -p` or rsync leave it: older than the index
    (window,) = extract_intervals(genome, [Interval("chr2", 100, 180)])
    assert window.sequence == chr2[100:180]


def test_stale_fai_in_a_read_only_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bigbird_genomics.io import intervals

    rng = np.random.default_rng(1)
    genome = write_fasta(tmp_path / "g.fa", [("chr1", dna(rng, 500)), ("chr2", dna(rng, 500))])
    intervals.open_genome(genome)
    stamp = genome.stat().st_mtime - 100
    write_fasta(genome, [("chr1", dna(rng, 200)), ("chr2", dna(rng, 900))])
    os.utime(genome, (stamp, stamp))
    # tests may run as root, for whom every folder is writable: make this one look read-only
    monkeypatch.setattr(intervals.os, "access", lambda path, mode: mode != os.W_OK)
    with pytest.raises(intervals.IntervalError, match=r"g.fa.fai: .*does not fit.*read-only"):
        intervals.open_genome(genome)


# --- text that is not UTF-8 -------------------------------------------------------------------


def _labels(path: Path) -> None:
    from bigbird_genomics.io.labels import read_label_table

    path.write_bytes(b"id\tlabel\n# note\nr1\t1\nr2\t0 " + LATIN1 + b"\n")
    read_label_table(path)


def _groups(path: Path) -> None:
    from bigbird_genomics.io.labels import read_label_groups

    path.write_bytes(b"label\tgroup\nCTCF\tTF\nDNase\t" + LATIN1 + b"\n")
    read_label_groups(path)


def _bed(path: Path) -> None:
    from bigbird_genomics.io.intervals import read_bed

    path.write_bytes(b"chr1\t1\t5\ta\nchr1\t10\t50\t" + LATIN1 + b"\n\n")
    read_bed(path)


def _peaks(path: Path) -> None:
    from bigbird_genomics.io.peaks import read_bed_rows

    path.write_bytes(b"chr1\t1\t5\nchr1\t6\t9\nchr1\t10\t50\t" + LATIN1 + b"\n")
    list(read_bed_rows(path))


def _sheet(path: Path) -> None:
    from bigbird_genomics.io.peaks import read_sample_sheet

    path.write_bytes(b"profile\tpath\tgroup\nP\tp.bed\t" + LATIN1 + b"\n")
    read_sample_sheet(path)


@pytest.mark.parametrize(
    ("reader", "line"),
    [(_labels, 4), (_groups, 3), (_bed, 2), (_peaks, 3), (_sheet, 2)],
    ids=["labels", "label-groups", "bed", "peaks", "sample-sheet"],
)
def test_latin1_text_names_file_and_line(tmp_path: Path, reader, line: int) -> None:
    path = tmp_path / "input.tsv"
    with pytest.raises(UserError, match=rf"input.tsv: line {line} \(byte 0xe9\) is not UTF-8"):
        reader(path)


def test_latin1_fasta_header_says_how_to_convert(tmp_path: Path) -> None:
    from bigbird_genomics.io.fasta import FastaFormatError, read_fasta

    path = tmp_path / "x.fa"
    path.write_bytes(b">r1 ok\nACGT\n>r2 " + LATIN1 + b"\nACGT\n")
    with pytest.raises(FastaFormatError, match="line 3: header is not UTF-8.*iconv"):
        list(read_fasta(path))


# --- interrupts and leftovers -----------------------------------------------------------------


def test_sigterm_and_ctrl_c_exit_130_with_one_line(
    tmp_path: Path, fasta: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bigbird_genomics.commands import validate

    before = signal.getsignal(signal.SIGTERM)
    for signum in (signal.SIGTERM, signal.SIGINT):
        monkeypatch.setattr(
            validate, "summarise", lambda *_, signum=signum: os.kill(os.getpid(), signum)
        )
        assert cli.main(["validate", str(fasta)]) == 130
        assert capsys.readouterr().err.strip() == (
            "bigbird-genomics validate: interrupted (unfinished outputs were removed)"
        )
    assert signal.getsignal(signal.SIGTERM) == before


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_temporaries_of_dead_writers_are_removed_by_the_next(tmp_path: Path) -> None:
    target = tmp_path / "out.tsv"
    host = temp_prefix(target).split("@")[1]
    dead = tmp_path / f".out.tsv.tmp-{dead_pid()}@{host}-abc123"
    dead.write_text("half")
    dead_dir = tmp_path / f".out.tsv.tmp-{dead_pid()}@{host}-old"
    (dead_dir / "sub").mkdir(parents=True)
    alive = tmp_path / f".out.tsv.tmp-{os.getppid()}@{host}-xyz"  # a live process: kept
    alive.write_text("being written")
    elsewhere = tmp_path / f".out.tsv.tmp-{dead_pid()}@other_host-xyz"  # may be alive there
    elsewhere.write_text("")
    unrelated = tmp_path / ".other.tsv.tmp-1@x-y"
    unrelated.write_text("")
    with atomic_open(target) as stream:
        stream.write("new\n")
    assert not dead.exists() and not dead_dir.exists()
    assert alive.exists() and elsewhere.exists() and unrelated.exists()
    assert target.read_text() == "new\n"
    assert remove_stale(tmp_path / "absent" / "x") == []


def kill_midway(command: list[str], watch: Path, target: str, after: float = 0.2) -> list[str]:
    """Start `bigbird-genomics command`, SIGKILL it `after` seconds after its temporary for
    `target` appears; return the names it left in `watch`."""
    before = set(os.listdir(watch))
    process = subprocess.Popen(
        [sys.executable, "-m", "bigbird_genomics.cli", *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=dict(os.environ, WANDB_MODE="disabled"),
    )
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing threshold
        while process.poll() is None and time.monotonic() < deadline:
            if any(name.startswith(f".{target}.") for name in os.listdir(watch)):
                time.sleep(after)
                break
            time.sleep(0.01)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        process.kill()
    finally:
        process.wait()
    return sorted(set(os.listdir(watch)) - before)


@pytest.mark.slow
def test_sigkill_of_predict_and_tokenize_leaves_nothing_a_later_run_keeps(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(2)
    big = write_fasta(tmp_path / "big.fa", [(f"b{i}", dna(rng, 20_000)) for i in range(40)])
    model = checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "out.tsv"
    out.write_text("old\n")
    predict = ["predict", "--checkpoint", str(model), "--fasta", str(big), "--out", str(out),
               "--bedgraph", str(tmp_path / "out.bg"), "--batch-size", "4"]
    left = kill_midway(predict, tmp_path, "out.tsv")
    assert left and out.read_text() == "old\n"  # the old output, whole
    small = write_fasta(tmp_path / "small.fa", [("s", dna(rng, 300))])
    predict[predict.index(str(big))] = str(small)
    assert cli.main(predict) == 0
    assert not any((tmp_path / name).exists() for name in left)

    # large enough that an idle machine is still tokenizing when the kill lands
    genome = write_fasta(tmp_path / "g.fa", [(f"h{i}", dna(rng, 1_000_000)) for i in range(80)])
    left = kill_midway(["tokenize", "--fasta", str(genome), "--out", str(tmp_path / "tok"),
                        "--k", "3"], tmp_path, "tok", after=0.02)
    assert left and not (tmp_path / "tok").exists()
    tokenize_fasta(small, tmp_path / "tok", KmerTokenizer(3))
    assert not any((tmp_path / name).exists() for name in left)
