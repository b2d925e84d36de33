"""Reverse-complement augmentation on token batches equals tokenizing the other strand."""

from __future__ import annotations

import numpy as np
import torch
from Bio.Seq import reverse_complement

from bigbird_genomics.tokens.kmers import CLS_ID, PAD_ID, KmerTokenizer
from bigbird_genomics.training.augment import reverse_complement_rows, strand_flips


def _batch(tokenizer: KmerTokenizer, sequences: list[str], width: int) -> torch.Tensor:
    rows = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    rows[:, 0] = CLS_ID
    for row, sequence in enumerate(sequences):
        ids = torch.as_tensor(tokenizer.encode(sequence).astype(np.int64))
        rows[row, 1 : 1 + len(ids)] = ids
    return rows


def test_flipped_rows_are_the_tokens_of_the_other_strand() -> None:
    tokenizer = KmerTokenizer(k=4)
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), size=n)) for n in (30, 12, 4)]
    sequences[1] = sequences[1][:5] + "N" + sequences[1][6:]  # [UNK] k-mers flip to [UNK]
    batch = _batch(tokenizer, sequences, 32)
    table = torch.from_numpy(tokenizer.reverse_complement_ids())
    flip = torch.tensor([True, True, False])
    flipped = reverse_complement_rows(batch, batch != PAD_ID, flip, table)
    expected = _batch(tokenizer, [reverse_complement(s) for s in sequences[:2]], 32)
    assert torch.equal(flipped[:2], expected)
    assert torch.equal(flipped[2], batch[2])
    twice = reverse_complement_rows(flipped, flipped != PAD_ID, flip, table)
    assert torch.equal(twice, batch)


def test_strand_flips_depend_only_on_seed_and_step() -> None:
    torch.manual_seed(123)  # global state must not matter
    first = strand_flips(0, 5, 64)
    torch.manual_seed(7)
    assert torch.equal(first, strand_flips(0, 5, 64))
    assert not torch.equal(first, strand_flips(0, 6, 64))
    assert not torch.equal(first, strand_flips(1, 5, 64))
    assert 16 < int(first.sum()) < 48
