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
    """Segments of one layout, per layout head (all int32 kernel inputs share the first dim).

    Scratch slots: the kernels write split owners' partial results to slots `0..num_slots-1`;
    buffers hold one more slot, `num_slots`, never written and kept at the merge's identity
    (zero output, -inf log-sum-exp), which pads `group_slots`. Merges reduce over a group's
    slots with ordinary reductions, not atomic adds, so results are bitwise deterministic.
    """

    owner: torch.Tensor  # int32 [heads, segments]: the owner block of each segment
    start: torch.Tensor  # int32 [heads, segments]: its first entry in `partners`
    end: torch.Tensor  # int32 [heads, segments]: one past its last entry
    dest: torch.Tensor  # int32 [heads, segments]: -1 = write the result directly, else a slot
    partners: torch.Tensor  # int32 [heads, entries]: partner blocks, ascending within an owner
    group_slots: torch.Tensor  # long [heads, groups, slots per group]: each split owner's slots
    group_owner: torch.Tensor  # long [heads, groups]: the owner block of each group
    num_slots: int  # slots the kernels may write; buffers hold one more, the identity slot
    padded: bool  # heads differ in structure: padding segments/groups only add zeros

    @property
    def num_segments(self) -> int:
        return self.owner.shape[1]

    def to(self, device: torch.device) -> SegmentTable:
        moved = {
            name: getattr(self, name).to(device)
            for name in ("owner", "start", "end", "dest", "partners", "group_slots", "group_owner")
        }
        return SegmentTable(**moved, num_slots=self.num_slots, padded=self.padded)


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
    per_group = max([1] + [h["group_slots"].shape[1] for h in per_head])
    written = max(int(h["dest"].max()) + 1 for h in per_head)
    # Heads that differ: shorter ones are padded with empty segments writing zeros to a trash
    # slot; the identity slot comes after every written slot.
    trash = None if same else written
    identity = written if same else written + 1
    columns: dict[str, list[torch.Tensor]] = {key: [] for key in per_head[0]}
    for head in per_head:
        padding = {
            "owner": (num_segments, 0),
            "start": (num_segments, 0),
            "end": (num_segments, 0),
            "dest": (num_segments, -1 if trash is None else trash),
            "partners": (num_entries, 0),
            "group_owner": (num_groups, 0),  # padding groups add zeros (identity slots) to 0
        }
        for key, (length, fill) in padding.items():
            values = head[key]
            pad = torch.full((length - len(values),), fill, dtype=torch.long)
            columns[key].append(torch.cat([values, pad]))
        slots = torch.full((num_groups, per_group), identity, dtype=torch.long)
        mine = head["group_slots"]
        slots[: mine.shape[0], : mine.shape[1]] = torch.where(mine < 0, identity, mine)
        columns["group_slots"].append(slots)
    stacked = {key: torch.stack(values) for key, values in columns.items()}
    for key in ("owner", "start", "end", "dest", "partners"):
        stacked[key] = stacked[key].to(torch.int32)
    return SegmentTable(**stacked, num_slots=identity, padded=not same)


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
    # Slots of one split owner are consecutive (segments are in owner order): -1 pads a group.
    group_owner = torch.nonzero(pieces > 1).flatten()
    group_pieces = pieces[group_owner]
    first_slot = torch.cumsum(group_pieces, 0) - group_pieces
    width = int(group_pieces.max()) if len(group_owner) else 0
    offsets = torch.arange(width)
    group_slots = torch.where(
        offsets < group_pieces[:, None], first_slot[:, None] + offsets, torch.tensor(-1)
    )
    return {
        "owner": owner,
        "start": start,
        "end": end,
        "dest": dest,
        "partners": partners,
        "group_slots": group_slots,
        "group_owner": group_owner,
    }


def _same_structure(first: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> bool:
    """Whether two heads need the same segments (only their partner blocks differ)."""
    keys = ("owner", "start", "end", "dest", "group_slots", "group_owner")
    return all(torch.equal(first[key], other[key]) for key in keys)
