"""Scoring under bf16 autocast (`--precision bfloat16`): same answers within bf16 rounding, and
the block backend's CPU kernels really run in bf16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bigbird_genomics.attention import chunked
from bigbird_genomics.inference.checkpoint import load_checkpoint
from bigbird_genomics.inference.ensemble import load_models
from bigbird_genomics.tokens.kmers import KmerTokenizer
from bigbird_genomics.training.module import GenomicsModule


def _checkpoint(path: Path, seed: int) -> Path:
    """Two layers (the first runs the block backend on every row; the last, [CLS] alone) over
    16 blocks of 16 tokens, weights drawn from `seed`."""
    torch.manual_seed(seed)
    tokenizer = KmerTokenizer(k=3)
    model = {"vocab_size": tokenizer.vocab_size, "hidden_size": 32, "num_layers": 2,
             "num_heads": 2, "intermediate_size": 64, "dropout": 0.0, "max_tokens": 256,
             "rotary_base": 10000.0}  # fmt: skip
    attention = {"block_size": 16, "num_window_blocks": 3, "num_global_blocks": 2,
                 "num_random_blocks": 1, "random_per_head": False, "seed": 0,
                 "backend": "block"}  # fmt: skip
    task = {"name": "t", "type": "binary", "pooling": "cls", "num_classes": None,
            "label_names": ["label"], "label_groups": {}, "pos_weight": None}  # fmt: skip
    module = GenomicsModule(model, attention, task, tokenizer.to_dict(), {"lr": 1e-3})
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    return path


def _tokens() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(5, 69, size=length) for length in (250, 200, 130, 250)]


def test_bfloat16_scores_match_float32_within_bf16_rounding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _checkpoint(tmp_path / "model.ckpt", 1)
    tokens = _tokens()
    exact = load_checkpoint(path).predict_proba(tokens)
    chunked.cpu_flash_available()  # its own float32 check is not the model's call
    tile_dtypes = []
    real_kernels = chunked._kernels

    def recording(dtype: torch.dtype):  # noqa: ANN202
        tile_dtypes.append(dtype)
        return real_kernels(dtype)

    monkeypatch.setattr(chunked, "_kernels", recording)
    model = load_checkpoint(path, precision="bfloat16")
    fast = model.predict_proba(tokens)
    assert tile_dtypes and set(tile_dtypes) == {torch.bfloat16}
    assert next(model.network.parameters()).dtype == torch.float32  # weights stay float32
    assert fast.dtype == np.float32 and np.isfinite(fast).all()
    np.testing.assert_allclose(fast, exact, atol=3e-2)
    assert not np.array_equal(fast, exact)  # bf16 did run: rounding moved the scores


def test_precision_reaches_every_member_of_an_ensemble(tmp_path: Path) -> None:
    paths = [_checkpoint(tmp_path / f"{seed}.ckpt", seed) for seed in (1, 2)]
    ensemble = load_models(paths, precision="bfloat16")
    assert {member.autocast_dtype for member in ensemble.members} == {torch.bfloat16}
    assert load_models(paths[:1]).autocast_dtype is None  # float32 by default


def test_unknown_precision_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16"):
        load_checkpoint(_checkpoint(tmp_path / "model.ckpt", 1), precision="fp16")
