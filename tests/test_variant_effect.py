"""variant-effect: window construction, allele statuses, the TSV and annotated VCF, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pysam
import pytest
from downstream_support import read_tsv

from bigbird_genomics import cli
from bigbird_genomics.inference.variant_effect import (
    OK,
    allele_status,
    score_variants,
    variant_windows,
)
from bigbird_genomics.tokens.kmers import KmerTokenizer

GENOME = "ACGTTGCAAGGCTTACGATCGATCGGATCCATGCAAGT"


def fetch(contig: str, start: int, end: int) -> str:
    assert contig == "chr1"
    return GENOME[start:end]


def windows(start: int, ref: str, alt: str, width: int = 11) -> tuple[str, str, str]:
    return variant_windows("chr1", start, ref, alt, width, len(GENOME), fetch)


def test_snv_windows_differ_only_at_the_centre() -> None:
    status, ref, alt = windows(15, GENOME[15], "T")
    assert status == OK
    assert ref == GENOME[10:21]
    assert alt == GENOME[10:15] + "T" + GENOME[16:21]


def test_deletion_and_insertion_are_recentred_and_filled_from_the_genome() -> None:
    # deletion REF = 4 bases, ALT = anchor: REF window has (11-4)//2 = 3 bases before REF;
    # ALT window has (11-1)//2 = 5 bases before the anchor and the genome after REF after it
    status, ref, alt = windows(15, GENOME[15:19], GENOME[15])
    assert status == OK
    assert ref == GENOME[12:23]
    assert alt == GENOME[10:15] + GENOME[15] + GENOME[19:24]
    # insertion of 3 bases after the anchor: (11-4)//2 = 3 bases before, the REF's right
    # flank trimmed so the window stays 11 bp
    status, ref, alt = windows(15, GENOME[15], GENOME[15] + "AAA")
    assert status == OK
    assert ref == GENOME[10:21]
    assert alt == GENOME[12:15] + GENOME[15] + "AAA" + GENOME[16:20]
    assert len(ref) == len(alt) == 11


def test_unscorable_windows_get_a_status() -> None:
    assert windows(2, GENOME[2], "A")[0] == "near_contig_end"
    assert windows(len(GENOME) - 2, GENOME[-2], "A")[0] == "near_contig_end"
    wrong = "A" if GENOME[15] != "A" else "C"
    assert windows(15, wrong, "G")[0] == "ref_mismatch"
    assert windows(15, GENOME[15], GENOME[15] + "A" * 12)[0] == "allele_too_long"
    assert windows(15, GENOME[15].lower(), "t")[0] == OK  # case does not matter


@pytest.mark.parametrize(
    ("alt", "status"),
    [("<DEL>", "symbolic"), ("<*>", "symbolic"), ("*", "spanning_deletion"), (None, "no_alt"),
     (".", "no_alt"), ("G]chr2:100]", "breakend"), ("[chr2:100[G", "breakend"),
     (".G", "breakend"), ("G.", "breakend"), ("R", "invalid_allele"), ("GT", OK)],
)
def test_allele_status(alt: str | None, status: str) -> None:
    assert allele_status("G", alt) == status


class StrandRecorder:
    """Stand-in model trained on both strands: probability = GC share of the window's k-mers."""

    strand_symmetric = True

    def __init__(self) -> None:
        self.tokenizer = KmerTokenizer(k=3)
        self.label_names = ["gc"]
        self.task_type = "binary"
        self.max_tokens = 40
        self.strands: list[str] = []

    def predict_proba(self, tokens: list[np.ndarray], strands: str = "forward") -> np.ndarray:
        self.strands.append(strands)
        gc = {i for i, kmer in enumerate(self.tokenizer.vocabulary()) if kmer[:1] in "GC"}
        return np.array([[np.mean([t in gc for t in row])] for row in tokens])


def write_vcf(path: Path, lines: list[str], contigs: dict[str, int]) -> Path:
    header = ["##fileformat=VCFv4.2"]
    header += [f"##contig=<ID={name},length={length}>" for name, length in contigs.items()]
    header.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    path.write_text("\n".join(header + lines) + "\n")
    return path


def test_both_strands_for_a_strand_symmetric_model_and_unknown_chromosome(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sequence = "".join(rng.choice(list("ACGT"), 200))
    (tmp_path / "g.fa").write_text(f">chr1\n{sequence}\n")
    vcf = write_vcf(
        tmp_path / "v.vcf",
        [f"chr1\t100\ta\t{sequence[99]}\tG,T\t.\t.\t.", "chrX\t5\tb\tA\tC\t.\t.\t."],
        {"chr1": 200, "chrX": 100},
    )
    model = StrandRecorder()
    summary = score_variants(model, tmp_path / "g.fa", vcf, tmp_path / "out.tsv", window_bp=21)
    rows = read_tsv(tmp_path / "out.tsv")
    assert [row["status"] for row in rows] == [OK, OK, "unknown_chrom"]
    assert [row["alt"] for row in rows] == ["G", "T", "C"]
    assert set(model.strands) == {"both"}
    assert summary.statuses == {OK: 2, "unknown_chrom": 1}
    window = sequence[89:110]
    expected_ref = model.predict_proba([model.tokenizer.encode(window)])[0, 0]
    assert float(rows[0]["gc_p_ref"]) == pytest.approx(expected_ref, abs=1e-6)
    assert rows[2]["gc_p_ref"] == rows[2]["gc_diff"] == ""


def run_cli(*words: object) -> int:
    return cli.main(["variant-effect", *map(str, words)])


def test_demo_vcf_statuses_columns_and_determinism(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--checkpoint", demo_tiny_checkpoint, "--genome", demo_files["chromosome"],
            "--vcf", demo_files["variants"]]
    assert run_cli(*args, "--out", tmp_path / "a.tsv", "--vcf-out", tmp_path / "a.vcf.gz") == 0
    assert "1 ref_mismatch" in capsys.readouterr().err
    assert run_cli(*args, "--out", tmp_path / "b.tsv", "--batch-size", "7") == 0
    first = (tmp_path / "a.tsv").read_bytes()
    # another batch size groups other windows together: equal up to float rounding
    scores = [
        np.array([[float(value or "nan") for value in list(row.values())[6:]]
                  for row in read_tsv(tmp_path / name)])
        for name in ("a.tsv", "b.tsv")
    ]
    assert np.allclose(*scores, equal_nan=True, atol=1e-5)
    assert run_cli(*args, "--out", tmp_path / "c.tsv", "--vcf-out", tmp_path / "c.vcf.gz") == 0
    assert (tmp_path / "c.tsv").read_bytes() == first  # same input and settings: same bytes

    rows = read_tsv(tmp_path / "a.tsv")
    assert list(rows[0])[:6] == ["chrom", "pos", "id", "ref", "alt", "status"]
    assert list(rows[0])[6:] == [
        "label_p_ref", "label_p_alt", "label_diff", "label_log_odds_ratio"
    ]
    with pysam.VariantFile(str(demo_files["variants"])) as vcf:
        expected = [(r.id, alt) for r in vcf for alt in r.alts]
    assert [(row["id"], row["alt"]) for row in rows] == expected  # VCF order, split per ALT
    statuses = {row["id"]: row["status"] for row in rows}
    assert statuses["ref_mismatch_example"] == "ref_mismatch"
    assert statuses["symbolic_deletion"] == "symbolic"
    assert statuses["near_contig_start"] == "near_contig_end"
    assert sum(status == OK for status in statuses.values()) >= 30
    for row in rows:
        if row["status"] != OK:
            assert row["label_p_ref"] == row["label_diff"] == ""
            continue
        p_ref, p_alt = float(row["label_p_ref"]), float(row["label_p_alt"])
        assert float(row["label_diff"]) == pytest.approx(p_alt - p_ref, abs=1e-5)
        lor = np.log(p_alt / (1 - p_alt)) - np.log(p_ref / (1 - p_ref))
        assert float(row["label_log_odds_ratio"]) == pytest.approx(lor, abs=1e-4)

    assert (tmp_path / "a.vcf.gz.tbi").is_file()
    with pysam.VariantFile(str(tmp_path / "a.vcf.gz")) as annotated:
        assert {"BB_STATUS", "BB_label_DIFF", "BB_label_LOR"} <= set(annotated.header.info)
        records = list(annotated.fetch("chrDemo", 0, 300_000))  # through the tabix index
    assert len(records) == len({(row["pos"], row["id"]) for row in rows})
    by_id = {(row["id"], row["alt"]): row for row in rows}
    for record in records:
        for index, alt in enumerate(record.alts):
            row = by_id[(record.id, alt)]
            assert record.info["BB_STATUS"][index] == row["status"]
            if row["status"] == OK:
                assert record.info["BB_label_DIFF"][index] == pytest.approx(
                    float(row["label_diff"]), abs=1e-5
                )


def line_of(path: Path, variant_id: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if f"\t{variant_id}\t" in line:
            return number
    raise AssertionError(variant_id)


def test_strict_names_the_vcf_line(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_cli("--checkpoint", demo_tiny_checkpoint, "--genome", demo_files["chromosome"],
                   "--vcf", demo_files["variants"], "--out", tmp_path / "x.tsv", "--strict")
    err = capsys.readouterr().err
    assert code == 2
    assert f"line {line_of(demo_files['variants'], 'ref_mismatch_example')}:" in err
    assert "does not match the genome" in err
    assert not (tmp_path / "x.tsv").exists()  # atomic: no half-written output


def test_bad_inputs_are_user_errors(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    not_vcf = tmp_path / "notes.vcf"
    not_vcf.write_text("this is not a VCF\n1\t2\t3\n")
    code = run_cli("--checkpoint", demo_tiny_checkpoint, "--genome", demo_files["chromosome"],
                   "--vcf", not_vcf, "--out", tmp_path / "x.tsv")
    assert code == 2
    assert str(not_vcf) in capsys.readouterr().err

    malformed = tmp_path / "malformed.vcf"
    lines = demo_files["variants"].read_text().splitlines()
    header_lines = sum(line.startswith("#") for line in lines)
    malformed.write_text("\n".join([*lines[: header_lines + 1], "chrDemo\tabc\tx\tA\tC\t.\t.\t."])
                         + "\n")
    code = run_cli("--checkpoint", demo_tiny_checkpoint, "--genome", demo_files["chromosome"],
                   "--vcf", malformed, "--out", tmp_path / "x.tsv")
    err = capsys.readouterr().err
    assert code == 2
    assert f"{malformed}: line {header_lines + 2}: cannot parse" in err

    plain_gzip = tmp_path / "genome.fa.gz"
    plain_gzip.write_bytes(gzip.compress(demo_files["chromosome"].read_bytes()))
    code = run_cli("--checkpoint", demo_tiny_checkpoint, "--genome", plain_gzip,
                   "--vcf", demo_files["variants"], "--out", tmp_path / "x.tsv")
    err = capsys.readouterr().err
    assert code == 2
    assert "bgzip" in err and str(plain_gzip) in err


def test_bgzip_vcf_and_genome_give_the_same_table(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path
) -> None:
    genome = tmp_path / "chromosome.fa.gz"
    pysam.tabix_compress(str(demo_files["chromosome"]), str(genome))
    vcf = tmp_path / "variants.vcf.gz"
    pysam.tabix_compress(str(demo_files["variants"]), str(vcf))
    for name, (g, v) in {"plain": (demo_files["chromosome"], demo_files["variants"]),
                         "bgzip": (genome, vcf)}.items():
        assert run_cli("--checkpoint", demo_tiny_checkpoint, "--genome", g, "--vcf", v,
                       "--out", tmp_path / f"{name}.tsv") == 0
    assert (tmp_path / "plain.tsv").read_bytes() == (tmp_path / "bgzip.tsv").read_bytes()


@pytest.mark.parametrize("command", ["variant-effect", "ism"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--checkpoint" in capsys.readouterr().out


def test_report_shows_variant_table_and_ism_picture(tmp_path: Path) -> None:
    from bigbird_genomics.reporting.report import ReportInputError, write_report

    table = tmp_path / "effects.tsv"
    columns = ["chrom", "pos", "id", "ref", "alt", "status", "label_p_ref", "label_p_alt",
               "label_diff", "label_log_odds_ratio"]
    rows = [
        ["chr1", "10", "small", "A", "G", "ok", "0.5", "0.51", "0.01", "0.04"],
        ["chr1", "20", "large", "C", "T", "ok", "0.9", "0.2", "-0.7", "-3.6"],
        ["chr1", "30", "bad", "G", "<DEL>", "symbolic", "", "", "", ""],
    ]
    table.write_text("\n".join("\t".join(row) for row in [columns, *rows]) + "\n")
    ism = tmp_path / "ism"
    ism.mkdir()
    # ids that give one file name: `ism` names the second record's picture rec_a.2.png
    (ism / "summary.tsv").write_text(
        "id\tpng\tlabel_max_abs_effect\nrec:a\trec_a.png\t0.1\nrec_a\trec_a.2.png\t0.9\n"
    )
    (ism / "rec_a.png").write_bytes(b"a")
    (ism / "rec_a.2.png").write_bytes(b"b")
    written = write_report(tmp_path / "report", ism=ism, variant_effects=table)
    assert (tmp_path / "report" / "ism.png").read_bytes() == b"b"  # the strongest record
    markdown = written["markdown"].read_text()
    assert "3 ALT alleles: 2 ok, 1 symbolic" in markdown
    assert markdown.index("| chr1 | 20 | large") < markdown.index("| chr1 | 10 | small")
    assert "![in-silico mutagenesis](ism.png)" in markdown
    with pytest.raises(ReportInputError, match="summary.tsv"):
        write_report(tmp_path / "report", ism=tmp_path)


def test_workflow_plans_variant_effect_and_ism(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    repo = Path(__file__).resolve().parents[1]
    for name in ("Snakefile", "workflow", "config", "conf", "profiles"):
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        elif source.exists():
            shutil.copy2(source, tmp_path / name)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    def dry_run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", *extra],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )

    result = dry_run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "bigbird-genomics variant-effect --checkpoint results/runs/promoter" in out
    assert "--vcf results/demo/variants.vcf" in out and "--vcf-out" in out
    assert "bigbird-genomics ism --checkpoint" in out
    assert "--records held_prom_00021,held_prom_00035" in out
    assert "--ism-png results/ism/heldout_promoter" in out
    assert "--variant-effects results/variant_effect/demo_variants.tsv" in out

    config = yaml.safe_load((tmp_path / "config" / "config.yaml").read_text())
    config["ism"]["heldout_promoter"]["model"] = "nope"
    (tmp_path / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    result = dry_run("--configfile", "config/bad.yaml")
    assert result.returncode != 0
    assert "ism.heldout_promoter.model is 'nope'" in result.stdout + result.stderr


def write_raw_vcf(path: Path, records: list[str]) -> Path:
    """A VCF with no ##contig and no ##FILTER line, as many callers and hand-made files are."""
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO", *records]
    path.write_text("\n".join(lines) + "\n")
    return path


def gc_genome(tmp_path: Path) -> tuple[Path, str]:
    sequence = "".join(np.random.default_rng(3).choice(list("ACGT"), 200))
    (tmp_path / "g.fa").write_text(f">chr1\n{sequence}\n")
    return tmp_path / "g.fa", sequence


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz"])
def test_vcf_out_without_contig_lines(tmp_path: Path, suffix: str) -> None:
    genome, sequence = gc_genome(tmp_path)
    vcf = write_raw_vcf(tmp_path / "v.vcf", [
        f"chr1\t100\ta\t{sequence[99]}\tG\t.\t.\t.",
        "chrUn\t5\tb\tA\tC\t.\t.\t.",  # on no genome sequence and declared nowhere
    ])
    out = tmp_path / f"out{suffix}"
    summary = score_variants(StrandRecorder(), genome, vcf, tmp_path / "out.tsv", vcf_out=out,
                             window_bp=21)
    assert summary.statuses == {OK: 1, "unknown_chrom": 1}
    assert [row["status"] for row in read_tsv(tmp_path / "out.tsv")] == [OK, "unknown_chrom"]
    with pysam.VariantFile(str(out)) as annotated:
        assert annotated.header.contigs["chr1"].length == 200
        records = list(annotated)
    assert [(r.chrom, r.info["BB_STATUS"]) for r in records] == [
        ("chr1", (OK,)), ("chrUn", ("unknown_chrom",))
    ]


def test_an_annotated_vcf_can_be_annotated_again(tmp_path: Path) -> None:
    genome, sequence = gc_genome(tmp_path)
    vcf = write_raw_vcf(tmp_path / "v.vcf", [
        f"chr1\t3\tb\t{sequence[2]}\tC\t.\t.\t.", f"chr1\t100\ta\t{sequence[99]}\tG,T\t.\t.\t.",
    ])
    score_variants(StrandRecorder(), genome, vcf, tmp_path / "one.tsv",
                   vcf_out=tmp_path / "one.vcf.gz", window_bp=21)
    # the second run reads the first one's output and a smaller window: other values
    score_variants(StrandRecorder(), genome, tmp_path / "one.vcf.gz", tmp_path / "two.tsv",
                   vcf_out=tmp_path / "two.vcf", window_bp=9)
    rows = read_tsv(tmp_path / "two.tsv")
    text = (tmp_path / "two.vcf").read_text()
    assert text.count("##INFO=<ID=BB_STATUS,") == 1
    with pysam.VariantFile(str(tmp_path / "two.vcf")) as annotated:
        records = list(annotated)
    assert records[1].info["BB_gc_DIFF"] == pytest.approx(
        [float(rows[1]["gc_diff"]), float(rows[2]["gc_diff"])], abs=1e-5
    )
    assert records[0].info["BB_STATUS"] == ("near_contig_end",)
    assert records[0].info["BB_gc_DIFF"] == (None,)


def test_a_bad_line_is_named_by_the_files_own_line_number(tmp_path: Path) -> None:
    from bigbird_genomics.inference.variant_effect import VcfError

    genome, sequence = gc_genome(tmp_path)
    vcf = write_raw_vcf(tmp_path / "v.vcf", [
        f"chr1\t100\ta\t{sequence[99]}\tG\t.\t.\t.", "chr1\tabc\tx\tA\tC\t.\t.\t.",
    ])
    with pytest.raises(VcfError, match=r"v\.vcf: line 4: cannot parse"):
        score_variants(StrandRecorder(), genome, vcf, tmp_path / "out.tsv", window_bp=21)


def test_the_genome_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bigbird_genomics.inference import variant_effect
    from bigbird_genomics.io.intervals import open_genome

    opened = []

    def spy(*args, **kwargs):
        opened.append(open_genome(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(variant_effect, "open_genome", spy)
    genome, sequence = gc_genome(tmp_path)
    vcf = write_raw_vcf(tmp_path / "v.vcf", [f"chr1\t100\ta\t{sequence[99]}\tG\t.\t.\t."])
    score_variants(StrandRecorder(), genome, vcf, tmp_path / "out.tsv", window_bp=21)
    assert len(opened) == 1 and opened[0].faidx.file.closed


def test_plain_gzip_genome_with_decompress_to(
    tmp_path: Path, demo_files: dict[str, Path], demo_tiny_checkpoint: Path
) -> None:
    plain_gzip = tmp_path / "genome.fa.gz"
    plain_gzip.write_bytes(gzip.compress(demo_files["chromosome"].read_bytes()))
    args = ["--checkpoint", demo_tiny_checkpoint, "--vcf", demo_files["variants"]]
    assert run_cli(*args, "--genome", plain_gzip, "--decompress-to", tmp_path / "genome.fa",
                   "--out", tmp_path / "gz.tsv") == 0
    assert run_cli(*args, "--genome", demo_files["chromosome"], "--out", tmp_path / "fa.tsv") == 0
    assert (tmp_path / "gz.tsv").read_bytes() == (tmp_path / "fa.tsv").read_bytes()


@pytest.mark.parametrize("option", ["--out", "--vcf-out"])
def test_an_output_that_is_an_input_is_refused(
    tmp_path: Path, demo_files: dict[str, Path], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    vcf = tmp_path / "v.vcf"
    vcf.write_bytes(demo_files["variants"].read_bytes())
    before = vcf.read_bytes()
    outputs = {"--out": tmp_path / "out.tsv", "--vcf-out": tmp_path / "out.vcf", option: vcf}
    code = run_cli("--checkpoint", tmp_path / "model.ckpt", "--genome", demo_files["chromosome"],
                   "--vcf", vcf, *[word for pair in outputs.items() for word in pair])
    assert code == 2
    assert f"{option} {vcf} is the input --vcf" in capsys.readouterr().err
    assert vcf.read_bytes() == before
