"""The `triton` backend: segment tables (pure torch) and the kernels against the dense reference.

Without a GPU the kernels run in Triton's interpreter (same kernel code, numpy underneath); the
compiled kernels are checked by the CUDA tests in test_attention_backends.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from attention_support import make_inputs, oracle, outputs_and_grads, padding_mask

from bigbird_genomics.attention import (
    SparsityConfig,
    bigbird_attention,
    block_layout,
    resolve_backend,
    segments,
    triton_backend,
)
from bigbird_genomics.attention.layout import NONE


def covered(table: segments.SegmentTable, head: int, num_owners: int) -> list[list[int]]:
    """Each owner's partner blocks, read back from its segments in order."""
    partners: list[list[int]] = [[] for _ in range(num_owners)]
    for s in range(table.num_segments):
        owner, start, end = (int(x[head, s]) for x in (table.owner, table.start, table.end))
        partners[owner] += table.partners[head, start:end].tolist()
    return partners


@pytest.mark.parametrize("max_partners", [1, 3, 16])
@pytest.mark.parametrize(("num_blocks", "per_head", "transpose"), [
    (40, False, False), (40, True, False), (40, True, True), (3, False, True), (1, False, False),
])  # fmt: skip
def test_segments_cover_every_attended_pair_once(
    num_blocks: int, per_head: bool, transpose: bool, max_partners: int
) -> None:
    config = SparsityConfig(block_size=16, random_per_head=per_head, seed=4)
    allowed = block_layout(num_blocks, config, num_heads=3) != NONE
    if transpose:
        allowed = allowed.transpose(1, 2)
    table = segments.segment_table(allowed, max_partners)
    for head in range(allowed.shape[0]):
        want = [torch.nonzero(row).flatten().tolist() for row in allowed[head]]
        assert covered(table, head, num_blocks) == want
        lengths = table.end[head] - table.start[head]
        assert int(lengths.max()) <= max_partners
        # An owner with one segment writes directly; a split owner's segments write distinct
        # slots, which are exactly its group's slots (the rest of the group row is the identity).
        dummy = (table.start[head] == table.end[head]) & (table.dest[head] >= 0)
        for owner in range(num_blocks):
            mine = table.dest[head][(table.owner[head] == owner) & ~dummy]
            if len(want[owner]) <= max_partners:
                assert mine.tolist() == [-1]
            else:
                group = table.group_owner[head].tolist().index(owner)
                slots = table.group_slots[head, group]
                assert sorted(mine.tolist()) == slots[slots != table.num_slots].tolist()


def test_heads_with_different_columns_get_dummy_segments_into_a_trash_slot() -> None:
    allowed = torch.zeros(2, 4, 4, dtype=torch.bool)
    allowed[:, :, 0] = True  # column 0 is long in both heads
    allowed[0, :, 1] = True  # column 1 is long only in head 0
    allowed[1, 2, 3] = True
    table = segments.segment_table(allowed.transpose(1, 2), max_partners=2)
    assert table.padded
    trash_slot = table.num_slots - 1  # the identity slot, num_slots, is never written
    empty = table.start[1] == table.end[1]  # owners nothing attends to, and the dummy
    assert int((table.dest[1][empty] == trash_slot).sum()) == 1
    assert not (table.group_slots == trash_slot).any()
    # head 1 has one split owner; its padding group reads only identity slots
    assert table.group_slots[1, 1].tolist() == [table.num_slots] * 2


@pytest.fixture
def interpreted(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Kernels in Triton's interpreter (conftest.py picks it on CPU-only machines); segments of
    3 blocks so that many rows and columns are split and merged."""
    pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")
    if not triton_backend.interpreting():
        pytest.skip("compiled Triton kernels are checked by the CUDA tests instead")
    monkeypatch.setattr(segments, "SEGMENT_BLOCKS", 3)
    triton_backend.triton_plan.cache_clear()
    yield
    triton_backend.triton_plan.cache_clear()


def assert_matches_oracle(
    config: SparsityConfig,
    inputs: tuple[torch.Tensor, ...],
    key_padding_mask: torch.Tensor | None,
    layer_index: int = 0,
) -> None:
    """Outputs and q/k/v gradients of `config`'s backend against the masked-SDPA oracle."""
    got = outputs_and_grads(
        lambda q, k, v: bigbird_attention(
            q, k, v, config, layer_index=layer_index, key_padding_mask=key_padding_mask
        ),
        *inputs,
    )
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask, layer_index=layer_index),
        *inputs,
    )
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=1e-5, rtol=1e-4, msg=name)


INTERPRETER_CASES = [
    # (tokens, block_size, padding, seed, random_per_head)
    (256, 16, "none", 0, False),
    (300, 32, "right", 1, True),  # not a multiple of the block size; heads differ in columns
    (37, 16, "both", 2, True),  # random blocks run out
    (5, 16, "right", 4, False),  # one mostly padded block
]


@pytest.mark.parametrize(("num_tokens", "block_size", "padding", "seed", "per_head"),
                         INTERPRETER_CASES)  # fmt: skip
def test_triton_kernels_match_masked_sdpa_outputs_and_gradients(
    interpreted: None, num_tokens: int, block_size: int, padding: str, seed: int, per_head: bool
) -> None:
    config = SparsityConfig(
        block_size=block_size, seed=seed, random_per_head=per_head, backend="triton"
    )
    inputs = make_inputs(num_tokens, seed, head_dim=16)
    assert_matches_oracle(config, inputs, padding_mask(num_tokens, padding), layer_index=2)


@pytest.mark.slow  # ~35 s in Triton's interpreter
def test_triton_heads_with_different_column_segments(
    interpreted: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 heads whose key columns split differently: dummy segments and padding groups."""
    monkeypatch.setattr(segments, "SEGMENT_BLOCKS", 6)
    config = SparsityConfig(block_size=16, seed=0, random_per_head=True, backend="triton")
    num_tokens = 20 * 16 - 5
    plan = triton_backend.triton_plan(20, config, 0, None, 3, torch.device("cpu"))
    columns = plan.columns
    dummies = ((columns.start == columns.end) & (columns.dest >= 0)).sum(dim=1)
    padding_groups = (columns.group_slots == columns.num_slots).all(dim=2).sum(dim=1)
    assert columns.padded and dummies.any() and padding_groups.any()
    generator = torch.Generator().manual_seed(0)
    q, k, v, weights = (torch.randn(2, 3, num_tokens, 16, generator=generator) for _ in range(4))
    key_padding_mask = torch.ones(2, num_tokens, dtype=torch.bool)
    key_padding_mask[1, num_tokens // 3 :] = False
    assert_matches_oracle(config, (q, k, v, weights), key_padding_mask)


def test_triton_rows_without_keys_are_zero_with_zero_gradients(interpreted: None) -> None:
    config = SparsityConfig(block_size=16, backend="triton")
    q, k, v, weights = make_inputs(64, 0, head_dim=16)
    key_padding_mask = torch.ones(2, 64, dtype=torch.bool)
    key_padding_mask[1] = False  # batch element 1 has no real token at all
    out, dq, dk, dv = outputs_and_grads(
        lambda q, k, v: bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask),
        q, k, v, weights,
    )  # fmt: skip
    for tensor in (out, dq, dk, dv):
        assert torch.isfinite(tensor).all()
        assert not tensor[1].any()


def test_triton_refuses_what_its_kernels_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q = torch.zeros(1, 1, 64, 16)
    with pytest.raises(ValueError, match="backend=triton cannot run here: .*(CUDA|Triton)"):
        bigbird_attention(q, q, q, SparsityConfig(block_size=16, backend="triton"))
    # auto never picks the kernels on the CPU
    assert resolve_backend(SparsityConfig(block_size=16), torch.zeros(1, 1, 4096, 16)) == "block"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for config, head_dim, name in [
        (SparsityConfig(block_size=16), 8, "head_dim"),
        (SparsityConfig(block_size=48), 16, "attention.block_size"),
    ]:
        reason = triton_backend.unsupported_reason(torch.zeros(1, 1, 96, head_dim), config)
        assert reason is not None and (name in reason or "Triton is not installed" in reason)


@pytest.mark.slow  # ~12 s: a real sm_90 compile
def test_triton_kernels_compile_for_an_h100() -> None:
    """The compiled (not interpreted) kernels, built for sm_90 with Triton's bundled ptxas."""
    pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")
    script = Path(__file__).with_name("triton_sm90_compile.py")
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(script.parent.parent / "src"),
                                                      env.get("PYTHONPATH")]))  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(script), "bf16"], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode and "ptxas" in result.stderr and "not found" in result.stderr.lower():
        pytest.skip("this Triton build has no bundled ptxas")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("bf16 ") == 3, result.stdout


@pytest.mark.slow  # ~40 s in Triton's interpreter
def test_kernels_pass_their_run_time_check(interpreted: None) -> None:
    """`auto` on CUDA uses the kernels only after this check passes on the machine at hand."""
    triton_backend.verified.cache_clear()
    with torch.inference_mode():  # as when prediction is the first use
        assert triton_backend.verified(torch.device("cpu"), torch.float32, 16, 16)
    triton_backend.verified.cache_clear()


@pytest.mark.parametrize("failure", ["wrong output", "exception"])
def test_a_failed_check_warns_and_keeps_auto_off_the_kernels(
    interpreted: None, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    real_forward = triton_backend._Launch.forward

    def broken_forward(self, k, v):  # noqa: ANN001, ANN202
        if failure == "exception":
            raise RuntimeError("miscompiled")
        out, lse = real_forward(self, k, v)
        return out * 1.01, lse

    monkeypatch.setattr(triton_backend._Launch, "forward", broken_forward)
    triton_backend.verified.cache_clear()
    with pytest.warns(RuntimeWarning, match="failed their check on cpu .*backend=block"):
        assert not triton_backend.verified(torch.device("cpu"), torch.float32, 16, 16)
    triton_backend.verified.cache_clear()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_triton_is_bitwise_deterministic() -> None:
    """Merges by plain reductions, one contribution per index_add target: identical bits."""
    config = SparsityConfig(random_per_head=True, backend="triton")
    q, k, v, weights = (x.cuda().bfloat16() for x in make_inputs(8192, 5, head_dim=64))
    runs = [
        outputs_and_grads(lambda q, k, v: bigbird_attention(q, k, v, config), q, k, v, weights)
        for _ in range(2)
    ]
    for first, second in zip(*runs, strict=True):
        assert torch.equal(first, second)
