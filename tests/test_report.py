"""The report's metric tables (binary and multi-label side by side, per profile group), the
training runs' pictures and the sweep chart: linked in the markdown, embedded in the HTML."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from bigbird_genomics.reporting.plots import save_figure  # noqa: E402
from bigbird_genomics.reporting.report import write_report  # noqa: E402

BINARY = {
    "task": "promoter", "task_type": "binary", "epochs": 2, "global_step": 200,
    "test": {"accuracy": 0.96, "auroc": 0.99, "auprc": 0.98, "f1": 0.95, "mcc": 0.9,
             "num_examples": 189},
    "val": {"loss": 0.07, "auroc": 0.995},
}  # fmt: skip
MULTILABEL = {
    "task": "chromatin", "task_type": "multilabel", "epochs": 2, "global_step": 198,
    "test": {
        "accuracy": 0.81, "auroc_mean": 0.8967, "auroc_median": 0.89, "auprc_mean": 0.82,
        "auprc_median": 0.83, "num_examples": 234, "profiles_scored": 3.0,
        "group/TF/auroc_mean": 0.91, "group/TF/auroc_median": 0.91,
        "group/TF/auprc_mean": 0.85, "group/TF/auprc_median": 0.85,
        "group/histone/auroc_mean": 0.87, "group/histone/auroc_median": 0.87,
        "group/histone/auprc_mean": 0.77, "group/histone/auprc_median": 0.77,
        "per_label": {"CTCF": {"auroc": 0.95, "auprc": 0.93, "positives": 70},
                      "GATA1": {"auroc": 0.87, "auprc": 0.77, "positives": 65},
                      "H3K4me3": {"auroc": None, "auprc": None, "positives": 0}},
    },
    "val": {"loss": 0.52},
}  # fmt: skip
PLOTS = ("loss", "roc", "pr", "attention_layout")


def picture(path: Path, colour: str) -> Path:
    figure, axes = plt.subplots(figsize=(2, 2))
    axes.plot([0, 1], [0, 1], color=colour)
    return save_figure(figure, path)


def training_run(root: Path, name: str, metrics: dict) -> Path:
    """A run directory as training leaves it: metrics.json and plots/*.png."""
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(metrics))
    for index, stem in enumerate(PLOTS):
        picture(run / "plots" / f"{stem}.png", f"C{index}")
    return run


def evaluation(root: Path, name: str, metrics: dict) -> Path:
    """`evaluate`'s metrics.json: the split it scored, and that split's scores."""
    path = root / "evaluate" / name / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"split": "test", "task_type": metrics["task_type"],
                                "test": metrics["test"]}))  # fmt: skip
    return path


def sweep(root: Path) -> tuple[Path, Path]:
    table = root / "sweep" / "summary.tsv"
    table.parent.mkdir(parents=True)
    table.write_text(
        "run\tmodel.name\tattention.block_size\ttest_auroc\n"
        "results/sweep/runs/full\ttiny\t64\t0.95\n"
        "results/sweep/runs/bigbird\ttiny\t32\t0.96\n"
    )
    return table, picture(table.with_suffix(".png"), "k")


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    runs = [training_run(tmp_path, "promoter", BINARY),
            training_run(tmp_path, "chromatin", MULTILABEL)]  # fmt: skip
    evaluations = [evaluation(tmp_path, "promoter", BINARY),
                   evaluation(tmp_path, "chromatin", MULTILABEL)]  # fmt: skip
    table, _ = sweep(tmp_path)
    written = write_report(tmp_path / "report", runs=runs, evaluations=evaluations, sweep=table)
    return tmp_path, written


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The rows (header first) of the table under `## heading`."""
    section = markdown.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|") and "---" not in line]


def test_binary_and_multilabel_runs_share_the_auroc_column(report) -> None:
    """A multi-label run has `auroc_mean`, no `auroc`: its AUROC cell must not be empty."""
    _, written = report
    markdown = written["markdown"].read_text()
    header, promoter, chromatin = table_rows(markdown, "Training runs")
    assert header == ["model", "task", "split", "examples", "AUROC", "AUPRC", "accuracy", "F1",
                      "MCC", "val loss", "epochs", "steps"]  # fmt: skip
    auroc = header.index("AUROC")
    assert promoter[auroc] == "0.99" and chromatin[auroc] == "0.8967"
    assert chromatin[header.index("val loss")] == "0.52"
    header, _, chromatin = table_rows(markdown, "Evaluation")
    assert "val loss" not in header  # no file has it: the column is left out
    assert chromatin[header.index("AUPRC")] == "0.82"


def test_profile_groups_and_profiles_are_reported(report) -> None:
    _, written = report
    markdown = written["markdown"].read_text()
    groups = table_rows(markdown, "Profile groups (evaluation)")
    assert groups[0] == ["model", "group", "mean AUROC", "median AUROC", "mean AUPRC",
                         "median AUPRC"]  # fmt: skip
    assert groups[1:] == [
        ["chromatin", "all profiles", "0.8967", "0.89", "0.82", "0.83"],
        ["chromatin", "TF", "0.91", "0.91", "0.85", "0.85"],
        ["chromatin", "histone", "0.87", "0.87", "0.77", "0.77"],
    ]  # the binary model has no groups: no row
    profiles = table_rows(markdown, "Profiles (evaluation)")
    assert profiles[1] == ["chromatin", "CTCF", "0.95", "0.93", "70"]
    assert profiles[3] == ["chromatin", "H3K4me3", "nan", "nan", "0"]  # null: unscored


def test_training_plots_and_sweep_chart_are_linked_and_embedded(report) -> None:
    root, written = report
    markdown = written["markdown"].read_text()
    links = re.findall(r"!\[([^]]*)\]\(([^)]*)\)", markdown)
    targets = {(written["markdown"].parent / source).resolve() for _, source in links}
    expected = {root / "runs" / run / "plots" / f"{stem}.png"
                for run in ("promoter", "chromatin") for stem in PLOTS}  # fmt: skip
    expected.add(root / "sweep" / "summary.png")
    assert targets == {path.resolve() for path in expected}  # relative links that resolve
    assert ("chromatin: ROC (test split)", "../runs/chromatin/plots/roc.png") in links
    html = written["html"].read_text()
    embedded = re.findall(r"<img src='data:image/png;base64,([^']*)' alt='([^']*)'", html)
    assert len(embedded) == len(expected)
    by_caption = {caption: base64.b64decode(data) for data, caption in embedded}
    assert by_caption["chromatin: loss curves"] == (
        root / "runs" / "chromatin" / "plots" / "loss.png"
    ).read_bytes()
    assert by_caption["sweep: main metric per run"] == (root / "sweep" / "summary.png").read_bytes()
    assert "src='../" not in html  # nothing left that depends on the files beside the report


def test_sweep_table_names_runs_and_states_shared_settings_once(report) -> None:
    _, written = report
    markdown = written["markdown"].read_text()
    assert "Same in every run: model.name=tiny." in markdown
    assert table_rows(markdown, "Sparsity sweep") == [
        ["run", "attention.block_size", "test_auroc"],
        ["full", "64", "0.95"],
        ["bigbird", "32", "0.96"],
    ]


def test_report_command_takes_the_sweep_plot(tmp_path: Path) -> None:
    table, _ = sweep(tmp_path)
    elsewhere = picture(tmp_path / "chart.png", "r")
    result = subprocess.run(
        [sys.executable, "-m", "bigbird_genomics.cli", "report", "--sweep", str(table),
         "--sweep-plot", str(elsewhere), "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(../chart.png)" in (tmp_path / "out" / "summary.md").read_text()


def test_an_undefined_score_reads_nan_not_blank(tmp_path: Path) -> None:
    """metrics.json writes an AUROC that a one-class split leaves undefined as null."""
    run = training_run(tmp_path, "one_class", {**BINARY, "test": {"auroc": None, "f1": 0.0}})
    markdown = write_report(tmp_path / "report", runs=[run])["markdown"].read_text()
    header, row = table_rows(markdown, "Training runs")
    assert row[header.index("AUROC")] == "nan" and row[header.index("F1")] == "0"
    assert "AUPRC" not in header
