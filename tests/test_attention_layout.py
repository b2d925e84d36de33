"""Layout properties: window/global/random placement, no repeats, determinism, per-head, re-draw."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from bigbird_genomics.attention import SparsityConfig, block_layout, dense_mask
from bigbird_genomics.attention.block import gather_plan
from bigbird_genomics.attention.layout import GLOBAL, NONE, RANDOM, WINDOW


def expected_fixed(num_blocks: int, config: SparsityConfig) -> tuple[np.ndarray, np.ndarray]:
    """(window, global) boolean block matrices written from the definition, independently."""
    leading = (config.num_global_blocks + 1) // 2
    trailing = config.num_global_blocks // 2
    blocks = np.arange(num_blocks)
    is_global = (blocks < leading) | (blocks >= num_blocks - trailing)
    window = np.abs(blocks[:, None] - blocks[None, :]) <= config.num_window_blocks // 2
    global_pair = is_global[:, None] | is_global[None, :]
    return window & ~global_pair, global_pair


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_window_blocks", 4, "attention.num_window_blocks must be odd, got 4"),
        ("block_size", 0, "attention.block_size must be >= 1, got 0"),
        ("num_random_blocks", -1, "attention.num_random_blocks must be >= 0, got -1"),
        ("num_global_blocks", 1.5, "attention.num_global_blocks must be an integer"),
        ("backend", "sparse", "attention.backend must be one of"),
        ("seed", -3, "attention.seed must be a non-negative integer"),
        ("random_per_head", "yes", "attention.random_per_head must be true or false"),
    ],
)
def test_validate_names_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.", 1)):
        SparsityConfig(**{key: value}).validate()


def test_validate_accepts_defaults_and_custom_prefix() -> None:
    assert SparsityConfig().validate() == SparsityConfig()
    with pytest.raises(ValueError, match=r"^model\.attention\.num_window_blocks"):
        SparsityConfig(num_window_blocks=2).validate(prefix="model.attention")


@pytest.mark.parametrize("num_blocks", [1, 2, 3, 5, 8, 9, 40])
@pytest.mark.parametrize(
    "config",
    [
        SparsityConfig(),
        SparsityConfig(num_window_blocks=5, num_global_blocks=3, num_random_blocks=2, seed=7),
        SparsityConfig(num_window_blocks=1, num_global_blocks=0, num_random_blocks=4, seed=1),
    ],
)
def test_window_global_random_placement(num_blocks: int, config: SparsityConfig) -> None:
    kinds = block_layout(num_blocks, config, layer_index=2).numpy()[0]
    window, global_pair = expected_fixed(num_blocks, config)
    assert np.array_equal(kinds == GLOBAL, global_pair)
    assert np.array_equal(kinds == WINDOW, window)
    random = kinds == RANDOM
    # Random blocks lie outside window and global blocks; one cell per block means no repeats.
    assert not (random & (window | global_pair)).any()
    candidates = ~(window | global_pair)
    # Exactly min(r, available) per query block: fewer only when the sequence is too short.
    expected_count = np.minimum(config.num_random_blocks, candidates.sum(axis=1))
    assert np.array_equal(random.sum(axis=1), expected_count)


def test_random_blocks_cover_the_whole_sequence() -> None:
    config = SparsityConfig(seed=5)
    kinds = block_layout(256, config).numpy()[0]
    random_columns = np.nonzero(kinds == RANDOM)[1]
    # Drawn uniformly over all blocks, not from the first few (unlike transformers' BigBird).
    assert random_columns.max() > 200 and random_columns.min() < 50
    assert len(np.unique(random_columns)) > 150


def test_layout_is_deterministic_per_seed_layer_and_step() -> None:
    config = SparsityConfig(seed=11)
    first = block_layout(64, config, layer_index=1)
    assert torch.equal(first, block_layout(64, config, layer_index=1))
    assert not torch.equal(first, block_layout(64, config, layer_index=2))
    assert not torch.equal(first, block_layout(64, SparsityConfig(seed=12), layer_index=1))
    step_3 = block_layout(64, config, layer_index=1, step=3)
    assert torch.equal(step_3, block_layout(64, config, layer_index=1, step=3))
    assert not torch.equal(step_3, first)
    assert not torch.equal(step_3, block_layout(64, config, layer_index=1, step=4))
    # Re-drawing changes only random blocks.
    assert torch.equal(step_3 == GLOBAL, first == GLOBAL)
    assert torch.equal(step_3 == WINDOW, first == WINDOW)


@pytest.mark.parametrize(
    ("num_blocks", "config", "layer_index", "step", "num_heads", "digest"),
    [
        (40, SparsityConfig(seed=3, random_per_head=True), 2, None, 3, "512d43b78fff50ac"),
        (7, SparsityConfig(seed=1), 0, None, 1, "cdab09886e3b651e"),  # too few candidates
        (64, SparsityConfig(seed=0), 1, 5, 1, "79ee932444f63881"),
        (9, SparsityConfig(seed=5, num_random_blocks=4, random_per_head=True), 3, 2, 2,
         "dda2b32ef0fb8f08"),
    ],
)
def test_layouts_match_those_of_earlier_versions(
    num_blocks: int, config: SparsityConfig, layer_index: int, step: int | None,
    num_heads: int, digest: str,
) -> None:
    """A trained checkpoint is only reproducible if its random blocks never change: these
    digests were taken from the argsort sampler of the first releases."""
    layout = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    )
    assert hashlib.sha256(layout.numpy().tobytes()).hexdigest()[:16] == digest


def test_returned_layout_is_a_copy() -> None:
    config = SparsityConfig(seed=2)
    layout = block_layout(16, config)
    layout.zero_()
    assert (block_layout(16, config) != NONE).any()


def test_random_per_head() -> None:
    shared = block_layout(32, SparsityConfig(), num_heads=4)
    assert shared.shape == (1, 32, 32)
    per_head = block_layout(32, SparsityConfig(random_per_head=True), num_heads=4)
    assert per_head.shape == (4, 32, 32)
    assert not torch.equal(per_head[0], per_head[1])
    assert torch.equal(per_head[0] == GLOBAL, per_head[3] == GLOBAL)


def test_dense_mask_matches_layout_at_token_level() -> None:
    config = SparsityConfig(block_size=4, seed=3)
    mask = dense_mask(30, config)  # 8 blocks, the last one half padding
    assert mask.shape == (1, 30, 30)
    kinds = block_layout(8, config)[0]
    for query in (0, 5, 13, 29):
        for key in range(30):
            assert bool(mask[0, query, key]) == bool(kinds[query // 4, key // 4] != NONE)


def test_attended_blocks_per_query_stay_constant_as_length_grows() -> None:
    """The O(N) memory argument: key slots per query block do not grow with the sequence."""
    config = SparsityConfig()
    slots = []
    for num_blocks in (16, 64, 256, 1024):
        plan = gather_plan(num_blocks, config, 0, None, 1, torch.device("cpu"))
        slots.append(plan.key_blocks.shape[-1])
        attended = (block_layout(num_blocks, config)[0] != NONE).sum(dim=1)
        # Only the global query blocks attend to all blocks.
        assert int((attended > 8).sum()) == 2
    assert slots == [8, 8, 8, 8]


def test_every_backend_has_the_protocol_signature() -> None:
    import inspect

    from bigbird_genomics.attention import BACKEND_FUNCTIONS, BACKENDS
    from bigbird_genomics.attention.backend import AttentionBackend

    assert set(BACKEND_FUNCTIONS) == set(BACKENDS) - {"auto"}
    wanted = inspect.signature(AttentionBackend.__call__).parameters
    for name, function in BACKEND_FUNCTIONS.items():
        assert isinstance(function, AttentionBackend), name
        got = inspect.signature(function).parameters
        for parameter in list(wanted.values())[1:]:  # all but self
            assert parameter.name in got, (name, parameter.name)
            assert got[parameter.name].kind == parameter.kind, (name, parameter.name)
            assert got[parameter.name].default == parameter.default, (name, parameter.name)


def test_layouts_and_plans_share_one_bounded_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from bigbird_genomics.attention import plans

    plans.clear_plans()
    config = SparsityConfig(block_size=16, random_per_head=True)
    first = gather_plan(12, config, 0, None, 2, torch.device("cpu"))
    assert gather_plan(12, config, 0, None, 2, torch.device("cpu")) is first
    kinds = plans.cached_kinds()
    assert kinds == {
        "bigbird_genomics.attention.layout._layout_array": 1,
        "bigbird_genomics.attention.block.gather_plan": 1,
    }
    gather_plan.cache_clear()  # this builder's entries only
    assert plans.cached_kinds() == {"bigbird_genomics.attention.layout._layout_array": 1}
    monkeypatch.setattr(plans, "MAX_ENTRIES", 3)
    for step in range(5):
        block_layout(12, config, step=step, num_heads=2)
    assert sum(plans.cached_kinds().values()) == 3
    plans.clear_plans()
    assert plans.cached_kinds() == {}
