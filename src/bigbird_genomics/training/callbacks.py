"""Lightning callbacks of our own: training throughput in real (non-padding) tokens per second."""

from __future__ import annotations

import time

import pytorch_lightning as pl


class TokenThroughput(pl.Callback):
    """Logs `train/tokens_per_s` (real tokens) and `train/padded_tokens_per_s` per epoch.

    Lightning's ThroughputMonitor counts samples and FLOPs; for DNA the useful unit is k-mer
    tokens, and padding must be excluded to compare bucketed and unbucketed batching honestly.
    """

    def __init__(self) -> None:
        self.real_tokens = 0
        self.padded_tokens = 0
        self.seconds = 0.0
        self._started = 0.0
        self.last_tokens_per_s: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.real_tokens = self.padded_tokens = 0
        self.seconds = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seconds += time.perf_counter() - self._started
        self.real_tokens += int(batch["attention_mask"].sum())
        self.padded_tokens += batch["tokens"].numel()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.seconds <= 0:
            return
        self.last_tokens_per_s = self.real_tokens / self.seconds
        module.log("train/tokens_per_s", self.last_tokens_per_s, sync_dist=True)
        module.log("train/padded_tokens_per_s", self.padded_tokens / self.seconds, sync_dist=True)
