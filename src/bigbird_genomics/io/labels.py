"""Labels for supervised data: from FASTA headers or from a TSV/CSV sidecar keyed by record id.

Header labels: `>id label=1` (one label named `label`) or `>id labels=0,1,0` (labels named
`label_0`, `label_1`, ... unless a label-groups table names them, in its row order), or
`>id class=3` (a class index 0-255 for task.type=multiclass: one label named `class`), and an
optional `split=train|val|test`. Sidecar: a column `id` plus one 0/1 column per label, or a
single `class` column of class indices.
Label groups table: columns `label` and `group` (e.g. TF / DHS / histone).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.text import utf8_errors

SPLITS: tuple[str, ...] = ("train", "val", "test")
CLASS_LABEL = "class"  # the one label of multi-class data: a class index, not a 0/1 flag
MAX_CLASS = 255  # labels are stored as uint8
_MAX_LISTED = 10


class LabelError(UserError):
    """Labels that are missing, malformed or do not match the FASTA records."""


@dataclass
class LabelTable:
    """Labels read from a sidecar: `values[id]` is a float32 vector in `names` order."""

    names: list[str]
    values: dict[str, np.ndarray] = field(repr=False)
    path: Path | None = None
    lines: dict[str, int] = field(default_factory=dict, repr=False)  # id -> file line number

    def contradiction(self, record_id: str, description: str, where: str) -> str | None:
        """How a record's header labels contradict this table's row for it, or None.

        The table is the label source when given; a header with as many labels that says
        otherwise means one of the two is out of date, and training on either would be a silent
        guess. Header labels of another count (another task's) are left to the table.
        """
        try:
            header = header_labels(description, where)
        except LabelError:  # `label=promoter`: not 0/1 labels, so nothing to contradict
            return None
        table = self.values.get(record_id)
        if header is None or table is None or header.shape != table.shape:
            return None
        if np.array_equal(header, table):
            return None
        return (
            f"{where} says {_shown(header)}, line {self.lines.get(record_id, '?')} of the "
            f"table says {_shown(table)}"
        )

    def check_contradictions(self, contradictions: list[str]) -> None:
        """Refuse the table if any record's header labels contradict it, naming both sources."""
        if not contradictions:
            return
        shown = "; ".join(contradictions[:3]) + ("; ..." if len(contradictions) > 3 else "")
        raise LabelError(
            f"{self.path}: the labels ({', '.join(self.names)}) of {len(contradictions)} "
            f"record(s) contradict their FASTA header labels: {shown}. Fix the source that is "
            "wrong, or remove the headers' label=/labels=/class= fields to let the table decide"
        )


def header_fields(description: str) -> dict[str, str]:
    """`key=value` words of a FASTA header after the record id (other words are ignored)."""
    fields: dict[str, str] = {}
    for word in description.split()[1:]:
        key, sep, value = word.partition("=")
        if sep and key:
            fields[key] = value
    return fields


def _parse_binary(text: str, where: str) -> float:
    if text.strip() in ("0", "1", "0.0", "1.0"):
        return float(text)
    raise LabelError(f"{where}: label value {text!r} is not 0 or 1; labels must be 0/1")


def _parse_class(text: str, where: str) -> float:
    value = text.strip()
    if value.isdigit() and int(value) <= MAX_CLASS:
        return float(int(value))
    raise LabelError(
        f"{where}: class {text!r} is not a class index (a whole number from 0 to {MAX_CLASS})"
    )


def header_labels(description: str, where: str) -> np.ndarray | None:
    """Labels in a header (`label=1`, `labels=0,1,0` or `class=3`), or None when it has none."""
    fields = header_fields(description)
    given = [key for key in ("label", "labels", CLASS_LABEL) if key in fields]
    if len(given) > 1:
        raise LabelError(f"{where}: header has {' and '.join(k + '=' for k in given)}; keep one")
    if CLASS_LABEL in fields:
        return np.array([_parse_class(fields[CLASS_LABEL], where)], dtype=np.float32)
    if "label" in fields:
        return np.array([_parse_binary(fields["label"], where)], dtype=np.float32)
    if "labels" in fields:
        values = [_parse_binary(v, where) for v in fields["labels"].split(",")]
        return np.array(values, dtype=np.float32)
    return None


def header_label_names(description: str, count: int) -> list[str]:
    """Default names: `label` for `label=`, `label_0..` for `labels=`, `class` for `class=`."""
    fields = header_fields(description)
    if "labels" in fields:
        return [f"label_{i}" for i in range(count)]
    return [CLASS_LABEL] if CLASS_LABEL in fields else ["label"]


def header_split(description: str, where: str) -> str | None:
    """`split=train|val|test` from a header, or None."""
    split = header_fields(description).get("split")
    if split is not None and split not in SPLITS:
        raise LabelError(f"{where}: split={split!r} must be one of {', '.join(SPLITS)}")
    return split


def _shown(values: np.ndarray) -> str:
    return ",".join(str(int(v)) for v in values)


def _dialect(path: Path) -> str:
    return "," if path.suffix.lower() == ".csv" else "\t"


def _read_rows(
    path: Path, required: tuple[str, ...]
) -> tuple[list[str], int, list[tuple[int, dict]]]:
    """Columns, the header's line number, and (line number, row) pairs; skips '#' lines.

    Line numbers are the file's own (comment lines included), so messages point at the line
    an editor shows.
    """
    if not path.is_file():
        raise LabelError(f"{path}: no such label file")
    file_lines: list[int] = []  # file line number of each line the csv reader gets

    def data_lines(handle: Iterable[str]) -> Iterator[str]:
        for number, line in enumerate(handle, start=1):
            if not line.startswith("#"):
                file_lines.append(number)
                yield line

    # utf-8-sig: spreadsheets ("CSV UTF-8") start the file with a byte-order mark
    with (
        utf8_errors(path, LabelError, "table"),
        open(path, newline="", encoding="utf-8-sig") as handle,
    ):
        reader = csv.DictReader(data_lines(handle), delimiter=_dialect(path))
        columns = [c.strip() for c in (reader.fieldnames or [])]
        header_line = file_lines[reader.line_num - 1] if reader.line_num else 1
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise LabelError(
                f"{path}: line {header_line}: column(s) {', '.join(map(repr, repeated))} appear "
                "more than once in the header; give every column its own name"
            )
        if "" in columns:
            raise LabelError(
                f"{path}: line {header_line}: column {columns.index('') + 1} of the header has "
                "no name (a trailing separator?); name it or remove it"
            )
        missing = [c for c in required if c not in columns]
        if missing:
            sep = "comma" if _dialect(path) == "," else "tab"
            raise LabelError(
                f"{path}: line {header_line}: header must have column(s) {', '.join(missing)} "
                f"({sep}-separated); found {columns or 'no header'}"
            )
        reader.fieldnames = columns
        rows = []
        for row in reader:
            line = file_lines[reader.line_num - 1]
            extra = [cell for cell in row.get(None) or [] if cell.strip()]
            if extra:  # DictReader files cells beyond the header under None; empty ones (a
                # spreadsheet's trailing separator) carry nothing
                raise LabelError(
                    f"{path}: line {line}: {len(columns) + len(row[None])} cells but the header "
                    f"has {len(columns)} columns ({', '.join(columns)})"
                )
            rows.append((line, row))
    return columns, header_line, rows


def read_label_table(path: str | os.PathLike) -> LabelTable:
    """Read a sidecar: column `id` + one 0/1 column per label, or + one `class` column of class
    indices (TSV, or CSV by extension)."""
    path = Path(path)
    columns, header_line, rows = _read_rows(path, ("id",))
    names = [c for c in columns if c != "id"]
    if not names:
        raise LabelError(f"{path}: line {header_line}: no label columns besides 'id'")
    if CLASS_LABEL in names and len(names) > 1:
        raise LabelError(
            f"{path}: line {header_line}: a '{CLASS_LABEL}' column (class indices, multi-class) "
            "must be the only label column"
        )
    parse = _parse_class if names == [CLASS_LABEL] else _parse_binary
    values: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        record_id = (row.get("id") or "").strip()
        if not record_id:
            raise LabelError(f"{path}: line {line}: empty id")
        if record_id in values:
            raise LabelError(
                f"{path}: line {line}: id '{record_id}' listed twice (first on line "
                f"{first_line[record_id]})"
            )
        vector = []
        for name in names:
            cell = row.get(name)
            if cell is None:
                raise LabelError(f"{path}: line {line}: missing value for column '{name}'")
            vector.append(parse(cell, f"{path}: line {line}, column '{name}'"))
        values[record_id] = np.array(vector, dtype=np.float32)
        first_line[record_id] = line
    if not values:
        raise LabelError(f"{path}: has a header but no rows")
    return LabelTable(names=names, values=values, path=path, lines=first_line)


def read_label_groups(path: str | os.PathLike) -> dict[str, str]:
    """label -> group (e.g. TF, DHS, histone), in file order."""
    path = Path(path)
    _, _, rows = _read_rows(path, ("label", "group"))
    groups: dict[str, str] = {}
    for line, row in rows:
        label = (row.get("label") or "").strip()
        if not label:
            raise LabelError(f"{path}: line {line}: empty label name")
        if label in groups:
            raise LabelError(f"{path}: line {line}: label '{label}' listed twice")
        groups[label] = (row.get("group") or "").strip()
    return groups


def _listing(ids: list[str]) -> str:
    shown = ", ".join(ids[:_MAX_LISTED])
    more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
    return f"{shown}{more}"


def check_ids(table: LabelTable, fasta_ids: list[str], fasta: Path) -> None:
    """Every FASTA record needs labels and every labelled id a record; list those that don't."""
    seen = set(fasta_ids)
    missing = [i for i in fasta_ids if i not in table.values]
    extra = [i for i in table.values if i not in seen]
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} record id(s) of {fasta} have no labels: {_listing(missing)}"
        )
    if extra:
        problems.append(f"{len(extra)} labelled id(s) are not in {fasta}: {_listing(extra)}")
    if problems:
        raise LabelError(
            f"{table.path}: labels do not match the FASTA records; "
            + "; ".join(problems)
            + ". Make the label table's 'id' column list exactly the FASTA record ids."
        )
