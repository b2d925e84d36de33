"""Atomic outputs: write beside the target, then rename over it, so no reader sees half a file.

`tempfile` creates files 0600 and folders 0700 (private); outputs are ordinary shared files that
pipelines, containers and colleagues read, so they get 0644 / 0755 before the rename.

A process killed outright (SIGKILL, the OOM killer, a cluster's time limit) cannot remove its
temporaries, so their names carry the writer's host and PID: `.<target>.tmp-<pid>@<host>-...`.
The next writer of the same target removes those whose process is gone (`remove_stale`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
_OWNER = re.compile(r"\.tmp-(\d+)@([A-Za-z0-9_]+)-")


def temp_prefix(target: str | os.PathLike) -> str:
    """Name prefix of this process's temporaries for `target` (hidden, beside it)."""
    return f".{Path(target).name}.tmp-{os.getpid()}@{_HOST}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of `target` left by dead processes on this host; return them.

    A temporary of another host (a shared file system) or of a live process is kept: only its
    owner knows whether it is still being written.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    removed = []
    for path in target.parent.glob(f".{glob_escape(target.name)}.tmp-*"):
        owner = _OWNER.match(path.name, len(target.name) + 1)
        if owner is None or owner.group(2) != _HOST:
            continue
        pid = int(owner.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    """`name` with glob wildcards made literal (a target may be called `run[1].tsv`)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path` (same suffix, so writers that go by it still work); it
    replaces `path` only when the block succeeds, and is removed when it fails."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    handle, name = tempfile.mkstemp(
        prefix=temp_prefix(target), suffix=target.suffix or ".tmp", dir=target.parent
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
