"""LightningModule: loss, optimiser, schedule and validation metrics around `GenomicsModel`.

All constructor arguments are plain dicts/lists/numbers, saved as the checkpoint's
hyper-parameters, so `torch.load(weights_only=True)` can read a checkpoint and
`inference.load_checkpoint` can rebuild the model from it without Hydra.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Timer
from torchmetrics import CatMetric

from bigbird_genomics.inference.metrics import compute_metrics
from bigbird_genomics.model.mlm_masking import IGNORE_INDEX, mask_spans
from bigbird_genomics.model.network import GenomicsModel, num_outputs
from bigbird_genomics.tokens.kmers import MASK_ID, NUM_SPECIAL, KmerTokenizer
from bigbird_genomics.training.augment import reverse_complement_rows, strand_flips

log = logging.getLogger(__name__)


def probabilities(task_type: str, logits: torch.Tensor) -> torch.Tensor:
    """Logits -> probabilities [batch, outputs]: sigmoid per label, softmax over classes."""
    if task_type == "multiclass":
        return logits.float().softmax(dim=-1)
    return logits.float().sigmoid()


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to `min_lr_ratio`."""
    if step < warmup_steps:
        return (step + 1) / max(warmup_steps, 1)
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class GenomicsModule(pl.LightningModule):
    """One task (binary, multiclass, multilabel or mlm) on the BigBird encoder."""

    def __init__(
        self,
        model: dict[str, Any],
        attention: dict[str, Any],
        task: dict[str, Any],
        tokenizer: dict[str, Any],
        optim: dict[str, Any],
        seed: int = 0,
        reverse_complement: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.task_type: str = task["type"]
        self.label_names: list[str] = list(task.get("label_names") or [])
        self.label_groups: dict[str, str] = dict(task.get("label_groups") or {})
        outputs = 0 if self.task_type == "mlm" else num_outputs(
            self.task_type, len(self.label_names), task.get("num_classes")
        )
        self.network = GenomicsModel(
            model, attention, self.task_type, outputs, pooling=task.get("pooling", "cls")
        )
        pos_weight = task.get("pos_weight")
        self.register_buffer(
            "pos_weight", torch.tensor(pos_weight, dtype=torch.float32) if pos_weight else None
        )
        self.kmer = KmerTokenizer.from_dict(tokenizer)
        self.strand_table = (
            torch.from_numpy(self.kmer.reverse_complement_ids()) if reverse_complement else None
        )
        self.val_probs = CatMetric()
        self.val_targets = CatMetric()

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.network(tokens, attention_mask)

    # ----------------------------------------------------------------- loss
    def _mlm_inputs(self, batch: dict, seed_offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Masks come from a generator seeded by (seed, step): reproducible across resume and
        # independent of DataLoader workers.
        generator = torch.Generator().manual_seed(self.hparams.seed * 1_000_003 + seed_offset)
        masked, labels = mask_spans(
            batch["tokens"].cpu(),
            batch["attention_mask"].cpu(),
            k=self.kmer.k,
            stride=self.kmer.stride,
            mask_token_id=MASK_ID,
            first_kmer_id=NUM_SPECIAL,
            vocab_size=self.kmer.vocab_size,
            mask_fraction=self.hparams.task.get("mask_fraction", 0.15),
            generator=generator,
        )
        return masked.to(self.device), labels.to(self.device)

    def _log_mlm(self, split: str, loss: torch.Tensor, logits: torch.Tensor,
                 labels: torch.Tensor) -> None:
        """Masked-token accuracy and cross-entropy in bits per token and per base.

        `loss` is nats per scored token. Span masking hides all k bases of every scored token
        (its overlapping neighbours are masked too), so each scored token is a joint guess of k
        unseen bases: bits per base = bits per token / k, whatever the stride (2.0 = a uniform
        guess; docs/pretraining.md).
        """
        scored = labels != IGNORE_INDEX
        count = int(scored.sum())
        if count == 0:
            return
        correct = ((logits.argmax(-1) == labels) & scored).sum() / count
        bits_per_token = loss.detach() / math.log(2)
        on_step = split == "train"
        for name, value in (
            ("accuracy", correct),
            ("bits_per_token", bits_per_token),
            ("bits_per_base", bits_per_token / self.kmer.k),
        ):
            self.log(f"{split}/{name}", value, on_step=on_step, on_epoch=True,
                     sync_dist=not on_step, batch_size=count)

    def _loss(self, batch: dict, seed_offset: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(loss, logits, targets) for one batch."""
        if self.task_type == "mlm":
            masked, labels = self._mlm_inputs(batch, seed_offset)
            logits = self(masked, batch["attention_mask"])
            loss = F.cross_entropy(
                logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX
            )
            return loss, logits, labels
        logits = self(batch["tokens"], batch["attention_mask"])
        targets = batch["labels"]
        if self.task_type == "multiclass":
            return F.cross_entropy(logits.float(), targets), logits, targets
        loss = F.binary_cross_entropy_with_logits(
            logits.float(), targets.float(), pos_weight=self.pos_weight
        )
        return loss, logits, targets

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.network.sparsity.redraw_random_per_step:
            self.network.encoder.set_layout_step(self.global_step)
        if self.strand_table is not None:
            flip = strand_flips(self.hparams.seed, self.global_step, len(batch["tokens"]))
            batch = {**batch, "tokens": reverse_complement_rows(
                batch["tokens"], batch["attention_mask"], flip, self.strand_table)}  # fmt: skip
        loss, logits, targets = self._loss(batch, seed_offset=self.global_step)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=len(batch["tokens"]))
        if self.task_type == "mlm":
            self._log_mlm("train", loss, logits.detach(), targets)
        return loss

    def on_train_epoch_start(self) -> None:
        # Re-seed the global RNG (dropout) per epoch so a run resumed from an end-of-epoch
        # checkpoint draws exactly the dropout masks of an uninterrupted run.
        torch.manual_seed(self.hparams.seed * 1_000_003 + self.current_epoch + 1)

    # ----------------------------------------------------------- validation
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, logits, targets = self._loss(batch, seed_offset=-1 - batch_idx)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True,
                 batch_size=len(batch["tokens"]))
        if self.task_type == "mlm":
            self._log_mlm("val", loss, logits, targets)
            return
        self.val_probs.update(probabilities(self.task_type, logits))
        self.val_targets.update(targets.float())

    def on_validation_epoch_end(self) -> None:
        if self.task_type == "mlm":
            return
        if self.val_probs.update_count == 0:
            return
        probs, targets = self.val_probs.compute(), self.val_targets.compute()
        self.val_probs.reset()
        self.val_targets.reset()
        if probs.ndim == 1:  # CatMetric flattens a single batch of one column
            probs = probs.reshape(len(targets), -1)
        scalars, _ = compute_metrics(
            self.task_type, probs.cpu(), targets.cpu(), self.label_names, self.label_groups
        )
        for name, value in scalars.items():
            if not math.isnan(value):
                self.log(f"val/{name}", value, sync_dist=False, rank_zero_only=False)

    # ------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> dict:
        optim = self.hparams.optim
        # No weight decay on biases and LayerNorm gains (1-D), as in BERT and GPT-2.
        decay = [p for p in self.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in self.parameters() if p.requires_grad and p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": optim.get("weight_decay", 0.01)},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=optim.get("lr", 1e-3),
            betas=tuple(optim.get("betas", (0.9, 0.999))),
        )
        total = int(self.trainer.estimated_stepping_batches)
        warmup = optim.get("warmup_steps")
        if warmup is None:
            warmup = int(total * optim.get("warmup_ratio", 0.1))
        min_lr_ratio = optim.get("min_lr_ratio", 0.1)
        if warmup >= total > 0:
            key = "warmup_steps" if optim.get("warmup_steps") is not None else "warmup_ratio"
            log.warning(
                "the learning-rate warm-up (%d steps, from optim.%s) is as long as the whole "
                "run (%d optimizer steps): the learning rate never reaches optim.lr; lower "
                "optim.%s", warmup, key, total, key,
            )
        if any(isinstance(callback, Timer) for callback in self.trainer.callbacks):
            # Measured on the real accuracy tasks: 20 epochs under a 30-minute limit stopped inside
            # the warm-up.
            log.warning(
                "trainer.max_time is set, but the learning-rate schedule spans "
                "trainer.max_epochs/max_steps (%d steps, %d of warm-up): if the time limit "
                "stops training first, the schedule never decays; set max_epochs to what fits",
                total, warmup,
            )

        def factor(step: int) -> float:
            return warmup_cosine(
                step, warmup_steps=warmup, total_steps=total, min_lr_ratio=min_lr_ratio
            )

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        schedule = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}
