"""One cache for everything derived from a block layout: the layout itself and each backend's plan.

Layouts and plans depend only on (blocks, config, layer, step, heads[, device]) and are drawn or
built once, then reused by every forward pass of that layer. One bounded LRU store holds them
all, so there is a single size limit and a single place to clear (`clear_plans`), rather than a
private cache per backend. With `redraw_random_per_step` every step adds new entries; the
least recently used ones are dropped first.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import ParamSpec, TypeVar

# Entries kept across all kinds: a 24-layer model with one layout and one plan per layer, and
# room for a second sequence length or device.
MAX_ENTRIES = 128

_Args = ParamSpec("_Args")
_Result = TypeVar("_Result")

_entries: OrderedDict[tuple[str, tuple[Hashable, ...]], object] = OrderedDict()
_lock = threading.RLock()


def cached_plan(builder: Callable[_Args, _Result]) -> Callable[_Args, _Result]:
    """Decorate a builder of positional, hashable arguments: its results go to the shared store.

    The wrapper has `cache_clear()`, which drops this builder's entries only.
    """
    kind = f"{builder.__module__}.{builder.__qualname__}"

    @functools.wraps(builder)
    def wrapper(*args: _Args.args, **kwargs: _Args.kwargs) -> _Result:
        if kwargs:
            raise TypeError(f"{builder.__name__} takes positional arguments only (cached)")
        key = (kind, args)
        with _lock:
            if key in _entries:
                _entries.move_to_end(key)
                return _entries[key]  # type: ignore[return-value]
        # Built outside the lock: a builder may itself ask for a cached layout.
        result = builder(*args)
        with _lock:
            _entries[key] = result
            _entries.move_to_end(key)
            while len(_entries) > MAX_ENTRIES:
                _entries.popitem(last=False)
        return result

    wrapper.cache_clear = lambda: clear_plans(kind)  # type: ignore[attr-defined]
    return wrapper


def clear_plans(kind: str | None = None) -> None:
    """Drop every cached layout and plan (or those of one builder, by its qualified name)."""
    with _lock:
        if kind is None:
            _entries.clear()
            return
        for key in [key for key in _entries if key[0] == kind]:
            del _entries[key]


def cached_kinds() -> dict[str, int]:
    """Entries per builder currently held (for tests and diagnostics)."""
    with _lock:
        counts: dict[str, int] = {}
        for kind, _ in _entries:
            counts[kind] = counts.get(kind, 0) + 1
        return counts
