"""Training-time augmentation on token batches: the opposite DNA strand.

Why: a ChIP-seq peak or an open-chromatin bin reads the same on both strands, so showing the
model each record's reverse complement doubles a small data set for free (standard since
DeepBind). Promoters are stranded, so it is off by default (`data.reverse_complement`). Done on
token ids with a lookup table rather than by re-tokenizing the bases, because batches hold
tokens; with stride 1 the result is exactly the tokenization of the other strand, with stride
s > 1 it is that strand tokenized in another reading frame.
"""

from __future__ import annotations

import numpy as np
import torch


def reverse_complement_rows(
    tokens: torch.Tensor, attention_mask: torch.Tensor, flip: torch.Tensor, table: torch.Tensor
) -> torch.Tensor:
    """Rows where `flip` is True become their other strand; the rest stay as they are.

    `tokens` [batch, width] hold [CLS] first, then the real k-mers, then padding (the collator's
    layout); [CLS] stays first and padding last. `table[id]` is the reverse-complement id.
    """
    lengths = attention_mask.sum(dim=1, keepdim=True)  # real tokens incl. [CLS]
    positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
    real_kmer = (positions >= 1) & (positions < lengths)
    source = torch.where(real_kmer, lengths - positions, positions)  # k-mer i <- k-mer n - i
    flipped = table.to(tokens.device)[tokens.gather(1, source)]
    return torch.where(flip.to(tokens.device)[:, None], flipped, tokens)


def strand_flips(seed: int, step: int, batch: int) -> torch.Tensor:
    """Which rows of optimizer step `step` to flip: seeded by (seed, step), so a resumed run
    flips exactly the rows an uninterrupted one would, whatever the global RNG state."""
    return torch.from_numpy(np.random.default_rng([seed, 0x5712A4D, step]).random(batch) < 0.5)
