"""The run report: a prediction track along one long record, and a summary of every metric.

Reads only files other stages wrote (metrics.json, predict TSV/bedGraph, a BED of known sites,
the sweep table), so it can be re-run on any results directory. The summary is written twice
from the same sections: markdown for people reading files, HTML for `snakemake --report`.
Hand-written HTML (a few tables) instead of a markdown converter keeps the dependency list short.
"""

from __future__ import annotations

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
from bigbird_genomics.io.writers import atomic_open

MAX_METRIC_COLUMNS = 12
TOP_RECORDS = 5
HIT_THRESHOLD = 0.5
SKIPPED_METRIC_KEYS = {"per_label", "attention", "model", "train", "best_checkpoint"}


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
    """BED rows on `record` (columns chrom, start, end[, name])."""
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"{path}: no such BED file of known sites (--motifs)")
    sites = []
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or not (fields[1].isdigit() and fields[2].isdigit()):
                raise ReportInputError(
                    f"{path}: line {number}: a BED line needs chrom, start, end (0-based); "
                    f"got {line.strip()!r}"
                )
            if fields[0] == record:
                name = fields[3] if len(fields) > 3 else f"site_{number}"
                sites.append(Site(int(fields[1]), int(fields[2]), name))
    return sites


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
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _scalar_metrics(metrics: dict, prefix: str = "") -> dict[str, object]:
    """Numbers of a metrics.json, nested keys joined by '/' (`test/auroc`), split metrics first.

    Per-label tables and the attention settings are left to the JSON itself.
    """
    flat: dict[str, object] = {}
    for key, value in metrics.items():
        if key in SKIPPED_METRIC_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_scalar_metrics(value, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = value
    return dict(sorted(flat.items(), key=lambda item: not item[0].startswith("test/")))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ReportInputError(f"{path}: no such metrics file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportInputError(f"{path}: not valid JSON ({error})") from error


def metrics_section(title: str, named_files: Sequence[tuple[str, Path]]) -> Section:
    """One row per metrics.json, one column per scalar metric they share (first files first)."""
    section = Section(title)
    tables = [(name, _scalar_metrics(_read_json(path))) for name, path in named_files]
    keys: list[str] = []
    for _, metrics in tables:
        keys += [key for key in metrics if key not in keys]
    keys = keys[:MAX_METRIC_COLUMNS]
    section.columns = ["model", *keys]
    section.rows = [[name, *(_number(m.get(key, "")) for key in keys)] for name, m in tables]
    return section


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


def sweep_section(path: Path) -> Section:
    """The sweep-summary table as it is."""
    if not path.is_file():
        raise ReportInputError(f"{path}: no such sweep table")
    lines = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line]
    section = Section("Sparsity sweep")
    if lines:
        section.columns, section.rows = lines[0], [[_cell(v) for v in row] for row in lines[1:]]
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
    # the file name `ism` gives a record (see inference.ism.safe_name)
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in best[0]).strip(".")
    png = path / f"{name or 'record'}.png"
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
        out += [*(line for line in section.lines), ""] if section.lines else []
        if section.columns:
            out.append("| " + " | ".join(section.columns) + " |")
            out.append("|" + "---|" * len(section.columns))
            out += ["| " + " | ".join(row) + " |" for row in section.rows]
            out.append("")
    return "\n".join(out)


def to_html(title: str, sections: Sequence[Section]) -> str:
    escape = html.escape
    out = [
        "<!DOCTYPE html>",
        f"<html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    for section in sections:
        out.append(f"<h2>{escape(section.title)}</h2>")
        for line in section.lines:
            if line.startswith("![") and "](" in line:
                source = line.split("](", 1)[1].rstrip(")")
                out.append(f"<p><img src='{escape(source)}' alt='{escape(section.title)}'></p>")
            else:
                out.append(f"<p>{escape(line)}</p>")
        if section.columns:
            out.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in section.columns))
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
    title: str = "bigbird-genomics run report",
    ism: Path | None = None,
    variant_effects: Path | None = None,
) -> dict[str, Path]:
    """Write summary.md, summary.html (and track.png) into `out_dir`; returns their paths.

    Run names are run directory names; evaluation names are their parent directory names.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    written: dict[str, Path] = {}
    if runs:
        named = [(Path(run).name, Path(run) / "metrics.json") for run in runs]
        sections.append(metrics_section("Training runs (test split, metrics.json)", named))
    if evaluations:
        named = [(Path(path).parent.name, Path(path)) for path in evaluations]
        sections.append(metrics_section("Evaluation (bigbird-genomics evaluate)", named))
    if predictions:
        sections.append(predictions_section([Path(p) for p in predictions]))
    if track is not None:
        scores = read_track(track, record)
        sites = read_sites(motifs, scores.record_id) if motifs else []
        written["track"] = plot_track(scores, sites, out / "track.png")
        sections.append(track_section(scores, sites, "track.png"))
    if sweep is not None:
        sections.append(sweep_section(Path(sweep)))
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
        ("html", to_html(title, sections)),
    ):
        path = out / ("summary.md" if name == "markdown" else "summary.html")
        with atomic_open(path) as stream:
            stream.write(text + "\n")
        written[name] = path
    return written
