"""LightningDataModule over a tokenized data set: length-bucketed, block-padded batches.

Batches are built from examples of similar length (sorted inside shuffled pools), then padded
only up to the next multiple of the attention block size: a batch of 300-token promoters costs
320 tokens, not the model's whole context. The batch sampler is seeded by (seed, epoch) and
splits batches across DDP ranks itself, so an epoch's batches are a pure function of the seed -
which is what makes a resumed run repeat an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from bigbird_genomics.tokens.kmers import CLS_ID, PAD_ID
from bigbird_genomics.tokens.store import TokenizedDataset

POOL_BATCHES = 50  # batches per sorting pool: enough to bucket lengths, small enough to mix


class SplitDataset(Dataset):
    """The examples of one split: item = (position, tokens with [CLS], labels or None)."""

    def __init__(self, data: TokenizedDataset, indices: np.ndarray, cls_token_id: int) -> None:
        self.data = data
        self.indices = np.asarray(indices, dtype=np.int64)
        self.cls_token_id = cls_token_id
        self.lengths = np.asarray(data.lengths, dtype=np.int64)[self.indices] + 1

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[int, np.ndarray, np.ndarray | None]:
        index = int(self.indices[position])
        tokens = np.concatenate([[self.cls_token_id], self.data.tokens(index)]).astype(np.int64)
        return index, tokens, self.data.labels(index)


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length examples, deterministic in (seed, epoch), sharded by rank."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        equal_batches_per_rank: bool = True,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.equal_batches_per_rank = equal_batches_per_rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """A new batch order per epoch; Lightning calls it (through `sampler`) at epoch start."""
        self.epoch = epoch

    @property
    def sampler(self) -> LengthBucketBatchSampler:
        """Lightning calls `set_epoch` on `loader.batch_sampler.sampler`, never on the batch
        sampler itself; without this every epoch would repeat epoch 0's batches."""
        return self

    def _all_batches(self) -> list[np.ndarray]:
        """Training: length-sorted pools of a seeded permutation, batches in seeded order."""
        count = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(count)
        pool = self.batch_size * POOL_BATCHES
        batches = []
        for start in range(0, count, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _rank_batches(self) -> list[np.ndarray]:
        if not self.shuffle:
            # Evaluation: every rank scores its own interleaved share, sorted by length, so
            # no rank is left without a batch while there are at least as many examples.
            order = np.argsort(self.lengths, kind="stable")[self.rank :: self.num_replicas]
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = self._all_batches()
        if self.equal_batches_per_rank:
            # DDP steps in lock-step: every rank must see the same number of batches.
            batches = batches[: len(batches) // self.num_replicas * self.num_replicas] or batches
        return batches[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._rank_batches():
            yield batch.tolist()

    def __len__(self) -> int:
        # Cheap (one permutation) and exactly consistent with __iter__.
        return len(self._rank_batches())


class BlockPadCollator:
    """Stack examples into [batch, tokens] padded to the width the model asks for.

    `pad_width(longest)` is the model's own padding rule (`EncoderConfig.pad_width`), so the
    data side never imports the model and training and prediction pad alike.
    """

    def __init__(
        self, pad_width: Callable[[int], int], max_tokens: int, pad_token_id: int, task_type: str
    ) -> None:
        self.pad_width = pad_width
        self.max_tokens = max_tokens
        self.pad_token_id = pad_token_id
        self.task_type = task_type

    def __call__(self, items: list[tuple[int, np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
        longest = max(len(tokens) for _, tokens, _ in items)
        width = min(self.pad_width(longest), self.max_tokens)
        tokens = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        for row, (_, example, _) in enumerate(items):
            tokens[row, : len(example)] = torch.from_numpy(example[:width])
        batch: dict[str, Any] = {
            "index": torch.tensor([index for index, _, _ in items], dtype=torch.long),
            "tokens": tokens,
            "attention_mask": tokens != self.pad_token_id,
        }
        if self.task_type != "mlm" and items[0][2] is not None:
            labels = np.stack([np.asarray(label) for _, _, label in items])
            if self.task_type == "multiclass":
                batch["labels"] = torch.as_tensor(labels[:, 0], dtype=torch.long)
            else:
                batch["labels"] = torch.as_tensor(labels, dtype=torch.float32)
        return batch


class TokenizedDataModule(pl.LightningDataModule):
    """Train/val/test loaders over one tokenized data set directory."""

    def __init__(
        self,
        dataset: str | Path,
        *,
        task_type: str,
        pad_width: Callable[[int], int],
        max_tokens: int,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.path = Path(dataset)
        self.task_type = task_type
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.data = TokenizedDataset(self.path)
        self.tokenizer = self.data.tokenizer
        self.collate = BlockPadCollator(pad_width, max_tokens, PAD_ID, task_type)

    def split(self, name: str) -> SplitDataset:
        return SplitDataset(self.data, self.data.split_indices(name), CLS_ID)

    def _loader(self, name: str, *, train: bool) -> DataLoader:
        split = self.split(name)
        world = self.trainer.world_size if self.trainer is not None else 1
        rank = self.trainer.global_rank if self.trainer is not None else 0
        sampler = LengthBucketBatchSampler(
            split.lengths,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            num_replicas=world,
            rank=rank,
            equal_batches_per_rank=train,
        )
        return DataLoader(
            split,
            batch_sampler=sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # A private generator: creating the iterator must not draw from the global RNG, or
            # dropout in a resumed run would differ from the uninterrupted run.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
