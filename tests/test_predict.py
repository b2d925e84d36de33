"""predict: windowing, streaming, aggregation, bedGraph tiling, errors and determinism.

Most tests use `MotifCounter`, a small deterministic stand-in with the `LoadedModel` interface,
so each expected score can be computed independently from the window's bases. The last tests
use a real tiny checkpoint trained through the training engineer's API.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bigbird_genomics import cli
from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.scan import (
    LabelMismatchError,
    ScanPlan,
    WindowSizeError,
    iter_windows,
    predict_fasta,
)
from bigbird_genomics.tokens.kmers import UNK_ID, KmerTokenizer, plan_windows

MOTIF = "GATTACA"


class MotifCounter:
    """Stand-in model: label `motif` = share of k-mers that are GATTACA's first k-mer (x10,
    capped at 1); label `unknown` = share of [UNK] tokens. Records every batch it is given."""

    def __init__(self, k: int = 3, max_tokens: int = 33) -> None:
        self.tokenizer = KmerTokenizer(k=k, stride=1)
        self.label_names = ["motif", "unknown"]
        self.task_type = "multilabel"
        self.max_tokens = max_tokens
        self.motif_id = int(self.tokenizer.encode(MOTIF[:k])[0])
        self.batches: list[list[np.ndarray]] = []

    def predict_proba(self, tokens: list[np.ndarray]) -> np.ndarray:
        self.batches.append([t.copy() for t in tokens])
        return np.array([self.expected(t) for t in tokens])

    def expected(self, tokens: np.ndarray) -> list[float]:
        return [
            min(1.0, 10 * float(np.mean(tokens == self.motif_id))),
            float(np.mean(tokens == UNK_ID)),
        ]

    def expected_for(self, sequence: str) -> list[float]:
        return self.expected(self.tokenizer.encode(sequence))


def write_fasta(path: Path, records: dict[str, str], compress: bool = False) -> Path:
    text = "".join(f">{name} some description\n{seq}\n" for name, seq in records.items())
    if compress:
        with gzip.open(path, "wt") as stream:
            stream.write(text)
    else:
        path.write_text(text)
    return path


def random_dna(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


def read_tsv(path: Path) -> list[dict[str, str]]:
    header, *rows = [line.split("\t") for line in path.read_text("utf-8").splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def read_bedgraph(path: Path) -> dict[str, list[tuple[str, int, int, float]]]:
    tracks: dict[str, list[tuple[str, int, int, float]]] = {}
    current = None
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("track"):
            current = line.split('name="')[1].split('"')[0]
            tracks[current] = []
        else:
            chrom, start, end, value = line.split("\t")
            tracks[current].append((chrom, int(start), int(end), float(value)))
    return tracks


@pytest.fixture
def long_record() -> str:
    rng = np.random.default_rng(1)
    sequence = list(random_dna(rng, 1000).replace("GAT", "GCT"))
    for position in (100, 640):  # two planted motifs far apart
        sequence[position : position + len(MOTIF)] = MOTIF
    sequence[800:880] = "N" * 80  # an N run
    return "".join(sequence)


@pytest.mark.parametrize(
    ("length", "window", "overlap"),
    [(0, 10, 0), (5, 10, 3), (10, 10, 3), (11, 10, 3), (100, 10, 0), (101, 10, 5), (1000, 35, 17)],
)
def test_iter_windows_is_the_tokenizer_plan(length: int, window: int, overlap: int) -> None:
    assert list(iter_windows(length, ScanPlan(window, overlap))) == plan_windows(
        length, window, overlap
    )


def test_short_records_one_row_each(tmp_path: Path) -> None:
    model = MotifCounter()
    rng = np.random.default_rng(0)
    records = {f"r{i}": random_dna(rng, 20 + i) for i in range(5)}
    records["r2"] = records["r2"][:5] + MOTIF + records["r2"][12:]
    out = tmp_path / "out.tsv"
    summary = predict_fasta(
        model, write_fasta(tmp_path / "in.fa", records), out, batch_size=2, strands="forward"
    )
    rows = read_tsv(out)
    assert [row["id"] for row in rows] == list(records)
    assert list(rows[0]) == [
        "id",
        "length",
        "num_windows",
        "motif_max",
        "motif_mean",
        "unknown_max",
        "unknown_mean",
    ]
    for row, sequence in zip(rows, records.values(), strict=True):
        assert int(row["length"]) == len(sequence) and row["num_windows"] == "1"
        assert float(row["motif_max"]) == pytest.approx(model.expected_for(sequence)[0], rel=1e-5)
        assert row["motif_max"] == row["motif_mean"]
    assert float(rows[2]["motif_max"]) > 0
    # windows from several records share a batch, and no batch exceeds batch_size
    assert max(len(batch) for batch in model.batches) == 2
    assert summary.num_records == 5 and summary.num_windows == 5


def test_long_record_scanned_streaming_and_tiled(tmp_path: Path, long_record: str) -> None:
    model = MotifCounter(k=3, max_tokens=33)  # context: 32 tokens = 34 bp
    fasta = write_fasta(tmp_path / "chr.fa", {"chrA": long_record, "short": long_record[:20]})
    out, bedgraph = tmp_path / "out.tsv", tmp_path / "out.bedGraph"
    summary = predict_fasta(  # max_n_fraction=1: every window scored, even inside the N run
        model, fasta, out, bedgraph=bedgraph, overlap_bp=10, batch_size=4, strands="forward",
        max_n_fraction=1.0,
    )

    windows = plan_windows(len(long_record), 34, 10)
    assert summary.plan == ScanPlan(34, 10)
    assert summary.num_windows == len(windows) + 1
    assert all(len(batch) <= 4 for batch in model.batches)  # never more than one batch at once
    expected = np.array([model.expected_for(long_record[s:e]) for s, e in windows])

    row = read_tsv(out)[0]
    assert row["id"] == "chrA" and int(row["num_windows"]) == len(windows)
    assert float(row["motif_max"]) == pytest.approx(expected[:, 0].max(), rel=1e-5)
    assert float(row["motif_mean"]) == pytest.approx(expected[:, 0].mean(), rel=1e-5)
    assert float(row["unknown_max"]) == pytest.approx(1.0)  # a window inside the N run

    tracks = read_bedgraph(bedgraph)
    assert list(tracks) == ["motif", "unknown"]
    for column, intervals in enumerate(tracks.values()):
        chr_a = [i for i in intervals if i[0] == "chrA"]
        # tiles the record exactly: 0-based, half-open, contiguous, no overlaps
        assert chr_a[0][1] == 0 and chr_a[-1][2] == len(long_record)
        assert all(a[2] == b[1] for a, b in zip(chr_a, chr_a[1:], strict=False))
        assert len(chr_a) == len(windows)
        for (_, start, end, value), (w_start, w_end), scores in zip(
            chr_a, windows, expected, strict=True
        ):
            assert w_start <= start < end <= w_end  # each interval lies inside its own window
            assert value == pytest.approx(scores[column], rel=1e-5)
    motif_track = tracks["motif"]
    peak = max(motif_track, key=lambda interval: interval[3])
    assert peak[1] - 34 <= 100 <= peak[2] or peak[1] - 34 <= 640 <= peak[2]


def test_gzip_input_gives_identical_output(tmp_path: Path, long_record: str) -> None:
    records = {"chrA": long_record, "b": long_record[:50]}
    plain = write_fasta(tmp_path / "x.fa", records)
    packed = write_fasta(tmp_path / "x.fa.gz", records, compress=True)
    predict_fasta(MotifCounter(), plain, tmp_path / "p.tsv", bedgraph=tmp_path / "p.bg")
    predict_fasta(MotifCounter(), packed, tmp_path / "g.tsv", bedgraph=tmp_path / "g.bg")
    assert (tmp_path / "p.tsv").read_bytes() == (tmp_path / "g.tsv").read_bytes()
    assert (tmp_path / "p.bg").read_bytes() == (tmp_path / "g.bg").read_bytes()


def test_soft_masked_and_n_rich_windows_as_in_training(tmp_path: Path) -> None:
    """Lower case is read as upper case and any k-mer with N is [UNK], as `tokenize` does."""
    model = MotifCounter()
    fasta = write_fasta(
        tmp_path / "m.fa",
        {"soft": "acgt" + MOTIF.lower() + "ttt", "ns": "N" * 30, "mixed": "ACNGTNNACGTAGGA"},
    )
    predict_fasta(model, fasta, tmp_path / "o.tsv", strands="forward", max_n_fraction=1.0)
    rows = {row["id"]: row for row in read_tsv(tmp_path / "o.tsv")}
    assert float(rows["soft"]["motif_max"]) == pytest.approx(
        model.expected_for("ACGT" + MOTIF + "TTT")[0]
    )
    assert float(rows["ns"]["unknown_max"]) == 1.0
    assert float(rows["mixed"]["unknown_max"]) == pytest.approx(
        model.expected_for("ACNGTNNACGTAGGA")[1]
    )


def test_windows_that_are_mostly_n_are_not_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An assembly gap would otherwise be scored as all-[UNK] input (a real model gave a gap
    0.72): windows with more than max_n_fraction N get no score, no interval, and stay out of
    the record's max and mean; a record of N alone gets NaN."""
    rng = np.random.default_rng(3)
    record = random_dna(rng, 100) + "N" * 200 + random_dna(rng, 100)
    fasta = write_fasta(tmp_path / "gap.fa", {"chrG": record, "gap": "N" * 120})
    model = MotifCounter(k=3, max_tokens=33)
    out, bedgraph = tmp_path / "o.tsv", tmp_path / "o.bg"
    summary = predict_fasta(model, fasta, out, bedgraph=bedgraph, overlap_bp=10,
                            strands="forward")  # fmt: skip
    windows = plan_windows(len(record), 34, 10)
    unknown = [model.expected_for(record[s:e])[1] for s, e in windows]  # share of [UNK] k-mers
    scored = [w for w, share in zip(windows, unknown, strict=True) if share <= 0.5]
    assert 0 < len(scored) < len(windows)
    expected = np.array([model.expected_for(record[s:e]) for s, e in scored])
    rows = {row["id"]: row for row in read_tsv(out)}
    assert int(rows["chrG"]["num_windows"]) == len(windows)
    assert float(rows["chrG"]["unknown_max"]) == pytest.approx(expected[:, 1].max(), rel=1e-5)
    assert float(rows["chrG"]["unknown_max"]) <= 0.5
    assert float(rows["chrG"]["motif_mean"]) == pytest.approx(expected[:, 0].mean(), rel=1e-5)
    assert rows["gap"]["motif_max"] == rows["gap"]["unknown_mean"] == "nan"
    gap_windows = len(windows) - len(scored) + len(plan_windows(120, 34, 10))
    assert summary.num_unscored_windows == gap_windows
    intervals = read_bedgraph(bedgraph)["unknown"]
    assert all(i[0] == "chrG" for i in intervals) and len(intervals) == len(scored)
    assert all(value <= 0.5 for *_, value in intervals)
    # k-mers, not bases: one base in three is N, yet no 3-mer is known
    scattered = write_fasta(tmp_path / "scattered.fa", {"acn": "ACN" * 10})
    predict_fasta(model, scattered, tmp_path / "s.tsv", strands="forward")
    assert read_tsv(tmp_path / "s.tsv")[0]["motif_max"] == "nan"
    with pytest.raises(UserError, match="--max-n-fraction"):
        predict_fasta(model, fasta, out, max_n_fraction=1.5)
    with pytest.raises(UserError, match="same file"):
        predict_fasta(model, fasta, out, bedgraph=tmp_path / "." / "o.tsv")
    # the CLI reports the unscored windows
    monkeypatch.setattr(
        "bigbird_genomics.inference.checkpoint.load_checkpoint", lambda *a, **k: model
    )
    checkpoint = tmp_path / "stand_in.ckpt"
    checkpoint.write_bytes(b"")
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--fasta", str(fasta),
                     "--out", str(out), "--overlap-bp", "10"]) == 0  # fmt: skip
    assert "not scored: more than 0.5 of their k-mers contain N" in capsys.readouterr().out


def test_record_ids_outside_ascii_are_written(tmp_path: Path) -> None:
    """FASTA headers are UTF-8 (`validate` and `tokenize` accept them), so outputs are too."""
    fasta = tmp_path / "u.fa"
    fasta.write_text(">séq1 Homo sapiens\nACGTACGTGATTACA\n", encoding="utf-8")
    predict_fasta(MotifCounter(), fasta, tmp_path / "o.tsv", bedgraph=tmp_path / "o.bg")
    assert read_tsv(tmp_path / "o.tsv")[0]["id"] == "séq1"
    assert read_bedgraph(tmp_path / "o.bg")["motif"][0][0] == "séq1"


def test_record_shorter_than_k_gets_nan_row_and_no_interval(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "t.fa", {"tiny": "AC", "ok": "ACGTACGT"})
    predict_fasta(MotifCounter(), fasta, tmp_path / "o.tsv", bedgraph=tmp_path / "o.bg")
    rows = read_tsv(tmp_path / "o.tsv")
    assert rows[0]["id"] == "tiny" and rows[0]["motif_max"] == "nan"
    assert all(i[0] == "ok" for track in read_bedgraph(tmp_path / "o.bg").values() for i in track)


def test_deterministic(tmp_path: Path, long_record: str) -> None:
    fasta = write_fasta(tmp_path / "x.fa", {"chrA": long_record})
    for name in ("a", "b"):
        predict_fasta(
            MotifCounter(), fasta, tmp_path / f"{name}.tsv", bedgraph=tmp_path / f"{name}.bg"
        )
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert (tmp_path / "a.bg").read_bytes() == (tmp_path / "b.bg").read_bytes()


def test_empty_fasta_is_a_user_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(UserError, match="empty.fa"):
        predict_fasta(MotifCounter(), empty, tmp_path / "o.tsv")
    assert not (tmp_path / "o.tsv").exists()


def test_window_larger_than_context_is_refused(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "x.fa", {"a": "ACGT" * 20})
    with pytest.raises(WindowSizeError, match="--window-bp 35"):
        predict_fasta(MotifCounter(k=3, max_tokens=33), fasta, tmp_path / "o.tsv", window_bp=35)
    with pytest.raises(WindowSizeError, match="--overlap-bp"):
        predict_fasta(MotifCounter(), fasta, tmp_path / "o.tsv", window_bp=20, overlap_bp=20)


def test_header_labels_of_another_task_are_refused(tmp_path: Path) -> None:
    """A labelled FASTA made for a 3-label task cannot be scored by a 2-label checkpoint."""
    good = tmp_path / "good.fa"
    good.write_text(">a labels=0,1 split=test\nACGTACGTAC\n>b\nACGTACGT\n")
    predict_fasta(MotifCounter(), good, tmp_path / "o.tsv")
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\nACGTACGTAC\n>b labels=0,1,0\nACGTACGT\n")
    with pytest.raises(LabelMismatchError, match="bad.fa.*3 label.*predicts 2"):
        predict_fasta(MotifCounter(), bad, tmp_path / "o2.tsv")
    assert not (tmp_path / "o2.tsv").exists()
    classes = tmp_path / "classes.fa"
    classes.write_text(">a class=2\nACGTACGTAC\n")
    with pytest.raises(LabelMismatchError, match="for a multi-class task .* multilabel model"):
        predict_fasta(MotifCounter(), classes, tmp_path / "o3.tsv")


def test_failure_midway_leaves_no_partial_output(tmp_path: Path, long_record: str) -> None:
    class Broken(MotifCounter):
        def predict_proba(self, tokens: list[np.ndarray]) -> np.ndarray:
            if len(self.batches) == 2:
                raise RuntimeError("out of memory")
            return super().predict_proba(tokens)

    fasta = write_fasta(tmp_path / "x.fa", {"chrA": long_record})
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError, match="out of memory"):
        predict_fasta(Broken(), fasta, out_dir / "o.tsv", bedgraph=out_dir / "o.bg", batch_size=2)
    assert list(out_dir.iterdir()) == []


def test_cli_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fasta = write_fasta(tmp_path / "x.fa", {"a": "ACGT" * 5})
    code = cli.main(
        [
            "predict",
            "--checkpoint",
            str(tmp_path / "nope.ckpt"),
            "--fasta",
            str(fasta),
            "--out",
            str(tmp_path / "o.tsv"),
        ]
    )
    assert code == 2
    assert "nope.ckpt" in capsys.readouterr().err


# --- with a real tiny checkpoint --------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint: 2 training batches of the tiny demo promoter model (session-wide)."""
    from bigbird_genomics.builders.demo import write_demo_data
    from bigbird_genomics.tokens.build import tokenize_fasta

    root = tmp_path_factory.mktemp("tiny_ckpt")
    demo = write_demo_data(root / "demo", seed=0)
    dataset = tokenize_fasta(demo["promoter"], root / "data", KmerTokenizer(6, 1), max_tokens=319)
    command = [
        str(Path(sys.executable).parent / "bigbird-genomics-train"),
        "experiment=promoter_demo",
        f"data.dataset={dataset}",
        f"hydra.run.dir={root / 'run'}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "logger=csv",
        "callbacks.progress_bar=null",
    ]
    env = dict(os.environ, WANDB_MODE="disabled")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root / "run" / "checkpoints" / "best.ckpt"


@pytest.mark.slow
def test_real_checkpoint_predicts_and_is_deterministic(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    from bigbird_genomics.inference.checkpoint import load_checkpoint

    model = load_checkpoint(tiny_checkpoint)
    rng = np.random.default_rng(3)
    context = model.tokenizer.max_bases(model.max_tokens - 1)
    records = {"short": random_dna(rng, 120), "long": random_dna(rng, 3 * context + 17)}
    fasta = write_fasta(tmp_path / "x.fa.gz", records, compress=True)
    for name in ("a", "b"):
        code = cli.main(
            [
                "predict",
                "--checkpoint",
                str(tiny_checkpoint),
                "--fasta",
                str(fasta),
                "--out",
                str(tmp_path / f"{name}.tsv"),
                "--bedgraph",
                str(tmp_path / f"{name}.bg"),
                "--batch-size",
                "3",
            ]
        )
        assert code == 0
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert (tmp_path / "a.bg").read_bytes() == (tmp_path / "b.bg").read_bytes()
    rows = read_tsv(tmp_path / "a.tsv")
    assert [r["id"] for r in rows] == ["short", "long"] and int(rows[1]["num_windows"]) > 3
    for row in rows:
        for label in model.label_names:
            assert 0.0 <= float(row[f"{label}_mean"]) <= float(row[f"{label}_max"]) <= 1.0


@pytest.mark.slow
def test_real_checkpoint_window_mismatch(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fasta = write_fasta(tmp_path / "x.fa", {"a": "ACGT" * 500})
    code = cli.main(
        [
            "predict",
            "--checkpoint",
            str(tiny_checkpoint),
            "--fasta",
            str(fasta),
            "--out",
            str(tmp_path / "o.tsv"),
            "--window-bp",
            "100000",
        ]
    )
    assert code == 2 and "context" in capsys.readouterr().err


def test_both_strands_keep_the_higher_score_of_each_window(tmp_path: Path) -> None:
    """A motif written on the minus strand is found with strands="both", not "forward"."""
    rng = np.random.default_rng(3)
    background = random_dna(rng, 60).replace("GAT", "GCT").replace("ATC", "AGC")
    minus = background[:20] + "TGTAATC" + background[27:]  # reverse complement of GATTACA
    fasta = write_fasta(tmp_path / "m.fa", {"minus": minus})
    model = MotifCounter()
    predict_fasta(model, fasta, tmp_path / "f.tsv", strands="forward")
    predict_fasta(model, fasta, tmp_path / "b.tsv", strands="both")
    (forward,), (both,) = read_tsv(tmp_path / "f.tsv"), read_tsv(tmp_path / "b.tsv")
    assert float(forward["motif_max"]) == 0.0
    # the window holding the site, read as its reverse complement, holds GATTACA's first k-mer
    assert float(both["motif_max"]) >= model.expected_for("GATTACA" + "A" * 27)[0] > 0
    with pytest.raises(UserError, match="--strands"):
        predict_fasta(model, fasta, tmp_path / "x.tsv", strands="minus")


# --- the default window: the length the model was trained on ----------------------------------


def test_default_window_is_the_trained_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bigbird_genomics.inference.scan import scan_plan

    model = MotifCounter(k=3, max_tokens=33)  # context: 34 bp
    assert scan_plan(model) == ScanPlan(34, 17)  # no record of training: the context
    model.trained_window_bp = 20
    assert scan_plan(model) == ScanPlan(20, 10)
    assert scan_plan(model).source == "the training examples' length"
    assert scan_plan(model, window_bp=30) == ScanPlan(30, 15)  # --window-bp wins
    model.trained_window_bp = 500  # longer than the context holds: the context
    assert scan_plan(model).window_bp == 34
    # the CLI says which window and step it scans with, on stderr, before any work
    model.trained_window_bp = 20
    monkeypatch.setattr(
        "bigbird_genomics.inference.checkpoint.load_checkpoint", lambda *a, **k: model
    )
    checkpoint = tmp_path / "stand_in.ckpt"
    checkpoint.write_bytes(b"")
    fasta = write_fasta(tmp_path / "in.fa", {"r": "ACGT" * 30})
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--fasta", str(fasta),
                     "--out", str(tmp_path / "o.tsv")]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "windows of 20 bp (the training examples' length), step 10 bp" in err
    assert read_tsv(tmp_path / "o.tsv")[0]["num_windows"] == str(len(plan_windows(120, 20, 10)))


@pytest.mark.slow
def test_real_checkpoint_records_its_training_length(tiny_checkpoint: Path) -> None:
    from bigbird_genomics.inference.checkpoint import load_checkpoint
    from bigbird_genomics.inference.scan import scan_plan
    from bigbird_genomics.tokens.store import TokenizedDataset

    data = TokenizedDataset(tiny_checkpoint.parents[2] / "data")
    model = load_checkpoint(tiny_checkpoint)
    assert model.trained_window_bp == data.longest_window_bp
    assert 0 < data.longest_window_bp < model.tokenizer.max_bases(model.max_tokens - 1)
    assert scan_plan(model).window_bp == data.longest_window_bp


def test_records_and_shards_select_records(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    records = {f"chr{i}": random_dna(rng, 50 + 7 * i) for i in range(5)}
    fasta = write_fasta(tmp_path / "g.fa", records)
    predict_fasta(MotifCounter(), fasta, tmp_path / "sub.tsv", records=["chr3", "chr1"])
    assert [row["id"] for row in read_tsv(tmp_path / "sub.tsv")] == ["chr1", "chr3"]
    predict_fasta(MotifCounter(), fasta, tmp_path / "s1.tsv", shard=(1, 2))
    assert [row["id"] for row in read_tsv(tmp_path / "s1.tsv")] == ["chr1", "chr3"]
    predict_fasta(MotifCounter(), fasta, tmp_path / "s9.tsv", shard=(7, 8))  # past the end
    assert read_tsv(tmp_path / "s9.tsv") == []
    with pytest.raises(UserError, match="no record named chrX"):
        predict_fasta(MotifCounter(), fasta, tmp_path / "x.tsv", records=["chr0", "chrX"])
    assert not (tmp_path / "x.tsv").exists()
    # with a .fai the unknown name is refused before any scoring, and the bar has a total
    (tmp_path / "g.fa.fai").write_text(
        "".join(f"{name}\t{len(seq)}\t0\t60\t61\n" for name, seq in records.items())
    )
    model = MotifCounter()
    with pytest.raises(UserError, match="no record named chrX"):
        predict_fasta(model, fasta, tmp_path / "x.tsv", records=["chrX"])
    assert model.batches == []
