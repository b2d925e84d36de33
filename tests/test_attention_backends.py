"""Every backend against the executable specification: SDPA with the equivalent boolean mask."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from attention_support import (  # shared with the Triton tests
    ATOL,
    BATCH,
    HEAD_DIM,
    HEADS,
    make_inputs,
    oracle,
    outputs_and_grads,
    padding_mask,
)

import bigbird_genomics.attention as attention_package
from bigbird_genomics.attention import (
    SparsityConfig,
    bigbird_attention,
    block,
    chunked,
    dense_mask,
    first_row_attention,
    flex,
    matmul_kernels,
    resolve_backend,
)

CASES = [
    # (tokens, block_size, padding, seed, random_per_head)
    (256, 32, "none", 0, False),
    (300, 32, "right", 1, False),  # not a multiple of the block size
    (37, 16, "both", 2, True),  # shorter than a few blocks: random blocks run out
    (40, 16, "none", 3, False),  # 3 blocks: all window/global
    (5, 16, "right", 4, False),  # a single, mostly padded block
    (200, 8, "both", 5, True),  # many blocks, per-head random blocks
    (129, 64, "right", 6, False),
]


def against_oracle(config, key_padding_mask, q, k, v, weights) -> tuple[tuple, tuple]:  # noqa: ANN001
    """(got, want): outputs and gradients of `bigbird_attention` and of the oracle."""
    got = outputs_and_grads(
        lambda q, k, v: bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask),
        q, k, v, weights,
    )  # fmt: skip
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask), q, k, v, weights
    )
    return got, want


@pytest.mark.parametrize("backend", ["dense", "block"])
@pytest.mark.parametrize(("num_tokens", "block_size", "padding", "seed", "per_head"), CASES)
def test_backend_matches_masked_sdpa_outputs_and_gradients(
    backend: str, num_tokens: int, block_size: int, padding: str, seed: int, per_head: bool
) -> None:
    config = SparsityConfig(
        block_size=block_size, seed=seed, random_per_head=per_head, backend=backend
    )
    q, k, v, weights = make_inputs(num_tokens, seed)
    key_padding_mask = padding_mask(num_tokens, padding)
    got = outputs_and_grads(
        lambda q, k, v: bigbird_attention(
            q, k, v, config, layer_index=1, key_padding_mask=key_padding_mask
        ),
        q,
        k,
        v,
        weights,
    )
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask, layer_index=1),
        q,
        k,
        v,
        weights,
    )
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "config_kwargs",
    [
        {"num_window_blocks": 5, "num_global_blocks": 3, "num_random_blocks": 1},
        {"num_window_blocks": 1, "num_global_blocks": 0, "num_random_blocks": 2},
        {"num_window_blocks": 3, "num_global_blocks": 1, "num_random_blocks": 0},
    ],
)
def test_block_matches_for_other_patterns(config_kwargs: dict) -> None:
    config = SparsityConfig(block_size=16, backend="block", **config_kwargs)
    q, k, v, weights = make_inputs(170, 9)
    key_padding_mask = padding_mask(170, "right")
    got = outputs_and_grads(
        lambda q, k, v: bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask),
        q,
        k,
        v,
        weights,
    )
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask), q, k, v, weights
    )
    for got_tensor, want_tensor in zip(got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4)


def strided_sdpa(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """SDPA whose output has other strides, as CUDA's fused kernels may return it."""
    out = torch.nn.functional.scaled_dot_product_attention(*args, **kwargs)
    return out.transpose(1, 2).contiguous().transpose(1, 2)


@pytest.mark.parametrize("path", ["chunks of one block", "autograd gather", "strided SDPA output"])
@pytest.mark.parametrize(
    ("num_tokens", "block_size", "padding", "seed", "per_head"), [CASES[1], CASES[5], CASES[6]]
)
def test_block_cpu_chunking_and_generic_path(
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    num_tokens: int,
    block_size: int,
    padding: str,
    seed: int,
    per_head: bool,
) -> None:
    """The chunked CPU kernel with many chunks, and the plain autograd path CUDA takes."""
    if path == "chunks of one block":
        monkeypatch.setattr(chunked, "CHUNK_BYTES", 1)
    else:
        monkeypatch.setattr(block, "cpu_flash_available", lambda: False)
    if path == "strided SDPA output":
        monkeypatch.setattr(block, "F", SimpleNamespace(scaled_dot_product_attention=strided_sdpa))
    config = SparsityConfig(
        block_size=block_size, seed=seed, random_per_head=per_head, backend="block"
    )
    q, k, v, weights = make_inputs(num_tokens, seed)
    key_padding_mask = padding_mask(num_tokens, padding)
    got = outputs_and_grads(
        lambda q, k, v: bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask),
        q,
        k,
        v,
        weights,
    )
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask), q, k, v, weights
    )
    for got_tensor, want_tensor in zip(got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("piece_tokens", [1, 48, 10**6])
@pytest.mark.parametrize(
    ("num_tokens", "block_size", "padding", "config_kwargs"),
    [
        (300, 16, "right", {}),  # 19 blocks: global pieces of equal size and a shorter rest
        (250, 16, "both", {"num_global_blocks": 0}),  # no global rows
        (256, 16, "none", {"num_random_blocks": 0}),  # window + global only
        # 3 leading and 2 trailing global blocks, random blocks per head
        (200, 8, "right", {"num_global_blocks": 5, "random_per_head": True}),
        (64, 16, "both", {"num_global_blocks": 8}),  # every block global: full attention
        (97, 16, "fully padded", {}),  # a batch element with no real token
    ],
)
def test_block_cpu_global_pieces_and_patterns(
    monkeypatch: pytest.MonkeyPatch,
    piece_tokens: int,
    num_tokens: int,
    block_size: int,
    padding: str,
    config_kwargs: dict,
) -> None:
    """The CPU Function: global rows cut into key pieces of several sizes (one block, a few
    blocks with a shorter rest, the whole sequence), other patterns, a fully padded element."""
    monkeypatch.setattr(chunked, "GLOBAL_PIECE_TOKENS", piece_tokens)
    monkeypatch.setattr(chunked, "CHUNK_BYTES", 4096)
    config = SparsityConfig(block_size=block_size, seed=3, backend="block", **config_kwargs)
    q, k, v, weights = make_inputs(num_tokens, 4)
    if padding == "fully padded":
        key_padding_mask = torch.ones(BATCH, num_tokens, dtype=torch.bool)
        key_padding_mask[1] = False
    else:
        key_padding_mask = padding_mask(num_tokens, padding)
    got, want = against_oracle(config, key_padding_mask, q, k, v, weights)
    if padding == "fully padded":  # SDPA gives NaN for rows without keys; the backends zeros
        want = tuple(torch.nan_to_num(x, nan=0.0) for x in want)
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        assert torch.isfinite(got_tensor).all(), name
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4, msg=name)


@pytest.mark.parametrize(("num_tokens", "block_size", "padding", "seed", "per_head"), CASES)
def test_block_cpu_matmul_kernels_match_masked_sdpa_in_float64(
    monkeypatch: pytest.MonkeyPatch,
    num_tokens: int, block_size: int, padding: str, seed: int, per_head: bool,
) -> None:
    """The bf16 matmul kernels' formulas (global rows cut into pieces merged by log-sum-exp,
    each piece's gradient share, rows without keys, whole-row softmax gradients), checked
    exactly: forced for every dtype and run in float64 against the oracle, with several pieces
    and chunks."""
    calls = []

    def counted(kernel):  # noqa: ANN001, ANN202
        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls.append(kernel)
            return kernel(*args, **kwargs)

        return call

    forced = (
        counted(matmul_kernels.attention_forward),
        counted(functools.partial(matmul_kernels.attention_forward, whole_rows=True)),
        counted(matmul_kernels.attention_backward),
        counted(functools.partial(matmul_kernels.attention_backward, whole_rows=True)),
    )
    monkeypatch.setattr(chunked, "_kernels", lambda dtype: forced)
    monkeypatch.setattr(chunked, "GLOBAL_PIECE_TOKENS", 2 * block_size)
    monkeypatch.setattr(chunked, "GLOBAL_SCORE_BYTES", 1)  # one piece of global rows per call
    monkeypatch.setattr(chunked, "CHUNK_BYTES", 4096)
    config = SparsityConfig(
        block_size=block_size, seed=seed, random_per_head=per_head, backend="block"
    )
    q, k, v, weights = (x.double() for x in make_inputs(num_tokens, seed))
    key_padding_mask = padding_mask(num_tokens, padding)
    got, want = against_oracle(config, key_padding_mask, q, k, v, weights)
    assert calls, "the forced kernels never ran: the backend took another path"
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=1e-10, rtol=1e-8, msg=name)


@pytest.mark.parametrize("kernels", ["matmul", "flash"])
@pytest.mark.parametrize("padding", ["none", "both"])
def test_block_cpu_bfloat16_matches_the_float32_reference(
    monkeypatch: pytest.MonkeyPatch, padding: str, kernels: str
) -> None:
    """bf16 inputs on CPU, through the bf16 matmul kernels (CPUs with bf16 GEMMs) and through
    the flash kernels (the others): the log-sum-exp stays float32; outputs and gradients
    within bf16 rounding of the float32 reference."""
    monkeypatch.setattr(matmul_kernels, "bf16_matmul_is_fast", lambda: kernels == "matmul")
    monkeypatch.setattr(chunked, "GLOBAL_PIECE_TOKENS", 32)  # global rows merged from 10 pieces
    config = SparsityConfig(block_size=16, seed=2, backend="block")
    q, k, v, weights = make_inputs(300, 5)
    key_padding_mask = padding_mask(300, padding)
    got = outputs_and_grads(
        lambda q, k, v: bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask),
        *(x.bfloat16() for x in (q, k, v, weights)),
    )
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask), q, k, v, weights
    )
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        assert got_tensor.dtype == torch.bfloat16, name
        scale = float(want_tensor.abs().max())
        torch.testing.assert_close(
            got_tensor.float(), want_tensor, atol=3e-2 * scale, rtol=3e-2, msg=name
        )


@pytest.fixture
def fresh_cpu_flash_probe():  # noqa: ANN201
    """cpu_flash_available caches its verdict; forget it before and after a test changes it."""
    chunked.cpu_flash_available.cache_clear()
    yield
    chunked.cpu_flash_available.cache_clear()


@pytest.mark.parametrize("change", ["signature", "wrong result", "missing"])
def test_block_falls_back_when_the_private_cpu_kernel_changes(
    monkeypatch: pytest.MonkeyPatch, fresh_cpu_flash_probe: None, change: str
) -> None:
    """aten._scaled_dot_product_flash_attention_for_cpu is private: a torch release may drop it
    or change how it is called; the block backend must then take the plain autograd path."""
    real_kernel = chunked._CPU_FLASH

    def other_signature(query, key, value):  # noqa: ANN001, ANN202
        return real_kernel(query, key, value)

    def wrong_result(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out, logsumexp = real_kernel(*args, **kwargs)
        return out * 2, logsumexp

    replacement = {"signature": other_signature, "wrong result": wrong_result, "missing": None}
    monkeypatch.setattr(chunked, "_CPU_FLASH", replacement[change])
    assert not chunked.cpu_flash_available()
    config = SparsityConfig(block_size=32, seed=1, backend="block")
    q, k, v, weights = make_inputs(300, 1)
    key_padding_mask = padding_mask(300, "right")
    got, want = against_oracle(config, key_padding_mask, q, k, v, weights)
    for got_tensor, want_tensor in zip(got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4)


@pytest.mark.usefixtures("fresh_cpu_flash_probe")
def test_cpu_fast_path_survives_a_first_call_under_bf16_autocast() -> None:
    """Lightning's bf16-mixed runs the model under CPU autocast; the kernels' one-time check
    runs there on the first forward pass, and must still accept the kernels (a bf16 reference
    against the float32 tolerance would turn the fast path off for the whole process)."""
    model_like = torch.nn.Linear(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model_like(torch.randn(2, 8)).dtype == torch.bfloat16  # autocast is on here
        assert chunked.cpu_flash_available()


def test_cpu_flash_probe_accepts_this_torch_and_leaves_the_global_rng_alone(
    fresh_cpu_flash_probe: None,
) -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert chunked.cpu_flash_available()  # torch 2.13 has the kernels: the fast path is used
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("balanced", [False, True])
@pytest.mark.parametrize(
    ("num_tokens", "block_size", "padding", "seed", "per_head"),
    [CASES[1], CASES[2], CASES[5]],  # each new shape costs ~2 s of FlexAttention tracing
)
def test_flex_forward_matches_on_cpu(
    monkeypatch: pytest.MonkeyPatch,
    balanced: bool,
    num_tokens: int,
    block_size: int,
    padding: str,
    seed: int,
    per_head: bool,
) -> None:
    """Eager FlexAttention (no CPU backward exists in torch); CUDA runs the compiled kernel."""
    monkeypatch.setattr(flex, "BALANCED_DEFAULT", balanced)
    config = SparsityConfig(
        block_size=block_size, seed=seed, random_per_head=per_head, backend="flex"
    )
    q, k, v, _ = make_inputs(num_tokens, seed)
    key_padding_mask = padding_mask(num_tokens, padding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "called without torch.compile()": intended here
        got = bigbird_attention(q, k, v, config, layer_index=1, key_padding_mask=key_padding_mask)
    want = oracle(q, k, v, config, key_padding_mask, layer_index=1)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-4)


def emulated_flex_attention(q, k, v, block_mask, kernel_options=None, return_aux=None):  # noqa: ANN001, ANN201
    """FlexAttention's semantics in plain autograd ops (dense mask from the BlockMask's
    mask_mod), so the balanced layout's gradients can be checked on CPU, where FlexAttention
    has no backward pass."""
    from torch.nn.attention.flex_attention import create_mask

    batch, heads, queries, dim = q.shape
    mask = create_mask(block_mask.mask_mod, batch, heads, queries, k.shape[2], device=q.device)
    scores = (q @ k.transpose(-1, -2) / dim**0.5).masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    out = torch.exp(scores - safe.unsqueeze(-1)) @ v
    return out, SimpleNamespace(lse=lse)


@pytest.mark.parametrize(
    ("num_tokens", "block_size", "padding", "seed", "per_head"),
    [CASES[0], CASES[1], CASES[2], CASES[5], (1024, 16, "right", 7, True)],
)
def test_balanced_flex_layout_gradients_through_an_emulated_kernel(
    monkeypatch: pytest.MonkeyPatch,
    num_tokens: int,
    block_size: int,
    padding: str,
    seed: int,
    per_head: bool,
) -> None:
    """Split global rows merged by log-sum-exp, copied global keys: outputs and gradients."""
    config = SparsityConfig(
        block_size=block_size, seed=seed, random_per_head=per_head, backend="flex"
    )
    assert_balanced_matches_oracle(monkeypatch, config, num_tokens, padding, seed)


def assert_balanced_matches_oracle(
    monkeypatch: pytest.MonkeyPatch,
    config: SparsityConfig,
    num_tokens: int,
    padding: str,
    seed: int,
) -> None:
    """Balanced flex (through the emulated kernel) vs the oracle: outputs and gradients."""
    monkeypatch.setattr(flex, "flex_attention", emulated_flex_attention)
    monkeypatch.setattr(flex, "_refuse_cpu_backward", lambda *tensors: None)
    q, k, v, weights = make_inputs(num_tokens, seed)
    key_padding_mask = padding_mask(num_tokens, padding)
    got = outputs_and_grads(
        lambda q, k, v: flex.flex_bigbird_attention(
            q, k, v, config, key_padding_mask=key_padding_mask, compiled=False, balanced=True
        ),
        q, k, v, weights,
    )  # fmt: skip
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask), q, k, v, weights
    )
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4, msg=name)


def test_balanced_layout_bounds_every_row_and_column() -> None:
    """The point of balancing: no query block and no key block is visited ~n times."""
    from bigbird_genomics.attention.flex_balanced import balanced_layout

    config = SparsityConfig(block_size=64)
    num_blocks = 1024
    extended = balanced_layout(num_blocks, config, 0, None, 1, torch.device("cpu"))
    plain = flex.flex_layout(num_blocks, config, 0, None, 1, torch.device("cpu")).allowed
    assert int(plain.sum(-1).max()) == num_blocks and int(plain.sum(-2).max()) >= num_blocks - 1
    longest_row = int(extended.allowed.sum(-1).max())
    busiest_column = int(extended.allowed.sum(-2).max())
    assert longest_row <= 8 and busiest_column <= 24, (longest_row, busiest_column)
    # Same total work: the copies only move block pairs around.
    assert int(extended.allowed.sum()) == int(plain.sum())


@pytest.mark.slow
def test_compiled_flex_forward_on_cpu() -> None:
    """torch.compile'd FlexAttention forward on CPU at two lengths (compiling takes ~1 min)."""
    from bigbird_genomics.attention.flex import flex_bigbird_attention

    config = SparsityConfig(block_size=16, seed=1)
    for num_tokens, padding in ((100, "right"), (164, "none")):
        q, k, v, _ = make_inputs(num_tokens, 1)
        key_padding_mask = padding_mask(num_tokens, padding)
        got = flex_bigbird_attention(
            q, k, v, config, key_padding_mask=key_padding_mask, compiled=True
        )
        want = oracle(q, k, v, config, key_padding_mask)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-4)


def test_flex_refuses_cpu_backward_with_a_clear_message() -> None:
    q, k, v, _ = make_inputs(64, 0)
    q.requires_grad_(True)
    with pytest.raises(ValueError, match="attention.backend='flex' has no backward pass on CPU"):
        bigbird_attention(q, k, v, SparsityConfig(block_size=16, backend="flex"))


@pytest.mark.parametrize("padding", ["none", "right"])
def test_full_backend_is_ordinary_attention(padding: str) -> None:
    q, k, v, weights = make_inputs(50, 3)
    key_padding_mask = padding_mask(50, padding)
    config = SparsityConfig(block_size=16, backend="full")
    got = bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask)
    mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if key_padding_mask is not None:
        want = want.masked_fill(~key_padding_mask[:, None, :, None], 0.0)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-4)
    # The sparse pattern really is sparse: at 50 tokens/16 it differs from full attention.
    sparse = bigbird_attention(q, k, v, dataclasses.replace(config, backend="dense", block_size=4))
    assert not torch.allclose(sparse, F.scaled_dot_product_attention(q, k, v), atol=1e-3)


@pytest.mark.parametrize("backend", ["dense", "block", "full"])
def test_rows_without_keys_are_zero_and_gradients_finite(backend: str) -> None:
    """Left padding and an all-padding batch element: zeros, never NaN (also in gradients)."""
    q, k, v, weights = make_inputs(96, 4)
    key_padding_mask = torch.zeros(BATCH, 96, dtype=torch.bool)
    key_padding_mask[0, 60:] = True  # left-padded: early blocks see no real key at all
    config = SparsityConfig(block_size=16, num_random_blocks=0, backend=backend)
    out, dq, dk, dv = outputs_and_grads(
        lambda q, k, v: bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask),
        q,
        k,
        v,
        weights,
    )
    assert all(torch.isfinite(t).all() for t in (out, dq, dk, dv))
    assert (out[1] == 0).all()  # batch element without any real token
    assert (out[0, :, :60] == 0).all()
    assert (out[0, :, 60:] != 0).any()


def test_flex_rows_without_keys_are_zero() -> None:
    """FlexAttention's own zeroing of rows without keys (forward only: no CPU backward)."""
    q, k, v, _ = make_inputs(96, 4)
    key_padding_mask = torch.zeros(BATCH, 96, dtype=torch.bool)
    key_padding_mask[0, 60:] = True
    config = SparsityConfig(block_size=16, num_random_blocks=2, backend="flex")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "called without torch.compile()": intended here
        got = bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask)
    assert torch.isfinite(got).all() and (got[1] == 0).all() and (got[0, :, :60] == 0).all()
    torch.testing.assert_close(
        got, oracle(q, k, v, config, key_padding_mask).nan_to_num(0.0), atol=ATOL, rtol=1e-4
    )


def test_eval_is_deterministic_and_step_redraws() -> None:
    config = SparsityConfig(block_size=8, backend="block", seed=1)
    q, k, v, _ = make_inputs(256, 5)
    fixed = bigbird_attention(q, k, v, config, layer_index=3)
    assert torch.equal(fixed, bigbird_attention(q, k, v, config, layer_index=3))
    redrawn = bigbird_attention(q, k, v, config, layer_index=3, step=10)
    assert not torch.allclose(fixed, redrawn)
    torch.testing.assert_close(
        redrawn, oracle(q, k, v, config, None, layer_index=3, step=10), atol=ATOL, rtol=1e-4
    )


def test_auto_picks_block_on_cpu_and_dense_for_tiny_inputs() -> None:
    config = SparsityConfig(block_size=16)
    assert resolve_backend(config, torch.zeros(1, 1, 1024, 8)) == "block"
    assert resolve_backend(config, torch.zeros(1, 1, 20, 8)) == "dense"
    assert resolve_backend(dataclasses.replace(config, backend="flex"), torch.zeros(1)) == "flex"
    q, k, v, _ = make_inputs(300, 2)
    torch.testing.assert_close(
        bigbird_attention(q, k, v, config), oracle(q, k, v, config, None), atol=ATOL, rtol=1e-4
    )


def test_bad_inputs_are_rejected() -> None:
    q, k, v, _ = make_inputs(32, 0)
    with pytest.raises(ValueError, match="attention.num_window_blocks must be odd"):
        bigbird_attention(q, k, v, SparsityConfig(num_window_blocks=2))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \[batch, tokens\]"):
        bigbird_attention(q, k, v, SparsityConfig(), key_padding_mask=torch.ones(2, 31).bool())
    with pytest.raises(ValueError, match="key_padding_mask must be bool"):
        bigbird_attention(q, k, v, SparsityConfig(), key_padding_mask=torch.ones(2, 32))
    with pytest.raises(ValueError, match="q, k, v must all be"):
        bigbird_attention(q, k[:, :, :16], v, SparsityConfig())


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize(
    "backend", ["triton", "block", "flex", "flex_balanced", "flex_plain", "auto"]
)
@pytest.mark.parametrize(
    ("num_tokens", "padding", "per_head"), [(1000, "right", True), (4096, "none", False)]
)
def test_cuda_backends_match_with_gradients(
    monkeypatch: pytest.MonkeyPatch, backend: str, num_tokens: int, padding: str, per_head: bool
) -> None:
    """The CUDA training paths (compiled FlexAttention, SDPA over gathered blocks), fp32."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    if backend.startswith("flex_"):
        monkeypatch.setattr(flex, "BALANCED_DEFAULT", backend == "flex_balanced")
        backend = "flex"
    config = SparsityConfig(block_size=64, seed=3, random_per_head=per_head, backend=backend)
    # head_dim 16: FlexAttention's CUDA kernels refuse smaller heads ("must be at least 16").
    q, k, v, weights = (x.cuda() for x in make_inputs(num_tokens, 3, head_dim=16))
    key_padding_mask = padding_mask(num_tokens, padding)
    key_padding_mask = None if key_padding_mask is None else key_padding_mask.cuda()
    got, want = against_oracle(config, key_padding_mask, q, k, v, weights)
    for got_tensor, want_tensor in zip(got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=1e-4, rtol=1e-3)


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "triton", "block", "flex"])
def test_cuda_bf16_outputs_and_gradients(backend: str) -> None:
    """bf16 training precision: within bf16 rounding of the fp32 reference."""
    q, k, v, weights = (x.cuda() for x in make_inputs(2048, 1, head_dim=64))
    config = SparsityConfig(backend=backend)
    want_backend = "triton" if attention_package.CUDA_PREFERS_TRITON else "block"
    assert resolve_backend(SparsityConfig(), q) == want_backend
    got = outputs_and_grads(
        lambda q, k, v: bigbird_attention(q, k, v, config),
        *(x.bfloat16() for x in (q, k, v, weights)),
    )
    want = outputs_and_grads(lambda q, k, v: oracle(q, k, v, config, None), q, k, v, weights)
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        scale = float(want_tensor.abs().max())
        torch.testing.assert_close(
            got_tensor.float(), want_tensor, atol=3e-2 * scale, rtol=3e-2, msg=name
        )


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_first_row_attention(dtype: torch.dtype) -> None:
    """The [CLS]-row path on CUDA (SDPA with a key mask over one query row), fp32 and bf16."""
    config = SparsityConfig(block_size=64, num_global_blocks=0, random_per_head=True, seed=4)
    q, k, v, weights = (x.cuda() for x in make_inputs(1000, 4, head_dim=64))
    key_padding_mask = padding_mask(1000, "right").cuda()
    got = outputs_and_grads(
        lambda q, k, v: first_row_attention(
            q[:, :, :1], k, v, config, key_padding_mask=key_padding_mask
        ),
        *(x.to(dtype) for x in (q, k, v, weights[:, :, :1])),
    )
    want = outputs_and_grads(
        lambda q, k, v: oracle(q, k, v, config, key_padding_mask)[:, :, :1],
        q, k, v, weights[:, :, :1],
    )  # fmt: skip
    tolerance = 1e-4 if dtype == torch.float32 else 3e-2
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        scale = float(want_tensor.abs().max())
        torch.testing.assert_close(got_tensor.float(), want_tensor, atol=tolerance * scale,
                                   rtol=tolerance, msg=name)


@pytest.mark.parametrize("backend", ["dense", "block"])
def test_strided_inputs_from_a_fused_projection(backend: str) -> None:
    """q, k, v as permuted views of one [B, N, 3, H, d] projection, as an encoder makes them."""
    generator = torch.Generator().manual_seed(8)
    fused = torch.randn(BATCH, 333, 3, HEADS, HEAD_DIM, generator=generator, requires_grad=True)
    weights = torch.randn(BATCH, HEADS, 333, HEAD_DIM, generator=generator)
    key_padding_mask = padding_mask(333, "right")
    config = SparsityConfig(block_size=32, backend=backend)

    def grad_of_fused(function) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        fused.grad = None
        out = function(*fused.permute(2, 0, 3, 1, 4))
        (out * weights).sum().backward()
        return out.detach(), fused.grad.clone()

    got = grad_of_fused(
        lambda q, k, v: bigbird_attention(q, k, v, config, key_padding_mask=key_padding_mask)
    )
    want = grad_of_fused(lambda q, k, v: oracle(q, k, v, config, key_padding_mask))
    for got_tensor, want_tensor in zip(got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4)


def _tiles(counts: torch.Tensor, indices: torch.Tensor, num_tiles: int) -> torch.Tensor:
    """bool [heads, query tiles, key tiles] from a BlockMask's (counts, indices) lists."""
    counts, indices = counts[0], indices[0]
    tiles = torch.zeros(*counts.shape, num_tiles, dtype=torch.bool)
    for h, row in itertools.product(range(counts.shape[0]), range(counts.shape[1])):
        tiles[h, row, indices[h, row, : counts[h, row]].long()] = True
    return tiles


@pytest.mark.parametrize(("num_blocks", "block_size"), [(37, 64), (16, 128), (9, 96), (50, 16)])
def test_flex_tiles_visit_every_attended_pair_and_full_tiles_need_no_mask(
    num_blocks: int, block_size: int
) -> None:
    """The compiled kernel only visits listed tiles, and skips mask_mod in "full" ones: a tile
    missing from the lists would silently drop attention (eager FlexAttention cannot see it)."""
    from bigbird_genomics.attention.flex_tiles import tile_tokens

    config = SparsityConfig(block_size=block_size, random_per_head=True, seed=2)
    layout = flex.flex_layout(num_blocks, config, 0, None, 2, torch.device("cpu"))
    ratio = tile_tokens(block_size) // block_size
    allowed = layout.allowed
    assert allowed.shape[-1] % ratio == 0 and allowed.shape[-1] - num_blocks < ratio
    mask = layout.unpadded_mask
    num_tiles = allowed.shape[-1] // ratio
    partial = _tiles(mask.kv_num_blocks, mask.kv_indices, num_tiles)
    full = _tiles(mask.full_kv_num_blocks, mask.full_kv_indices, num_tiles)
    assert not (partial & full).any()
    per_pair = (partial | full).repeat_interleave(ratio, 1).repeat_interleave(ratio, 2)
    assert not (allowed & ~per_pair).any()  # every attended block pair is in a visited tile
    full_pairs = full.repeat_interleave(ratio, 1).repeat_interleave(ratio, 2)
    assert allowed[full_pairs].all()  # full tiles hold attended pairs only
    kinds = dense_mask(num_blocks * block_size, config, num_heads=2)
    token_allowed = allowed.repeat_interleave(block_size, 1).repeat_interleave(block_size, 2)
    n = num_blocks * block_size
    assert torch.equal(token_allowed[:, :n, :n], kinds)


@pytest.mark.parametrize(
    "config_kwargs",
    [
        {"num_global_blocks": 0, "block_size": 16},
        {"num_global_blocks": 3, "num_window_blocks": 5, "block_size": 16},
        {"block_size": 128, "num_random_blocks": 1},
        {"block_size": 96},
    ],
)
def test_balanced_flex_other_patterns_through_an_emulated_kernel(
    monkeypatch: pytest.MonkeyPatch, config_kwargs: dict
) -> None:
    config = SparsityConfig(seed=4, backend="flex", **config_kwargs)
    num_tokens = 9 * config.block_size + 5
    assert_balanced_matches_oracle(monkeypatch, config, num_tokens, "right", 4)


@pytest.mark.parametrize("balanced", [False, True])
def test_flex_traced_by_dynamo_matches(monkeypatch: pytest.MonkeyPatch, balanced: bool) -> None:
    """torch.compile's graph capture of the flex paths (closures over the layout, the
    log-sum-exp request) on CPU; the "aot_eager" backend skips Inductor's kernels, which CPU
    torch cannot build for FlexAttention here, so the kernels themselves are CUDA-tested."""
    from torch.nn.attention.flex_attention import flex_attention

    traced = torch.compile(flex_attention, backend="aot_eager", dynamic=None)
    monkeypatch.setattr(flex, "_compiled_flex_attention", lambda device_type: traced)
    config = SparsityConfig(block_size=32, seed=1, backend="flex")
    q, k, v, _ = make_inputs(300, 1, head_dim=16)
    key_padding_mask = padding_mask(300, "right")
    with torch.no_grad():
        got = flex.flex_bigbird_attention(
            q, k, v, config, key_padding_mask=key_padding_mask, compiled=True, balanced=balanced
        )
    want = oracle(q, k, v, config, key_padding_mask)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-4)


def test_balanced_layout_stays_small_when_every_block_is_global() -> None:
    """Padding blocks up to a whole tile are not "ordinary rows": they must not shrink the
    slices of the global rows to one block each (that grew the layout quadratically)."""
    from bigbird_genomics.attention.flex_balanced import balanced_layout

    for num_blocks in (15, 16):
        config = SparsityConfig(block_size=64, num_global_blocks=num_blocks)
        extended = balanced_layout(num_blocks, config, 0, None, 1, torch.device("cpu"))
        assert extended.query_copies == 1 and extended.allowed.shape[-1] <= 2 * (num_blocks + 1)


def test_balanced_merge_gives_finite_gradients_to_the_kernel_lse() -> None:
    """A global row whose copies all see no real key (a fully padded sample): the log-sum-exp
    the kernel returns is -inf everywhere, and its gradient must not be NaN (the real kernel
    would pass it on into its own backward)."""
    from bigbird_genomics.attention.flex_balanced import balanced_flex_attention, balanced_layout

    config = SparsityConfig(block_size=16, num_random_blocks=1)
    num_blocks = 24
    extended = balanced_layout(num_blocks, config, 0, None, HEADS, torch.device("cpu"))
    tokens = num_blocks * 16  # already whole 128-token tiles (8 blocks each)
    q, k, v, _ = make_inputs(tokens, 3)
    real = torch.zeros(BATCH, tokens, dtype=torch.bool)
    real[0, :300] = True  # sample 1 has no real token at all
    seen = {}

    def attend(q_, k_, v_, block_mask):  # noqa: ANN001, ANN202
        out, aux = emulated_flex_attention(q_, k_, v_, block_mask)
        lse = aux.lse.detach().requires_grad_(True)
        seen["lse"] = lse
        return out, lse

    out = balanced_flex_attention(q, k, v, extended, 16, real, attend)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(out).all() and (out[1] == 0).all()
    assert torch.isfinite(seen["lse"].grad).all()


FIRST_ROW_CASES = [
    # (tokens, block_size, padding, seed, config changes)
    (256, 32, "none", 0, {}),  # row 0 global: every key
    (300, 32, "right", 1, {"random_per_head": True}),
    (200, 8, "both", 5, {"num_global_blocks": 0}),  # row 0 sees its window and random blocks
    (200, 8, "right", 6, {"num_global_blocks": 0, "random_per_head": True}),
    (37, 16, "both", 2, {"num_global_blocks": 1}),
    (129, 64, "right", 3, {"backend": "full"}),
    (200, 8, "first", 7, {"num_global_blocks": 0}),  # token 0 of one record is padding
    (150, 16, "first", 8, {}),
    (1, 16, "none", 9, {"num_global_blocks": 0}),
]


@pytest.mark.parametrize(
    ("num_tokens", "block_size", "padding", "seed", "changes"), FIRST_ROW_CASES
)
def test_first_row_attention_is_row_zero_of_the_reference(
    num_tokens: int, block_size: int, padding: str, seed: int, changes: dict
) -> None:
    """Outputs and gradients (q row 0, every k and v) equal those of row 0 of the oracle."""
    config = SparsityConfig(block_size=block_size, seed=seed, **changes)
    q, k, v, weights = make_inputs(num_tokens, seed)
    if padding == "first":  # a left-padded record: row 0 has no query, its output must be 0
        key_padding_mask = padding_mask(num_tokens, "right")
        key_padding_mask[0, :3] = False
    else:
        key_padding_mask = padding_mask(num_tokens, padding)
    weights = weights[:, :, :1]

    def first_row(q, k, v):  # noqa: ANN001, ANN202
        return first_row_attention(
            q[:, :, :1], k, v, config, layer_index=2, key_padding_mask=key_padding_mask
        )

    def reference(q, k, v):  # noqa: ANN001, ANN202
        if config.backend == "full":
            mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[:, :, :1]
        return oracle(q, k, v, config, key_padding_mask, layer_index=2)[:, :, :1]

    got = outputs_and_grads(first_row, q, k, v, weights)
    want = outputs_and_grads(reference, q, k, v, weights)
    for name, got_tensor, want_tensor in zip(("out", "dq", "dk", "dv"), got, want, strict=True):
        torch.testing.assert_close(got_tensor, want_tensor, atol=ATOL, rtol=1e-4, msg=name)
    if changes.get("num_global_blocks") == 0 and num_tokens > 3 * block_size:
        assert bool((got[2] == 0).all(dim=-1).any())  # the pattern mask matters
    if padding == "first":
        assert bool((got[0][0] == 0).all())  # padded row 0 outputs zeros, as every backend's


@pytest.mark.parametrize("chunk_bytes", [20_000, 45_000, 100_000])
def test_block_backend_chunks_with_a_shorter_last_chunk(
    chunk_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of several blocks whose last one is shorter, with batch > 1: the reused gather
    buffers must give contiguous keys for every chunk size."""
    monkeypatch.setattr(chunked, "CHUNK_BYTES", chunk_bytes)
    config = SparsityConfig(block_size=16, seed=5, backend="block")
    q, k, v, weights = make_inputs(300, 6)
    key_padding_mask = padding_mask(300, "right")
    got, want = against_oracle(config, key_padding_mask, q, k, v, weights)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=1e-4)
