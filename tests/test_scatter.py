"""Scatter-gather: `predict --shard I/N` jobs joined by `gather-predictions` equal one run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pytest
from test_predict import MotifCounter, random_dna, write_fasta

from bigbird_genomics import cli
from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.gather import ShardError, gather_predictions, gathered_order
from bigbird_genomics.inference.scan import parse_shard, predict_fasta


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    records = {f"chr{i}": random_dna(rng, 40 + 37 * i) for i in range(7)}
    records["chr2"] = "GATTACA" * 20
    records["chr4"] = "AC"  # shorter than k: a NaN row and no bedGraph interval
    return write_fasta(tmp_path / "genome.fa", records)


@pytest.mark.parametrize("shards", [1, 3, 9])
def test_gathered_shards_equal_one_run(tmp_path: Path, genome: Path, shards: int) -> None:
    whole = tmp_path / "whole"
    predict_fasta(MotifCounter(), genome, f"{whole}.tsv", bedgraph=f"{whole}.bedGraph",
                  bigwig=whole)  # fmt: skip
    parts = [tmp_path / f"shard{index}" for index in range(shards)]
    for index, part in enumerate(parts):
        predict_fasta(MotifCounter(), genome, f"{part}.tsv", bedgraph=f"{part}.bedGraph",
                      shard=(index, shards))  # fmt: skip
    joined = tmp_path / "joined"
    gather_predictions(
        [f"{part}.tsv" for part in parts], f"{joined}.tsv",
        [f"{part}.bedGraph" for part in parts], out_bedgraph=f"{joined}.bedGraph", bigwig=joined,
    )  # fmt: skip
    assert Path(f"{joined}.tsv").read_text() == Path(f"{whole}.tsv").read_text()
    assert Path(f"{joined}.bedGraph").read_text() == Path(f"{whole}.bedGraph").read_text()
    for label in ("motif", "unknown"):
        one, other = (pyBigWig.open(f"{prefix}.{label}.bw") for prefix in (whole, joined))
        assert one.chroms() == other.chroms()
        assert all(one.intervals(c) == other.intervals(c) for c in one.chroms())


def test_gather_by_the_cli_bigwig_alone(tmp_path: Path, genome: Path) -> None:
    for index in range(2):
        predict_fasta(MotifCounter(), genome, tmp_path / f"s{index}.tsv",
                      bedgraph=tmp_path / f"s{index}.bedGraph", shard=(index, 2))  # fmt: skip
    argv = ["gather-predictions", "--tsv", str(tmp_path / "s0.tsv"), str(tmp_path / "s1.tsv"),
            "--bedgraphs", str(tmp_path / "s0.bedGraph"), str(tmp_path / "s1.bedGraph"),
            "--out", str(tmp_path / "all.tsv"), "--bigwig", str(tmp_path / "all")]  # fmt: skip
    assert cli.main(argv) == 0
    assert len(pyBigWig.open(str(tmp_path / "all.motif.bw")).chroms()) == 7
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("all")) == [
        "all.motif.bw", "all.tsv", "all.unknown.bw",
    ]  # fmt: skip
    assert not list(tmp_path.glob(".*"))


def test_shards_out_of_order_or_missing_are_refused(tmp_path: Path, genome: Path) -> None:
    assert gathered_order([3, 2, 2]) == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2)]
    for index in range(3):
        predict_fasta(MotifCounter(), genome, tmp_path / f"s{index}.tsv", shard=(index, 3))
    with pytest.raises(ShardError, match="pass every shard's output, in order"):
        gather_predictions([tmp_path / "s2.tsv", tmp_path / "s0.tsv", tmp_path / "s1.tsv"],
                           tmp_path / "all.tsv")  # fmt: skip
    predict_fasta(MotifCounter(), genome, tmp_path / "t0.tsv", shard=(0, 2))  # another split
    with pytest.raises(ShardError, match="pass every shard's output"):
        shards = [tmp_path / f"{name}.tsv" for name in ("s0", "s1", "t0")]
        gather_predictions(shards, tmp_path / "all.tsv")
    assert not (tmp_path / "all.tsv").exists()
    for bad in ("3/3", "x/2", "1"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)
    assert parse_shard("2/5") == (2, 5)


def test_a_label_without_intervals_still_gets_its_bigwig(tmp_path: Path) -> None:
    # every record shorter than k: no window is scored, the bedGraph tracks have no lines
    genome = write_fasta(tmp_path / "short.fa", {"a": "AC", "b": "GT", "c": "T"})
    predict_fasta(MotifCounter(), genome, tmp_path / "whole.tsv", bigwig=tmp_path / "whole")
    for index in range(2):
        predict_fasta(MotifCounter(), genome, tmp_path / f"s{index}.tsv",
                      bedgraph=tmp_path / f"s{index}.bedGraph", shard=(index, 2))  # fmt: skip
    summary = gather_predictions(
        [tmp_path / "s0.tsv", tmp_path / "s1.tsv"], tmp_path / "all.tsv",
        [tmp_path / "s0.bedGraph", tmp_path / "s1.bedGraph"], bigwig=tmp_path / "all",
    )  # fmt: skip
    assert [path.name for path in summary.bigwigs] == ["all.motif.bw", "all.unknown.bw"]
    for label in ("motif", "unknown"):
        one, other = (pyBigWig.open(str(tmp_path / f"{p}.{label}.bw")) for p in ("whole", "all"))
        assert one.chroms() == other.chroms() == {"a": 2, "b": 2, "c": 1}


@pytest.mark.parametrize("option", ["--out", "--bedgraph", "--bigwig"])
def test_an_output_that_is_an_input_is_refused(
    tmp_path: Path, genome: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in range(2):
        predict_fasta(MotifCounter(), genome, tmp_path / f"s{index}.tsv",
                      bedgraph=tmp_path / f"s{index}.bedGraph", shard=(index, 2))  # fmt: skip
    shards = [tmp_path / name for name in ("s0.tsv", "s1.tsv", "s0.bedGraph", "s1.bedGraph")]
    before = [path.read_bytes() for path in shards]
    # the bigWig PREFIX whose motif track is the first shard's bedGraph
    (tmp_path / "s0.bedGraph").rename(tmp_path / "x.motif.bw")
    shards[2] = tmp_path / "x.motif.bw"
    clash = {"--out": shards[0], "--bedgraph": shards[3], "--bigwig": tmp_path / "x"}[option]
    outputs = {"--out": tmp_path / "all.tsv", "--bedgraph": tmp_path / "all.bedGraph",
               "--bigwig": tmp_path / "all", option: clash}
    argv = ["gather-predictions", "--tsv", *map(str, shards[:2]), "--bedgraphs",
            *map(str, shards[2:]), *[str(word) for pair in outputs.items() for word in pair]]
    assert cli.main(argv) == 2
    assert "is the input" in capsys.readouterr().err
    assert [path.read_bytes() for path in shards] == before
