"""CLI smoke tests for validate, extract and tokenize, through `cli.main`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigbird_genomics import cli
from bigbird_genomics.tokens.store import TokenizedDataset


@pytest.fixture
def small_fasta(tmp_path: Path) -> Path:
    path = tmp_path / "in.fa"
    path.write_text(">a label=1\nACGTRYacgtACGTACGT\n>b label=0\nTTTTGGGGCCCCAAAANN\n")
    return path


def test_validate_prints_summary_and_json(tmp_path, small_fasta, capsys):
    out = tmp_path / "summary.json"
    assert cli.main(["validate", str(small_fasta), "--json", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fa", "summary.json"]
    printed = capsys.readouterr().out
    assert "records\tbases" in printed and f"{small_fasta}\t2\t36\t18\t18\t4\t2\t4" in printed
    summary = json.loads(out.read_text())["files"][0]
    assert (summary["n_bases"], summary["ambiguous_to_n"], summary["soft_masked"]) == (4, 2, 4)


def test_validate_error_exits_2_with_location(tmp_path, capsys):
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\nACGT\n>a\nAC\n")
    assert cli.main(["validate", str(bad)]) == 2
    assert "line 3: duplicate record id 'a'" in capsys.readouterr().err


def test_validate_ambiguity_error_policy(small_fasta, capsys):
    assert cli.main(["validate", str(small_fasta), "--ambiguity", "error"]) == 2
    assert "character 'R'" in capsys.readouterr().err


def test_extract_writes_strand_aware_windows(tmp_path, capsys):
    genome = tmp_path / "genome.fa"
    genome.write_text(">chr1\nAAAACCCCGGGGTTTTACGT\n")
    bed = tmp_path / "a.bed"
    bed.write_text("chr1\t4\t6\tp\t0\t+\nchr1\t4\t6\tm\t0\t-\nchr1\t18\t20\tend\t0\t+\n")
    out = tmp_path / "windows.fa"
    argv = ["extract", "--genome", str(genome), "--bed", str(bed), "--out", str(out)]
    assert (
        cli.main([*argv, "--upstream-bp", "3", "--downstream-bp", "1", "--off-chrom", "drop"]) == 0
    )
    assert out.read_text() == (
        ">p region=chr1:1-7 strand=+\nAAACCC\n>m region=chr1:3-9 strand=-\nCGGGGT\n"
    )
    assert "dropped 1" in capsys.readouterr().out


def test_extract_refuses_duplicate_names(tmp_path, capsys):
    genome = tmp_path / "genome.fa"
    genome.write_text(">chr1\nAAAACCCCGG\n")
    bed = tmp_path / "a.bed"
    bed.write_text("chr1\t0\t2\tx\nchr1\t2\t4\tx\n")
    argv = ["extract", "--genome", str(genome), "--bed", str(bed), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert "line 2: name 'x' also on line 1" in capsys.readouterr().err


def test_tokenize_builds_a_data_set(tmp_path, small_fasta, capsys):
    out = tmp_path / "ds"
    argv = ["tokenize", "--fasta", str(small_fasta), "--out", str(out), "--k", "3"]
    assert cli.main([*argv, "--max-tokens", "8", "--overlap-bp", "2"]) == 0
    data = TokenizedDataset(out)
    assert data.meta["k"] == 3 and data.meta["max_tokens"] == 8 and len(data) == 4
    assert "4 examples from 2 records" in capsys.readouterr().out


def test_tokenize_takes_k_and_stride_from_a_training_tokenizer_option(
    tmp_path, small_fasta, capsys
):
    argv = ["tokenize", "--fasta", str(small_fasta), "--max-tokens", "8"]
    assert cli.main([*argv, "--out", str(tmp_path / "a"), "--tokenizer", "kmer6_nonoverlap"]) == 0
    assert (TokenizedDataset(tmp_path / "a").meta["k"], TokenizedDataset(tmp_path / "a").meta[
        "stride"]) == (6, 6)  # fmt: skip
    assert cli.main([*argv, "--out", str(tmp_path / "b"), "--tokenizer", "kmer9"]) == 2
    error = capsys.readouterr().err
    assert "--tokenizer kmer9" in error and "kmer1, kmer3, kmer6, kmer6_nonoverlap" in error
    assert cli.main([*argv, "--out", str(tmp_path / "c"), "--tokenizer", "kmer3", "--k", "3"]) == 2
    assert "not both" in capsys.readouterr().err


def test_tokenize_without_any_example_is_a_user_error(tmp_path, capsys):
    fasta = tmp_path / "short.fa"
    fasta.write_text(">r1\nAC\n>r2\nACG\n")
    assert cli.main(["tokenize", "--fasta", str(fasta), "--out", str(tmp_path / "t"),
                     "--k", "6"]) == 2  # fmt: skip
    error = capsys.readouterr().err
    assert "no record is at least k=6 bases long (2 skipped: r1, r2)" in error
    assert not (tmp_path / "t").exists()


def test_output_path_problems_are_reported_without_a_traceback(tmp_path, small_fasta, capsys):
    """A file where a folder should be is refused before any work, naming the path."""
    code = cli.main(["validate", str(small_fasta), "--json", str(small_fasta / "v.json")])
    captured = capsys.readouterr()
    error = captured.err
    assert code == 2 and error.startswith("error: ") and "Traceback" not in error
    assert f"validate: --json {small_fasta / 'v.json'}: {small_fasta} is a file" in error
    assert captured.out == ""  # refused before the summary table


def test_tokenize_bad_overlap_is_a_user_error(tmp_path, small_fasta, capsys):
    argv = ["tokenize", "--fasta", str(small_fasta), "--out", str(tmp_path / "ds"), "--k", "3"]
    assert cli.main([*argv, "--max-tokens", "4", "--overlap-bp", "100"]) == 2
    assert "overlap 100 bp" in capsys.readouterr().err


@pytest.mark.shared_data
def test_validate_real_genome_and_promoters(shared_data, capsys):
    genome = shared_data / "genomes" / "ecoli_k12_mg1655.fa.gz"
    promoters = shared_data / "promoters" / "human_tata_epdnew.fa"
    assert cli.main(["validate", str(genome), str(promoters)]) == 0
    printed = capsys.readouterr().out
    assert f"{genome}\t1\t4639675\t" in printed
    assert f"{promoters}\t2929\t878700\t300\t300\t" in printed


@pytest.mark.shared_data
def test_tokenize_real_chipseq_peaks(shared_data, tmp_path):
    peaks = shared_data / "tf_chipseq" / "oct4_peaks_mm10.fa"
    out = tmp_path / "ds"
    assert (
        cli.main(["tokenize", "--fasta", str(peaks), "--out", str(out), "--max-tokens", "195"]) == 0
    )
    data = TokenizedDataset(out)
    assert len(data) == 3897 and set(data.lengths.tolist()) == {195}
    assert data.record(0)[0] == "chr1:15710957-15711157"
