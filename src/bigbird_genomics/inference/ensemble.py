"""Several trained checkpoints scored as one model: their probabilities averaged.

`Ensemble` offers what scanning and evaluation read of a `LoadedModel` (tokenizer, label_names,
task_type, max_tokens, strand_symmetric, predict_proba), so `predict_fasta` and `predict_split`
take either. Members must agree on what a probability means: the same tokenizer (k, stride and
vocabulary), task type and output names, in order. Their contexts may differ: the ensemble's
`max_tokens` is the smallest, so a genome scan plans its windows for the member that sees the
least and every member scores exactly the same windows (a member with a longer context then
sees less than it could; train members with one context to avoid that).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference import checkpoint as checkpoints
from bigbird_genomics.inference.checkpoint import LoadedModel
from bigbird_genomics.tokens.kmers import KmerTokenizer


class EnsembleMismatchError(UserError):
    """Checkpoints whose outputs cannot be averaged (other tokenizer, labels or task)."""


class Ensemble:
    """The mean of the members' probabilities, with the interface of one `LoadedModel`."""

    def __init__(self, members: Sequence[LoadedModel], names: Sequence[str] | None = None) -> None:
        if not members:
            raise UserError("an ensemble needs at least one checkpoint")
        self.members = list(members)
        self.names = [str(n) for n in names] if names is not None else [
            f"member {i}" for i in range(len(self.members))
        ]
        first, first_name = self.members[0], self.names[0]
        if first.task_type == "mlm":
            raise EnsembleMismatchError(
                f"{first_name}: a masked-LM checkpoint predicts tokens, not labels; fine-tune it "
                "first"
            )
        for member, name in zip(self.members[1:], self.names[1:], strict=True):
            _check_same(first, first_name, member, name)
        self.tokenizer: KmerTokenizer = first.tokenizer
        self.label_names: list[str] = list(first.label_names)
        self.task_type: str = first.task_type
        self.max_tokens: int = min(member.max_tokens for member in self.members)
        self.block_size: int = first.block_size
        self.device: torch.device = first.device
        self.hparams = first.hparams

    @property
    def strand_symmetric(self) -> bool:
        """Every member was trained on both strands (so `strands="auto"` reads both)."""
        return all(member.strand_symmetric for member in self.members)

    def predict_proba(self, tokens: list[np.ndarray], strands: str = "forward") -> np.ndarray:
        """Mean over members of `LoadedModel.predict_proba` [batch, outputs]."""
        total = self.members[0].predict_proba(tokens, strands).astype(np.float64)
        for member in self.members[1:]:
            total += member.predict_proba(tokens, strands)
        return (total / len(self.members)).astype(np.float32)


def _check_same(first: LoadedModel, first_name: str, other: LoadedModel, name: str) -> None:
    """Refuse a member whose probabilities mean something else than the first member's."""
    mine, theirs = first.tokenizer, other.tokenizer
    if (mine.k, mine.stride, mine.vocab_hash) != (theirs.k, theirs.stride, theirs.vocab_hash):
        raise EnsembleMismatchError(
            f"{name} reads {theirs.describe()} but {first_name} reads {mine.describe()}; an "
            "ensemble's checkpoints must share one tokenizer (same k and stride)"
        )
    if other.task_type != first.task_type:
        raise EnsembleMismatchError(
            f"{name} is a {other.task_type} model but {first_name} is a {first.task_type} "
            "model; ensemble checkpoints of one task"
        )
    if list(other.label_names) != list(first.label_names):
        raise EnsembleMismatchError(
            f"{name} predicts {', '.join(other.label_names)} but {first_name} predicts "
            f"{', '.join(first.label_names)}; ensemble checkpoints trained on the same labels, "
            "in the same order"
        )


def load_models(paths: Sequence[str | Path], device: str | torch.device = "cpu",
                precision: str = "float32") -> LoadedModel | Ensemble:
    """One checkpoint as a `LoadedModel`, several as an `Ensemble` (checked to agree)."""
    if len(paths) == 1:
        return checkpoints.load_checkpoint(paths[0], device, precision)
    members = [checkpoints.load_checkpoint(path, device, precision) for path in paths]
    return Ensemble(members, names=[str(path) for path in paths])
