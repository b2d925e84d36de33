"""Encoder + head as one `nn.Module`, built from plain dicts (the checkpoint hyper-parameters)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bigbird_genomics.attention import SparsityConfig
from bigbird_genomics.model.encoder import Encoder, EncoderConfig, pool
from bigbird_genomics.model.heads import MaskedLMHead, SequenceHead

TASK_TYPES = ("binary", "multiclass", "multilabel", "mlm")


def num_outputs(task_type: str, num_labels: int, num_classes: int | None) -> int:
    """Logits per sequence: 1 for binary, one per class or per label otherwise."""
    if task_type == "binary":
        return 1
    if task_type == "multiclass":
        if not num_classes or num_classes < 2:
            raise ValueError("task.num_classes must be >= 2 for a multiclass task")
        return num_classes
    if task_type == "multilabel":
        return num_labels
    raise ValueError(f"task.type must be one of {TASK_TYPES}, got {task_type!r}")


class GenomicsModel(nn.Module):
    """Token ids -> logits: [batch, outputs] for classification, [batch, tokens, vocab] for MLM."""

    def __init__(
        self,
        encoder: dict[str, Any],
        attention: dict[str, Any],
        task_type: str,
        outputs: int = 1,
        pooling: str = "cls",
    ) -> None:
        super().__init__()
        self.task_type = task_type
        self.pooling = pooling
        # A head that reads [CLS] alone lets the last layer compute that row alone (keys and
        # values still from every row): the same logits and gradients up to float rounding, for
        # 5/6 of a layer's linear work less (training and prediction). With dropout, the last
        # layer draws masks for one row, so runs are not bit-comparable with all-row runs.
        # False computes every row, for comparisons (`ours_all_rows` in the benchmarks).
        self.first_row_only = task_type != "mlm" and pooling == "cls"
        self.sparsity = SparsityConfig(**attention)
        self.encoder = Encoder(EncoderConfig(**encoder), self.sparsity)
        if task_type == "mlm" and self.encoder.config.downsample > 1:
            raise ValueError(
                "task.type=mlm predicts every token, so it cannot use model.stem_pool > 1 "
                "(the stem pools tokens away); set model.stem_pool=1"
            )
        if task_type == "mlm":
            self.head: nn.Module = MaskedLMHead(self.encoder.embedding)
        else:
            self.head = SequenceHead(self.encoder.config.hidden_size, outputs,
                                     self.encoder.config.dropout)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.first_row_only:
            return self.head(self.encoder(tokens, attention_mask, first_row_only=True)[:, 0])
        hidden = self.encoder(tokens, attention_mask)
        if self.task_type == "mlm":
            return self.head(hidden)
        mask = self.encoder.hidden_mask(attention_mask)
        return self.head(pool(hidden, mask, self.pooling))

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())
