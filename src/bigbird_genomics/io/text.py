"""Text input that is not UTF-8 (a latin-1 export from a spreadsheet or an old pipeline).

Python's UnicodeDecodeError gives a byte offset into a decoder buffer, not a line; the file
is read again, line by line as bytes, to say which line holds the first byte that is not UTF-8.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bigbird_genomics.errors import UserError


def first_non_utf8_line(path: str | os.PathLike) -> tuple[int, int] | None:
    """(line number, offending byte) of the first line that is not UTF-8, or None."""
    path = Path(path)
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return number, raw[error.start]
    return None


def not_utf8_message(path: str | os.PathLike, what: str = "file") -> str:
    """`<path>: line N is not UTF-8 text (byte 0x..)`, and how to convert the file."""
    where = first_non_utf8_line(path)
    line = f"line {where[0]} (byte 0x{where[1]:02x})" if where else "it"
    return (
        f"{path}: {line} is not UTF-8 text; save the {what} as UTF-8 (from latin-1: "
        f"`iconv -f latin1 -t utf-8 {path} > converted`)"
    )


@contextmanager
def utf8_errors(
    path: str | os.PathLike, error: type[UserError], what: str = "file"
) -> Iterator[None]:
    """Turn a UnicodeDecodeError raised while reading `path` into `error` naming its line."""
    try:
        yield
    except UnicodeDecodeError:
        raise error(not_utf8_message(path, what)) from None
