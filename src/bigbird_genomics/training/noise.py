"""Quiet the third-party messages a training run cannot act on, each matched narrowly.

Only messages that say nothing about the user's run are dropped: Lightning's advertisement for
its cloud logger, and a deprecation inside Lightning's own code that newer torch releases warn
about. Every other warning (too few batches for the logging interval, etc.) still shows.
"""

from __future__ import annotations

import logging
import warnings

# pytorch_lightning's rank_zero_info goes through this logger (rank_zero_module.log)
LIGHTNING_RANK_ZERO_LOGGER = "pytorch_lightning.utilities.rank_zero"


class _DropLitLoggerTip(logging.Filter):
    """Drops Lightning's "Tip: ... try installing litlogger" advertisement (printed per Trainer)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Tip:" in message and "litlogger" in message)


def silence_third_party_noise() -> None:
    """Install the filters (idempotent: a multirun calls it once per job)."""
    # torch 2.13 deprecates `isinstance(x, LeafSpec)`, which pytorch_lightning's
    # utilities/_pytree.py still does on every fit
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )
    logger = logging.getLogger(LIGHTNING_RANK_ZERO_LOGGER)
    if not any(isinstance(f, _DropLitLoggerTip) for f in logger.filters):
        logger.addFilter(_DropLitLoggerTip())
