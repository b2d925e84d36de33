"""One guard for every command that writes: no output may destroy an input, and every output
must be writable before any work starts.

A command that reads `--fasta x.fa` and writes `--out x.fa` would replace its own input with a
half-computed result; one that writes `metrics.json` and then fails on an unwritable `--plots`
leaves a half-finished output set. `check_outputs` refuses both up front with one line.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bigbird_genomics.errors import UserError

PathArg = str | os.PathLike | None
# option name (as the user typed it, e.g. "--out") -> one path, several paths, or None (unset)
Named = Mapping[str, PathArg | Sequence[PathArg]]


class OutputPathError(UserError):
    """An output path that would overwrite an input, collide with another output, or cannot be
    written."""


def _flatten(named: Named | None) -> list[tuple[str, Path]]:
    """(option, path) pairs of a mapping whose values are a path, a list of paths, or None."""
    pairs: list[tuple[str, Path]] = []
    for option, value in (named or {}).items():
        values: Iterable[PathArg] = (
            value if isinstance(value, (list, tuple)) else [value]  # type: ignore[list-item]
        )
        pairs.extend((option, Path(v)) for v in values if v is not None and str(v) != "")
    return pairs


def safe_name(record_id: str) -> str:
    """A file name for a record id: anything but letters, digits, '.', '-' and '_' becomes '_'
    (ids such as `chr1:100-200` or `a/b` are not file names)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", record_id).strip(".") or "record"


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def same_path(a: Path, b: Path) -> bool:
    """One file under two names: `os.path.samefile` (links, hard links) where both exist,
    equal resolved paths otherwise."""
    if a.exists() and b.exists():
        try:
            return os.path.samefile(a, b)
        except OSError:
            pass
    return _resolved(a) == _resolved(b)


def is_inside(path: Path, folder: Path) -> bool:
    """`path` is `folder` or lies (after resolving links) anywhere below it."""
    path, folder = _resolved(path), _resolved(folder)
    return path == folder or folder in path.parents


def _first_existing(path: Path) -> Path:
    current = _resolved(path)
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in `folder`: the only test that a read-only mount, a full
    quota or a missing permission fails (`os.access` says yes to root on most of them)."""
    with tempfile.TemporaryFile(prefix=".bigbird-write-test.", dir=folder):
        pass


def _check_writable(command: str, option: str, path: Path, *, directory: bool) -> None:
    kind = "folder" if directory else "file"
    if path.exists():
        if directory and not path.is_dir():
            raise OutputPathError(
                f"{command}: {option} {path} is a file, but a folder is written there; choose "
                "another path"
            )
        if not directory and path.is_dir():
            raise OutputPathError(
                f"{command}: {option} {path} is a folder, but a file is written there; give a "
                "file name"
            )
        if not directory and not path.is_file():
            raise OutputPathError(
                f"{command}: {option} {path} is not a regular file (a device or a pipe); give "
                "the path of an ordinary file"
            )
    ancestor = _first_existing(path.parent if not directory or not path.exists() else path)
    if not ancestor.is_dir():
        raise OutputPathError(
            f"{command}: {option} {path}: {ancestor} is a file, so no {kind} can be made below "
            "it; choose another path"
        )
    try:
        _probe_writable(ancestor)
    except OSError as error:
        reason = "a read-only file system" if error.errno == errno.EROFS else error.strerror
        raise OutputPathError(
            f"{command}: {option} {path}: cannot write in {ancestor} ({reason}); choose a "
            "writable location"
        ) from None


def check_outputs(
    command: str,
    *,
    inputs: Named | None = None,
    outputs: Named | None = None,
    input_dirs: Named | None = None,
    output_dirs: Named | None = None,
    replaced_dirs: Named | None = None,
) -> None:
    """Refuse, before any work, outputs that would destroy an input or cannot be written.

    Each argument maps the option name the user typed (`"--out"`, `"--fasta"`) to a path, a
    list of paths, or None (an option not given), so the error names the option:

    - `inputs`: files the command reads (FASTA, checkpoint, BED, tables).
    - `outputs`: files the command writes, including the fixed names it writes inside an output
      folder (e.g. `{"--out": out / "promoter.fa"}`), so two outputs cannot collide either.
    - `input_dirs`: folders the command reads (a tokenized data set, run directories); no
      output file or output folder may lie inside one.
    - `output_dirs`: folders the command creates or writes into (e.g. `--plots`).
    - `replaced_dirs`: output folders replaced as a whole (`tokenize --out`); no input may lie
      inside one.

    Raises `OutputPathError` (a `UserError`: one line, exit 2) when an output is an input (the
    same file after resolving links), two outputs are the same path, an output lies inside an
    input folder, or an output's location is not writable (parent a file, path a folder where
    a file goes, read-only mount). Usage, first thing in a command's `run`::

        check_outputs("predict", inputs={"--fasta": args.fasta, "--checkpoint": args.checkpoint},
                      outputs={"--out": args.out, "--bedgraph": args.bedgraph})
    """
    input_files = _flatten(inputs)
    output_files = _flatten(outputs)
    read_dirs = _flatten(input_dirs)
    write_dirs = _flatten(output_dirs) + _flatten(replaced_dirs)
    for out_option, out in output_files:
        for in_option, source in input_files:
            if same_path(out, source):
                raise OutputPathError(
                    f"{command}: {out_option} {out} is the input {in_option} {source}; writing "
                    f"it would destroy the input; choose another {out_option}"
                )
    for out_option, out in output_files + write_dirs:
        for in_option, folder in read_dirs:
            if is_inside(out, folder):
                raise OutputPathError(
                    f"{command}: {out_option} {out} is inside the input {in_option} {folder}; "
                    f"writing there would change the input; choose another {out_option}"
                )
    for out_option, folder in _flatten(replaced_dirs):
        for in_option, source in input_files + read_dirs:
            if is_inside(source, folder) or same_path(source, folder):
                raise OutputPathError(
                    f"{command}: {out_option} {folder} is replaced as a whole, but the input "
                    f"{in_option} {source} lies in it; choose another {out_option}"
                )
    written = output_files + write_dirs
    for index, (option, path) in enumerate(written):
        for other_option, other in written[index + 1 :]:
            if same_path(path, other):
                raise OutputPathError(
                    f"{command}: {option} and {other_option} are both {path}; give each output "
                    "its own path"
                )
    for option, path in write_dirs:  # folders first: their message is the direct one
        _check_writable(command, option, path, directory=True)
    for option, path in output_files:
        _check_writable(command, option, path, directory=False)
