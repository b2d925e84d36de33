"""Hydra callbacks: refuse an unwritable run directory before Hydra writes into it; at the end of
a multirun, summarise its runs into summary.tsv / summary.png."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bigbird_genomics.errors import UserError

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """Writes `<sweep dir>/summary.tsv` and `summary.png` (see `sweep_summary`)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from bigbird_genomics.io.run_dir import FAILED_RUN_FILE
        from bigbird_genomics.reporting.sweep_summary import write_summary

        sweep_dir = Path(config.hydra.sweep.dir)
        failed = sorted(path.parent.name for path in sweep_dir.glob(f"*/{FAILED_RUN_FILE}"))
        if failed:
            log.warning(
                "%d sweep job(s) did not train (%s): see %s in their directories",
                len(failed), ", ".join(failed), FAILED_RUN_FILE,
            )
        try:
            rows = write_summary([sweep_dir], sweep_dir / "summary.tsv", sweep_dir / "summary.png")
            log.info("sweep summary of %d runs: %s", len(rows), sweep_dir / "summary.tsv")
        except UserError as error:
            log.warning("no sweep summary: %s", error)
        finally:
            if failed:  # the other jobs ran, but scripts and CI must see the failure (SystemExit
                # passes Hydra's callback wrapper, which turns exceptions into warnings)
                raise SystemExit(2)


class CheckRunDir(Callback):
    """One line naming `hydra.run.dir` (or `hydra.sweep.dir`) when it cannot be written (a
    read-only mount, a file in the way): Hydra creates it and writes `.hydra/` before the
    training code runs, and would fail there with a traceback."""

    def _check(self, key: str, folder: str) -> None:
        from bigbird_genomics.io.paths import check_outputs

        try:
            check_outputs("bigbird-genomics-train", output_dirs={key: folder})
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None  # passes Hydra's callback wrapper, unlike exceptions

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.sweep.dir", config.hydra.sweep.dir)
