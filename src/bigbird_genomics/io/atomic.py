"""Atomic outputs: write beside the target, then rename over it, so no reader sees half a file.

`tempfile` creates files 0600 and folders 0700 (private); outputs are ordinary shared files that
pipelines, containers and colleagues read, so they get 0644 / 0755 before the rename.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path` (same suffix, so writers that go by it still work); it
    replaces `path` only when the block succeeds, and is removed when it fails."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=target.suffix or ".tmp", dir=target.parent
    )
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        temp.chmod(FILE_MODE)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
