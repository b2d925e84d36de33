"""The run report: a prediction track along one long record, and a summary of every metric.

Reads only files other stages wrote (metrics.json, predict TSV/bedGraph, a BED of known sites,
the sweep table), so it can be re-run on any results directory. The summary is written twice
from the same sections: markdown for people reading files, HTML for `snakemake --report`.
Hand-written HTML (a few tables) instead of a markdown converter keeps the dependency list short.

Pictures (training plots, the sweep chart, the track) are linked by relative path in the
markdown and embedded as base64 in the HTML: `snakemake --report` shows summary.html on its own,
away from the files beside it, and a single self-contained file can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.atomic import atomic_path
from bigbird_genomics.io.paths import safe_name
from bigbird_genomics.io.writers import atomic_open

TOP_RECORDS = 5
HIT_THRESHOLD = 0.5


class ReportInputError(UserError):
    """An input of the report that is missing or not in the expected format."""


@dataclass
class Track:
    """Per-window scores of one record: one value array per label (bedGraph track)."""

    record_id: str
    starts: np.ndarray
    ends: np.ndarray
    values: dict[str, np.ndarray]

    @property
    def length(self) -> int:
        return int(self.ends.max()) if len(self.ends) else 0


@dataclass
class Site:
    """A known site (BED row) on the plotted record."""

    start: int
    end: int
    name: str


@dataclass
class Section:
    """One part of the summary: a title, some sentences, and at most one table."""

    title: str
    lines: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _bedgraph_rows(path: Path) -> Iterable[tuple[str, str, int, int, float]]:
    """(track name, chrom, start, end, value) for every data line of a bedGraph."""
    track = "score"
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if line.startswith("track"):
                track = line.split('name="', 1)[1].split('"', 1)[0] if 'name="' in line else track
                continue
            if not line.strip() or line.startswith(("#", "browser")):
                continue
            fields = line.split()
            if len(fields) < 4:
                raise ReportInputError(
                    f"{path}: line {number}: a bedGraph line needs chrom, start, end, value; "
                    f"got {line.strip()!r}"
                )
            yield track, fields[0], int(fields[1]), int(fields[2]), float(fields[3])


def read_track(path: str | os.PathLike[str], record: str | None = None) -> Track:
    """The bedGraph track(s) of `record` (default: the longest record), in two streaming passes.

    The first pass only finds record lengths, so a genome-wide bedGraph never sits in memory.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(
            f"{path}: no such bedGraph; run `bigbird-genomics predict --bedgraph`"
        )
    if record is None:
        lengths: dict[str, int] = {}
        for _, chrom, _, end, _ in _bedgraph_rows(path):
            lengths[chrom] = max(end, lengths.get(chrom, 0))
        if not lengths:
            raise ReportInputError(f"{path}: holds no bedGraph intervals to plot")
        record = max(lengths, key=lambda name: (lengths[name], name))
    columns: dict[str, list[tuple[int, int, float]]] = {}
    for track, chrom, start, end, value in _bedgraph_rows(path):
        if chrom == record:
            columns.setdefault(track, []).append((start, end, value))
    if not columns:
        raise ReportInputError(f"{path}: no intervals for record {record!r}; check --record")
    first = np.asarray(next(iter(columns.values())), dtype=np.float64)
    values = {name: np.asarray(rows, dtype=np.float64)[:, 2] for name, rows in columns.items()}
    return Track(record, first[:, 0].astype(np.int64), first[:, 1].astype(np.int64), values)


def read_sites(path: str | os.PathLike[str], record: str) -> list[Site]:
    """BED rows on `record` (columns chrom, start, end[, name]), via the one BED reader."""
    from bigbird_genomics.io.bed import iter_bed

    return [
        Site(row.start, row.end, row.name or f"site_{row.line}")
        for row in iter_bed(path, error=ReportInputError, what="BED file of known sites (--motifs)")
        if row.chrom == record
    ]


def site_enrichment(track: Track, sites: Sequence[Site], label: str) -> dict[str, float]:
    """How the track scores the known sites: mean score over sites vs elsewhere, and recall.

    Scores are per bedGraph interval; a site counts as found when an interval overlapping it
    scores above HIT_THRESHOLD.
    """
    values = track.values[label]
    inside = np.zeros(len(values), dtype=bool)
    found = 0
    for site in sites:
        overlap = (track.starts < site.end) & (track.ends > site.start)
        inside |= overlap
        found += bool((values[overlap] > HIT_THRESHOLD).any())
    outside = ~inside
    return {
        "sites": len(sites),
        "sites_found": found,
        "mean_at_sites": float(values[inside].mean()) if inside.any() else math.nan,
        "mean_elsewhere": float(values[outside].mean()) if outside.any() else math.nan,
        "fraction_of_record_above_threshold": float(
            ((track.ends - track.starts) * (values > HIT_THRESHOLD)).sum() / max(track.length, 1)
        ),
    }


def plot_track(track: Track, sites: Sequence[Site], out_png: str | os.PathLike[str]) -> Path:
    """Step plot of every label's window scores along the record, known sites marked below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bigbird_genomics.reporting.plots import save_figure

    figure, axes = plt.subplots(figsize=(12, 3.5))
    scale = 1e3 if track.length < 5e6 else 1e6
    unit = "kbp" if scale == 1e3 else "Mbp"
    for label, values in track.values.items():
        x = np.append(track.starts, track.ends[-1:]) / scale
        axes.stairs(values, x, label=label, linewidth=0.8)
    for index, site in enumerate(sites):
        axes.axvspan(
            site.start / scale,
            site.end / scale,
            ymin=0,
            ymax=0.06,
            color="black",
            label="known sites" if index == 0 else None,
        )
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlim(0, track.length / scale)
    axes.set_xlabel(f"{track.record_id} position ({unit})")
    axes.set_ylabel("probability")
    axes.set_title(f"Predicted probability per window along {track.record_id}")
    axes.legend(loc="upper right", fontsize="small", ncol=min(5, len(track.values) + 1))
    figure.tight_layout()
    return save_figure(figure, out_png)  # atomic; closes the figure


def _number(value: object) -> str:
    if value is None:  # metrics.json writes an undefined score (NaN) as null
        return "nan"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.4g}"


# The headline columns of a metrics table: (column, metrics.json keys tried in turn). Binary and
# multi-class tasks have `auroc`; multi-label (chromatin) tasks the mean over profiles.
HEADLINE_SCORES = (
    ("AUROC", ("auroc", "auroc_mean")),
    ("AUPRC", ("auprc", "auprc_mean")),
    ("accuracy", ("accuracy",)),
    ("F1", ("f1",)),
    ("MCC", ("mcc",)),
)
GROUP_SCORES = ("auroc_mean", "auroc_median", "auprc_mean", "auprc_median")
MAX_PROFILE_ROWS = 60  # a genome-wide chromatin model has hundreds: those stay in metrics.json


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ReportInputError(f"{path}: no such metrics file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportInputError(f"{path}: not valid JSON ({error})") from error


def _scored_split(metrics: dict) -> str | None:
    """The split a metrics.json scores: `evaluate` names it; training has test (val for MLM)."""
    named = metrics.get("split")
    if isinstance(named, str) and isinstance(metrics.get(named), dict):
        return named
    return next((s for s in ("test", "val") if isinstance(metrics.get(s), dict)), None)


def _first_number(scores: dict, keys: Sequence[str]) -> object:
    """The first of `keys` that `scores` has: a number, None for an undefined score (JSON null,
    shown as nan), or "" (an empty cell) when it has none of them."""
    for key in keys:
        value = scores.get(key)
        if value is None and key in scores:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    return ""


def _drop_empty_columns(section: Section, keep: int = 1) -> Section:
    """Leave out columns (after the first `keep`) that no row fills."""
    filled = [i for i in range(len(section.columns))
              if i < keep or any(row[i] for row in section.rows)]  # fmt: skip
    section.columns = [section.columns[i] for i in filled]
    section.rows = [[row[i] for i in filled] for row in section.rows]
    return section


def metrics_section(title: str, named_files: Sequence[tuple[str, Path]]) -> Section:
    """One row per metrics.json: the scored split's headline scores, the best checkpoint's
    validation loss, and how long it trained."""
    section = Section(
        title,
        ["Multi-label tasks: AUROC and AUPRC are the means over profiles (per group below)."],
    )
    section.columns = ["model", "task", "split", "examples", *(c for c, _ in HEADLINE_SCORES),
                       "val loss", "epochs", "steps"]  # fmt: skip
    multilabel = False
    for name, path in named_files:
        metrics = _read_json(path)
        split = _scored_split(metrics)
        scores = metrics.get(split, {}) if split else {}
        multilabel |= "auroc_mean" in scores
        row = [name, str(metrics.get("task_type", "")), split or "",
               _number(_first_number(scores, ("num_examples",)))]  # fmt: skip
        row += [_number(_first_number(scores, keys)) for _, keys in HEADLINE_SCORES]
        row += [_number(_first_number(metrics.get("val") or {}, ("loss",)))]
        row += [_number(_first_number(metrics, (key,))) for key in ("epochs", "global_step")]
        section.rows.append(row)
    if not multilabel:
        section.lines = []
    return _drop_empty_columns(section)


def _scores(path: Path) -> dict:
    metrics = _read_json(path)
    return metrics.get(_scored_split(metrics) or "", {})


def profile_groups_section(title: str, named_files: Sequence[tuple[str, Path]]) -> Section | None:
    """Multi-label models: AUROC/AUPRC over all profiles and per profile group (TF, histone,
    DNase...); None when no file is multi-label."""
    section = Section(
        title,
        ["Mean and median over the group's profiles; a profile with a single class in the "
         "split has no score and is left out."],
    )
    section.columns = ["model", "group", "mean AUROC", "median AUROC", "mean AUPRC",
                       "median AUPRC"]  # fmt: skip
    for name, path in named_files:
        scores = _scores(path)
        if "auroc_mean" not in scores:
            continue
        overall = [_number(scores.get(key, "")) for key in GROUP_SCORES]
        section.rows.append([name, "all profiles", *overall])
        for group in sorted({key.split("/")[1] for key in scores if key.startswith("group/")}):
            values = [scores.get(f"group/{group}/{key}", "") for key in GROUP_SCORES]
            section.rows.append([name, group, *(_number(v) for v in values)])
    return section if section.rows else None


def profiles_section(title: str, named_files: Sequence[tuple[str, Path]]) -> Section | None:
    """Multi-label models: each profile's AUROC, AUPRC and positives (the first
    MAX_PROFILE_ROWS); None when no file has a per-profile table."""
    section = Section(title)
    section.columns = ["model", "profile", "AUROC", "AUPRC", "positives"]
    total = 0
    for name, path in named_files:
        for profile, values in (_scores(path).get("per_label") or {}).items():
            total += 1
            if len(section.rows) < MAX_PROFILE_ROWS:
                section.rows.append([name, str(profile), *(
                    _number(values.get(key, "")) for key in ("auroc", "auprc", "positives"))])
    if total > len(section.rows):
        section.lines.append(
            f"The first {len(section.rows)} of {total} profiles; all are in metrics.json "
            "(per_label)."
        )
    return section if section.rows else None


PLOT_CAPTIONS = {  # the plots a training run draws (training/run_outputs.py), in report order
    "loss": "loss curves",
    "roc": "ROC (test split)",
    "pr": "precision-recall (test split)",
    "attention_layout": "attention layout",
}


def _image_line(caption: str, path: Path, out_dir: Path) -> str:
    """A markdown image, its path relative to the report directory."""
    return f"![{caption}]({Path(os.path.relpath(path, out_dir)).as_posix()})"


def run_plots_section(runs: Sequence[Path], out_dir: Path) -> Section | None:
    """The pictures each training run drew into `<run>/plots/`; None when there are none."""
    section = Section("Training plots")
    for run in runs:
        found = {png.stem: png for png in sorted(Path(run, "plots").glob("*.png"))}
        order = [stem for stem in PLOT_CAPTIONS if stem in found]
        order += [stem for stem in found if stem not in PLOT_CAPTIONS]
        section.lines += [
            _image_line(f"{Path(run).name}: {PLOT_CAPTIONS.get(stem, stem)}", found[stem], out_dir)
            for stem in order
        ]
    return section if section.lines else None


def predictions_section(paths: Sequence[Path]) -> Section:
    """Per prediction file: records, and per label how many records score above threshold."""
    section = Section(
        "Predictions",
        [f"Records with max window probability > {HIT_THRESHOLD}; top records by max."],
    )
    section.columns = ["file", "records", "label", f"records > {HIT_THRESHOLD}", "top records"]
    for path in paths:
        if not path.is_file():
            raise ReportInputError(f"{path}: no such prediction TSV")
        with path.open(encoding="utf-8") as stream:
            header = stream.readline().rstrip("\n").split("\t")
            rows = [line.rstrip("\n").split("\t") for line in stream if line.strip()]
        labels = [name[: -len("_max")] for name in header if name.endswith("_max")]
        for label in labels:
            column = header.index(f"{label}_max")
            scores = np.array([float(row[column]) for row in rows])
            order = np.argsort(-np.nan_to_num(scores, nan=-1.0), kind="stable")[:TOP_RECORDS]
            top = ", ".join(f"{rows[i][0]} ({scores[i]:.3f})" for i in order)
            section.rows.append(
                [path.stem, str(len(rows)), label, str(int((scores > HIT_THRESHOLD).sum())), top]
            )
    return section


def sweep_section(path: Path, plot: Path | None = None, out_dir: Path | None = None) -> Section:
    """The sweep-summary table: runs named by their directory, settings that every run shares
    said once above the table, and the sweep's bar chart when given."""
    if not path.is_file():
        raise ReportInputError(f"{path}: no such sweep table")
    lines = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line]
    section = Section("Sparsity sweep")
    if plot is not None and out_dir is not None:
        section.lines.append(_image_line("sweep: main metric per run", plot, out_dir))
    if not lines:
        return section
    header, rows = lines[0], [[_cell(v) for v in row] for row in lines[1:]]
    if header and header[0] == "run":
        for row in rows:
            row[0] = Path(row[0]).name or row[0]
    shared = [i for i in range(1, len(header))
              if len(rows) > 1 and len({row[i] if i < len(row) else "" for row in rows}) == 1]
    if shared:
        section.lines.insert(0, "Same in every run: " + ", ".join(
            f"{header[i]}={rows[0][i]}" for i in shared) + ".")  # fmt: skip
    kept = [i for i in range(len(header)) if i not in shared]
    section.columns = [header[i] for i in kept]
    section.rows = [[row[i] if i < len(row) else "" for i in kept] for row in rows]
    return section


def _cell(value: str) -> str:
    try:
        return _number(float(value)) if "." in value or "e" in value.lower() else value
    except ValueError:
        return value


def track_section(track: Track, sites: Sequence[Site], png_name: str) -> Section:
    section = Section(
        f"Prediction track along {track.record_id}",
        [
            f"{len(track.starts)} windows over {track.length} bp; {len(sites)} known sites. "
            f"A site is found when a window over it scores > {HIT_THRESHOLD}.",
            f"![prediction track]({png_name})",
        ],
    )
    section.columns = ["label", "sites found", "mean at sites", "mean elsewhere", "record > 0.5"]
    for label in track.values:
        stats = site_enrichment(track, sites, label)
        section.rows.append(
            [
                label,
                f"{stats['sites_found']}/{stats['sites']}",
                _number(stats["mean_at_sites"]),
                _number(stats["mean_elsewhere"]),
                _number(stats["fraction_of_record_above_threshold"]),
            ]
        )
    return section


TOP_VARIANTS = 10


def ism_png(path: Path) -> Path:
    """The ISM picture to show: `path` itself, or from a folder written by `ism` the PNG of the
    record whose strongest substitution is largest (summary.tsv)."""
    if path.is_file():
        return path
    summary = path / "summary.tsv"
    if not summary.is_file():
        raise ReportInputError(
            f"--ism-png {path}: neither a PNG nor a folder written by `bigbird-genomics ism` "
            "(no summary.tsv in it)"
        )
    with summary.open(encoding="utf-8") as stream:
        header = stream.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in stream if line.strip()]
    column = next((i for i, name in enumerate(header) if name.endswith("_max_abs_effect")), None)
    if column is None or not rows:
        raise ReportInputError(f"{summary}: no records or no *_max_abs_effect column")
    best = max(rows, key=lambda row: float(row[column]))
    if "png" in header:  # the picture `ism` wrote for the record (empty under --no-plots)
        name = best[header.index("png")]
        if not name:
            raise ReportInputError(
                f"{summary}: record {best[0]} has no picture (was `ism` run with --no-plots?)"
            )
        png = path / name
    else:  # a summary without the column: the name `ism` gives a record's files
        png = path / f"{safe_name(best[0])}.png"
    if not png.is_file():
        raise ReportInputError(f"{png}: no such ISM picture (was `ism` run with --no-plots?)")
    return png


def ism_section(png_name: str, source: Path) -> Section:
    return Section(
        "In-silico mutagenesis",
        [
            f"Effect of every single-base substitution on the model's log-odds ({source.name}): "
            "the track above, a sequence logo of the strongest 30 bp below.",
            f"![in-silico mutagenesis]({png_name})",
        ],
    )


def variant_effect_section(path: Path, top: int = TOP_VARIANTS) -> Section:
    """The `top` scored ALT alleles by |diff| of any label, and the count of each status."""
    if not path.is_file():
        raise ReportInputError(f"{path}: no such variant-effect TSV")
    with path.open(encoding="utf-8") as stream:
        header = stream.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in stream if line.strip()]
    diffs = [i for i, name in enumerate(header) if name.endswith("_diff")]
    if "status" not in header or not diffs:
        raise ReportInputError(f"{path}: not a `bigbird-genomics variant-effect` table")
    status = header.index("status")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[status]] = counts.get(row[status], 0) + 1
    scored = [row for row in rows if row[status] == "ok"]
    scored.sort(key=lambda row: -max(abs(float(row[i])) for i in diffs))
    shown = [
        i for i, name in enumerate(header)
        if i < 5 or name.endswith(("_diff", "_log_odds_ratio"))
    ]
    section = Section(
        "Variant effects",
        [
            f"{len(rows)} ALT alleles: "
            + ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
            + f". The {min(top, len(scored))} with the largest |p_alt - p_ref|:"
        ],
    )
    section.columns = [header[i] for i in shown]
    section.rows = [[_cell(row[i]) for i in shown] for row in scored[:top]]
    return section


def to_markdown(title: str, sections: Sequence[Section]) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for line in section.lines:  # a paragraph each: a picture on its own line
            out += [line, ""]
        if section.columns:
            out.append("| " + " | ".join(section.columns) + " |")
            out.append("|" + "---|" * len(section.columns))
            out += ["| " + " | ".join(row) + " |" for row in section.rows]
            out.append("")
    return "\n".join(out)


def _image(line: str) -> tuple[str, str] | None:
    """(caption, source) of a markdown image line `![caption](source)`, else None."""
    if not (line.startswith("![") and line.endswith(")") and "](" in line):
        return None
    caption, source = line[2:-1].split("](", 1)
    return caption, source


def _embedded(source: str, base_dir: Path | None) -> str:
    """A data: URI of a PNG beside the report (so the HTML stands alone), else the link as is."""
    path = Path(base_dir, source) if base_dir is not None else None
    if path is None or path.suffix.lower() != ".png" or not path.is_file():
        return source
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_html(title: str, sections: Sequence[Section], base_dir: Path | None = None) -> str:
    """The summary as one HTML page; pictures (markdown image lines, paths relative to
    `base_dir`) are embedded, two to a row where a section has several."""
    escape = html.escape
    out = [
        "<!DOCTYPE html>",
        f"<html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
        "figure{display:inline-block;vertical-align:top;margin:.5em;max-width:100%}"
        "figure.half{max-width:47%}figcaption{font-size:small;color:#444}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    for section in sections:
        out.append(f"<h2>{escape(section.title)}</h2>")
        several = sum(_image(line) is not None for line in section.lines) > 1
        for line in section.lines:
            image = _image(line)
            if image is None:
                out.append(f"<p>{escape(line)}</p>")
                continue
            caption, source = image
            out.append(
                f"<figure{' class=half' if several else ''}>"
                f"<img src='{escape(_embedded(source, base_dir))}' alt='{escape(caption)}'>"
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        if section.columns:
            out.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in section.columns)
                       + "</tr>")
            for row in section.rows:
                out.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    out_dir: str | os.PathLike[str],
    *,
    runs: Sequence[Path] = (),
    evaluations: Sequence[Path] = (),
    predictions: Sequence[Path] = (),
    track: Path | None = None,
    motifs: Path | None = None,
    record: str | None = None,
    sweep: Path | None = None,
    sweep_plot: Path | None = None,
    title: str = "bigbird-genomics run report",
    ism: Path | None = None,
    variant_effects: Path | None = None,
) -> dict[str, Path]:
    """Write summary.md, summary.html (and track.png) into `out_dir`; returns their paths.

    Run names are run directory names; evaluation names are their parent directory names. The
    sweep chart is `sweep_plot`, or the PNG beside the sweep table (`summary.png`) if there is one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    written: dict[str, Path] = {}
    if runs:
        named = [(Path(run).name, Path(run) / "metrics.json") for run in runs]
        sections.append(metrics_section("Training runs (metrics.json of each run)", named))
    if evaluations:
        named = [(Path(path).parent.name, Path(path)) for path in evaluations]
        sections.append(metrics_section("Evaluation (bigbird-genomics evaluate)", named))
    sections += multilabel_sections(runs, evaluations)
    plots = run_plots_section([Path(run) for run in runs], out)
    if plots is not None:
        sections.append(plots)
    if predictions:
        sections.append(predictions_section([Path(p) for p in predictions]))
    if track is not None:
        scores = read_track(track, record)
        sites = read_sites(motifs, scores.record_id) if motifs else []
        written["track"] = plot_track(scores, sites, out / "track.png")
        sections.append(track_section(scores, sites, "track.png"))
    if sweep is not None:
        sweep = Path(sweep)
        plot = Path(sweep_plot) if sweep_plot else sweep.with_suffix(".png")
        sections.append(sweep_section(sweep, plot if plot.is_file() else None, out))
    if variant_effects is not None:
        sections.append(variant_effect_section(Path(variant_effects)))
    if ism is not None:
        source = ism_png(Path(ism))
        with atomic_path(out / "ism.png") as temporary:
            shutil.copyfile(source, temporary)
        written["ism"] = out / "ism.png"
        sections.append(ism_section("ism.png", source))
    if not sections:
        raise ReportInputError(
            "nothing to report: pass --runs, --evaluations, --predictions, --track or --sweep"
        )
    for name, text in (
        ("markdown", to_markdown(title, sections)),
        ("html", to_html(title, sections, base_dir=out)),
    ):
        path = out / ("summary.md" if name == "markdown" else "summary.html")
        with atomic_open(path) as stream:
            stream.write(text + "\n")
        written[name] = path
    return written


def multilabel_sections(runs: Sequence[Path], evaluations: Sequence[Path]) -> list[Section]:
    """Per profile group and per profile, from the evaluations (else the training runs, which
    score the same test split in the workflow)."""
    if evaluations:
        named = [(Path(path).parent.name, Path(path)) for path in evaluations]
    else:
        named = [(Path(run).name, Path(run) / "metrics.json") for run in runs]
    source = "evaluation" if evaluations else "training runs"
    found = [profile_groups_section(f"Profile groups ({source})", named),
             profiles_section(f"Profiles ({source})", named)]  # fmt: skip
    return [section for section in found if section is not None]
