"""Work lists of the `triton` backend: the block layout as bounded segments, rows and columns.

One kernel program handles one *segment*: an owner block (a query block for the forward and dQ
passes, a key block for the dK/dV pass) and at most `SEGMENT_BLOCKS` of its partner blocks.
Ordinary rows have window + global + random partners (8 by default) and fit one segment, which
writes its result directly. Global rows and columns have every block as partner; they are split
into many segments whose partial results go to scratch *slots* and are merged afterwards, so no
program loops over the whole sequence while the others wait (FlexAttention's plain layout has
exactly that tail). Pure torch, so it is tested without a GPU or Triton.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Partner blocks per segment: more than an ordinary row (8 by default), few enough that a global
# row of a 64k-token sequence (1024 blocks) spreads over 64 programs.
SEGMENT_BLOCKS = 16


@dataclass(frozen=True)
class SegmentTable:
    """Segments of one layout, per layout head (all int32 kernel inputs share the first dim)."""

    owner: torch.Tensor  # int32 [heads, segments]: the owner block of each segment
    start: torch.Tensor  # int32 [heads, segments]: its first entry in `partners`
    end: torch.Tensor  # int32 [heads, segments]: one past its last entry
    dest: torch.Tensor  # int32 [heads, segments]: -1 = write the result directly, else a slot
    partners: torch.Tensor  # int32 [heads, entries]: partner blocks, ascending within an owner
    slot_group: torch.Tensor  # long [heads, slots]: the merge group of each scratch slot
    group_owner: torch.Tensor  # long [heads, groups]: the owner block of each merge group
    padded: bool  # heads differ in structure: dummy segments write zeros to a trash slot/group

    @property
    def num_segments(self) -> int:
        return self.owner.shape[1]

    @property
    def num_slots(self) -> int:
        return self.slot_group.shape[1]

    def to(self, device: torch.device) -> SegmentTable:
        moved = {
            name: getattr(self, name).to(device)
            for name in ("owner", "start", "end", "dest", "partners", "slot_group", "group_owner")
        }
        return SegmentTable(**moved, padded=self.padded)


def segment_table(allowed: torch.Tensor, max_partners: int | None = None) -> SegmentTable:
    """Segments of `allowed` (bool [heads, owners, partners]): one row per owner block.

    Pass the block layout for the row (query-side) table and its transpose for the column
    (key-side) table. Every owner gets at least one segment, so each output block is written
    even when nothing attends to it (its gradient is then zero).
    """
    max_partners = SEGMENT_BLOCKS if max_partners is None else max_partners
    if max_partners < 1:
        raise ValueError(f"max_partners must be >= 1, got {max_partners}")
    per_head = [_head_segments(head, max_partners) for head in allowed.bool()]
    same = all(_same_structure(per_head[0], other) for other in per_head[1:])
    num_segments = max(len(h["owner"]) for h in per_head)
    num_entries = max(1, max(len(h["partners"]) for h in per_head))
    num_groups = max(len(h["group_owner"]) for h in per_head)
    num_slots = max(len(h["slot_group"]) for h in per_head)
    if not same:  # one trash slot and group: dummy segments and padding add zeros there
        num_slots, num_groups = num_slots + 1, num_groups + 1
    columns: dict[str, list[torch.Tensor]] = {key: [] for key in per_head[0]}
    for head in per_head:
        trash_slot, trash_group = num_slots - 1, num_groups - 1
        padding = {
            "owner": (num_segments, 0),
            "start": (num_segments, 0),
            "end": (num_segments, 0),
            "dest": (num_segments, trash_slot),
            "partners": (num_entries, 0),
            "slot_group": (num_slots, trash_group),
            "group_owner": (num_groups, 0),
        }
        for key, (length, fill) in padding.items():
            values = head[key]
            pad = torch.full((length - len(values),), fill, dtype=torch.long)
            columns[key].append(torch.cat([values, pad]))
    stacked = {key: torch.stack(values) for key, values in columns.items()}
    for key in ("owner", "start", "end", "dest", "partners"):
        stacked[key] = stacked[key].to(torch.int32)
    return SegmentTable(**stacked, padded=not same)


def _head_segments(allowed: torch.Tensor, max_partners: int) -> dict[str, torch.Tensor]:
    """Segments of one head's [owners, partners] matrix (long tensors, unpadded)."""
    num_owners = allowed.shape[0]
    counts = allowed.sum(dim=-1)
    partners = torch.nonzero(allowed)[:, 1]  # row-major: grouped by owner, ascending
    first = torch.cumsum(counts, 0) - counts
    pieces = torch.clamp((counts + max_partners - 1) // max_partners, min=1)
    owner = torch.repeat_interleave(torch.arange(num_owners), pieces)
    piece = torch.arange(len(owner)) - torch.repeat_interleave(
        torch.cumsum(pieces, 0) - pieces, pieces
    )
    start = first[owner] + piece * max_partners
    end = torch.minimum(start + max_partners, first[owner] + counts[owner])
    split = pieces[owner] > 1
    dest = torch.full_like(owner, -1)
    dest[split] = torch.arange(int(split.sum()))
    group_owner = torch.nonzero(pieces > 1).flatten()
    group_of_owner = torch.full((num_owners,), -1, dtype=torch.long)
    group_of_owner[group_owner] = torch.arange(len(group_owner))
    return {
        "owner": owner,
        "start": start,
        "end": end,
        "dest": dest,
        "partners": partners,
        "slot_group": group_of_owner[owner[split]],
        "group_owner": group_owner,
    }


def _same_structure(first: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> bool:
    """Whether two heads need the same segments (only their partner blocks differ)."""
    keys = ("owner", "start", "end", "dest", "slot_group", "group_owner")
    return all(torch.equal(first[key], other[key]) for key in keys)
