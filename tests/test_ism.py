"""ism: the fast mutagenesis equals the naive one, gradients agree with it, the CLI's files, and
on the demo data the planted motifs stand out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from downstream_support import read_tsv

from bigbird_genomics import cli
from bigbird_genomics.inference.ism import grad_record, ism_record, mutated_span, naive_ism
from bigbird_genomics.io.fasta import read_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer


class PositionalModel:
    """Stand-in: logit = sum over tokens of weight[token] * cos(token index), so the score
    depends on which k-mer sits where; averages both strands when asked."""

    task_type = "binary"

    def __init__(self, k: int, stride: int, strand_symmetric: bool) -> None:
        self.tokenizer = KmerTokenizer(k=k, stride=stride)
        self.label_names = ["a", "b"]
        self.max_tokens = 33
        self.strand_symmetric = strand_symmetric
        self.weights = np.random.default_rng(1).normal(size=(self.tokenizer.vocab_size, 2))

    def _one(self, tokens: list[np.ndarray]) -> np.ndarray:
        logits = np.array([
            (self.weights[row] * np.cos(np.arange(len(row)))[:, None]).sum(axis=0)
            for row in tokens
        ])
        return 1 / (1 + np.exp(-logits))

    def predict_proba(self, tokens: list[np.ndarray], strands: str = "forward") -> np.ndarray:
        probabilities = self._one(tokens)
        if strands == "both":
            table = self.tokenizer.reverse_complement_ids()
            probabilities = (probabilities + self._one([table[t[::-1]] for t in tokens])) / 2
        return probabilities


@pytest.mark.parametrize(("k", "stride", "both"), [(3, 1, False), (3, 1, True), (3, 3, False)])
def test_fast_ism_equals_naive_over_several_windows(k: int, stride: int, both: bool) -> None:
    model = PositionalModel(k, stride, both)
    rng = np.random.default_rng(0)
    sequence = "".join(rng.choice(list("ACGT"), 150)) + "NN" + "".join(rng.choice(list("ACGT"), 48))
    result = ism_record(model, "r", sequence, batch_size=17)
    assert result.num_windows > 2  # the record spans several windows
    expected = naive_ism(model, sequence)
    np.testing.assert_allclose(result.effects, expected, atol=1e-5)
    assert result.effects.shape == (2, 200, 4)
    assert np.abs(result.effects).max() > 0.01
    # reference bases (and N) are 0
    for position, base in enumerate(sequence):
        if base in "ACGT":
            assert (result.effects[:, position, "ACGT".index(base)] == 0).all()
        else:
            assert (result.effects[:, position] == 0).all()
    # a touched window is scored, an untouched one reused: fewer passes than 3 x positions x
    # windows, and the same numbers as re-scoring every window
    every = ism_record(model, "r", sequence, touched_only=False)
    np.testing.assert_allclose(every.effects, result.effects, atol=1e-9)
    assert result.num_forward_windows < every.num_forward_windows


def test_max_bases_mutates_the_centre() -> None:
    assert mutated_span(300, 20) == (140, 160)
    assert mutated_span(10, 20) == (0, 10)
    model = PositionalModel(3, 1, False)
    sequence = "".join(np.random.default_rng(2).choice(list("ACGT"), 60))
    whole = ism_record(model, "r", sequence)
    part = ism_record(model, "r", sequence, max_bases=10)
    assert part.offset == 25 and part.sequence == sequence[25:35]
    np.testing.assert_allclose(part.effects, whole.effects[:, 25:35], atol=1e-9)


def test_real_model_fast_equals_naive_and_grad_agrees(demo_tiny_checkpoint: Path,
                                                       demo_files: dict[str, Path]) -> None:
    from bigbird_genomics.inference.checkpoint import load_checkpoint

    model = load_checkpoint(demo_tiny_checkpoint)
    record = next(iter(read_fasta(demo_files["heldout"])))
    fast = ism_record(model, record.id, record.text, max_bases=6)
    np.testing.assert_allclose(fast.effects, naive_ism(model, record.text, max_bases=6), atol=1e-4)
    full = ism_record(model, record.id, record.text, batch_size=128)
    gradient = grad_record(model, record.id, record.text)
    assert gradient.effects.shape == full.effects.shape
    # first-order estimate of the same matrix: strongly correlated with the real effects
    correlation = np.corrcoef(full.effects.ravel(), gradient.effects.ravel())[0, 1]
    assert correlation > 0.5


def test_cli_picks_records_by_id(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path
) -> None:
    ids = [record.id for record in read_fasta(demo_files["heldout"])]
    wanted = [ids[5], ids[2]]
    args = ["ism", "--checkpoint", str(demo_tiny_checkpoint), "--fasta",
            str(demo_files["heldout"]), "--max-bases", "4", "--no-plots", "--records"]  # fmt: skip
    assert cli.main([*args, ",".join(wanted), "--out", str(tmp_path / "a")]) == 0
    rows = read_tsv(tmp_path / "a" / "summary.tsv")
    assert [row["id"] for row in rows] == [ids[2], ids[5]]  # FASTA order
    assert cli.main([*args, f"{ids[0]},nope", "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "b" / "summary.tsv").exists()


def test_cli_writes_npz_png_and_summary(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path
) -> None:
    args = ["ism", "--checkpoint", str(demo_tiny_checkpoint), "--fasta",
            str(demo_files["heldout"]), "--max-records", "2", "--max-bases", "20"]
    assert cli.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "b"), "--no-plots"]) == 0
    rows = read_tsv(tmp_path / "a" / "summary.tsv")
    ids = [record.id for record in read_fasta(demo_files["heldout"])][:2]
    assert [row["id"] for row in rows] == ids
    for record_id, row in zip(ids, rows, strict=True):
        saved = np.load(tmp_path / "a" / f"{record_id}.npz")
        assert saved["effects"].shape == (1, 20, 4)
        assert int(saved["offset"]) == 140 and len(str(saved["sequence"])) == 20
        np.testing.assert_array_equal(
            saved["effects"], np.load(tmp_path / "b" / f"{record_id}.npz")["effects"]
        )  # deterministic
        assert (tmp_path / "a" / f"{record_id}.png").stat().st_size > 1000
        strongest = np.abs(saved["effects"][0]).max()
        assert float(row["label_max_abs_effect"]) == pytest.approx(strongest, rel=1e-4)
        assert 141 <= int(row["label_max_position"]) <= 160
    assert [row["png"] for row in rows] == [f"{record_id}.png" for record_id in ids]
    unplotted = read_tsv(tmp_path / "b" / "summary.tsv")
    assert [row.pop("png") for row in unplotted] == ["", ""]  # --no-plots: no picture
    assert unplotted == [{k: v for k, v in row.items() if k != "png"} for row in rows]

    region = ["ism", "--checkpoint", str(demo_tiny_checkpoint), "--region", "chrDemo:1001-1100",
              "--genome", str(demo_files["chromosome"]), "--method", "grad", "--out",
              str(tmp_path / "region")]
    assert cli.main(region) == 0
    saved = np.load(tmp_path / "region" / "chrDemo_1001-1100.npz")
    assert saved["effects"].shape == (1, 100, 4)
    chromosome = next(iter(read_fasta(demo_files["chromosome"]))).text
    assert str(saved["sequence"]) == chromosome[1000:1100]
    (row,) = read_tsv(tmp_path / "region" / "summary.tsv")
    assert row["chrom"] == "chrDemo" and row["png"] == "chrDemo_1001-1100.png"
    assert int(row["label_max_genome_pos"]) == 1000 + int(row["label_max_position"])
    strongest = np.unravel_index(np.abs(saved["effects"][0]).argmax(), (100, 4))[0]
    assert int(row["label_max_genome_pos"]) == 1001 + strongest


def test_bad_region_is_a_user_error(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["ism", "--checkpoint", str(demo_tiny_checkpoint), "--genome",
            str(demo_files["chromosome"]), "--out", str(tmp_path)]
    assert cli.main([*base, "--region", "chrDemo:10-5"]) == 2
    assert "start <= end" in capsys.readouterr().err
    assert cli.main([*base, "--region", "chrNope:1-50"]) == 2
    assert "chrNope" in capsys.readouterr().err


@pytest.mark.slow
def test_planted_motifs_stand_out(demo_trained_checkpoint: Path,
                                  demo_files: dict[str, Path]) -> None:
    """On held-out demo promoters the strongest ISM positions lie in the planted elements
    (TATA, Inr, GC-box, CAAT cover ~10-15% of a record; chance would put that share of the top
    positions in them)."""
    from bigbird_genomics.inference.checkpoint import load_checkpoint

    model = load_checkpoint(demo_trained_checkpoint)
    motifs: dict[str, list[tuple[int, int]]] = {}
    for line in demo_files["heldout_motifs"].read_text().splitlines():
        record_id, start, end, *_ = line.split("\t")
        motifs.setdefault(record_id, []).append((int(start), int(end)))
    records = {record.id: record.text for record in read_fasta(demo_files["heldout"])}
    # promoters carrying at least three planted elements
    chosen = [rid for rid in records if rid.startswith("held_prom") and len(motifs.get(rid, ()))
              >= 3][:2]
    assert len(chosen) == 2
    for record_id in chosen:
        result = ism_record(model, record_id, records[record_id], batch_size=128)
        in_motif = np.zeros(len(records[record_id]), dtype=bool)
        for start, end in motifs[record_id]:
            in_motif[start:end] = True
        strongest = np.argsort(-np.abs(result.effects[0]).max(axis=1), kind="stable")[:10]
        assert in_motif[strongest].mean() >= 0.5, (record_id, sorted(strongest), motifs[record_id])
        assert in_motif.mean() < 0.25


def test_region_of_a_plain_gzip_genome_with_decompress_to(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gzip

    from bigbird_genomics.io import intervals

    opened = []
    open_genome = intervals.open_genome

    def spy(*args, **kwargs):
        opened.append(open_genome(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(intervals, "open_genome", spy)
    plain_gzip = tmp_path / "genome.fa.gz"
    plain_gzip.write_bytes(gzip.compress(demo_files["chromosome"].read_bytes()))
    base = ["ism", "--checkpoint", str(demo_tiny_checkpoint), "--region", "chrDemo:2001-2030",
            "--no-plots"]
    assert cli.main([*base, "--genome", str(plain_gzip), "--decompress-to",
                     str(tmp_path / "genome.fa"), "--out", str(tmp_path / "gz")]) == 0
    assert cli.main([*base, "--genome", str(demo_files["chromosome"]), "--out",
                     str(tmp_path / "fa")]) == 0
    assert (tmp_path / "gz" / "summary.tsv").read_bytes() == (
        tmp_path / "fa" / "summary.tsv").read_bytes()
    assert opened and all(genome.faidx.file.closed for genome in opened)


def test_colliding_ids_get_their_own_picture_and_the_report_finds_it(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path
) -> None:
    from bigbird_genomics.reporting.report import write_report

    records = list(read_fasta(demo_files["heldout"]))[:2]
    fasta = tmp_path / "pair.fa"
    # both ids become the file name r_1: the second record's files are r_1.2.*
    fasta.write_text(f">r:1\n{records[0].text}\n>r_1\n{records[1].text}\n")
    assert cli.main(["ism", "--checkpoint", str(demo_tiny_checkpoint), "--fasta", str(fasta),
                     "--max-bases", "3", "--out", str(tmp_path / "ism")]) == 0
    rows = read_tsv(tmp_path / "ism" / "summary.tsv")
    assert [row["png"] for row in rows] == ["r_1.png", "r_1.2.png"]
    best = max(rows, key=lambda row: float(row["label_max_abs_effect"]))
    write_report(tmp_path / "report", ism=tmp_path / "ism")
    assert (tmp_path / "report" / "ism.png").read_bytes() == (
        tmp_path / "ism" / best["png"]).read_bytes()


def test_grad_runs_batch_size_windows_at_a_time(
    demo_tiny_checkpoint: Path, demo_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bigbird_genomics.inference import ism
    from bigbird_genomics.inference.checkpoint import load_checkpoint

    model = load_checkpoint(demo_tiny_checkpoint)
    sequence = "".join(record.text for record in list(read_fasta(demo_files["heldout"]))[:3])
    whole = grad_record(model, "r", sequence, max_bases=200, batch_size=64)
    assert whole.num_windows >= 3
    sizes: list[int] = []
    original = ism._embedding_gradients

    def spy(model, windows, num_labels):
        sizes.append(len(windows))
        return original(model, windows, num_labels)

    monkeypatch.setattr(ism, "_embedding_gradients", spy)
    batched = grad_record(model, "r", sequence, max_bases=200, batch_size=2)
    strands = 2 if model.strand_symmetric else 1
    assert max(sizes) == 2 and sum(sizes) == strands * whole.num_windows
    np.testing.assert_allclose(batched.effects, whole.effects, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(batched.reference_probability, whole.reference_probability,
                               rtol=1e-6)


@pytest.mark.parametrize("inside", [False, True])
def test_an_output_that_is_an_input_is_refused(
    tmp_path: Path, demo_files: dict[str, Path], inside: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fasta = tmp_path / "records.fa"
    out = tmp_path / "ism"
    if inside:  # the FASTA where `ism` writes its summary
        out.mkdir()
        fasta = out / "summary.tsv"
    fasta.write_bytes(demo_files["heldout"].read_bytes())
    before = fasta.read_bytes()
    code = cli.main(["ism", "--checkpoint", str(tmp_path / "model.ckpt"), "--fasta", str(fasta),
                     "--out", str(out if inside else fasta)])
    assert code == 2
    assert "ism: --out" in capsys.readouterr().err
    assert fasta.read_bytes() == before
