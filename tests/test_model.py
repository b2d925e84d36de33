"""The encoder, heads and span masking: shapes, padding invariance, no leakage."""

from __future__ import annotations

import pytest
import torch

from bigbird_genomics.model.encoder import (
    EncoderConfig,
    RotaryEmbedding,
    attention_blocks,
    padded_width,
    pooled_length,
)
from bigbird_genomics.model.mlm_masking import (
    IGNORE_INDEX,
    mask_spans,
    overlap_reach,
    span_positions,
)
from bigbird_genomics.model.network import GenomicsModel
from bigbird_genomics.tokens.kmers import MASK_ID, NUM_SPECIAL

ENCODER = {"vocab_size": 69, "hidden_size": 32, "num_layers": 2, "num_heads": 4,
           "intermediate_size": 64, "dropout": 0.0, "max_tokens": 128}
ATTENTION = {"block_size": 16, "num_window_blocks": 3, "num_global_blocks": 2,
             "num_random_blocks": 1}


def _model(task_type: str = "binary", outputs: int = 1, pooling: str = "cls", **attention):
    torch.manual_seed(0)
    return GenomicsModel(ENCODER, {**ATTENTION, **attention}, task_type, outputs, pooling).eval()


def test_classifier_shapes_and_mlm_shapes() -> None:
    tokens = torch.randint(NUM_SPECIAL, 69, (3, 64))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    assert _model("multilabel", 5)(tokens, mask).shape == (3, 5)
    assert _model("mlm", 0)(tokens, mask).shape == (3, 64, 69)


def test_padding_does_not_change_outputs() -> None:
    """Extra [PAD] blocks after a sequence leave its logits unchanged (CLS and mean pooling)."""
    tokens = torch.randint(NUM_SPECIAL, 69, (2, 40))
    tokens[:, 0] = 1
    padded = torch.cat([tokens, torch.zeros(2, 24, dtype=torch.long)], dim=1)
    for pooling in ("cls", "mean"):
        # window+global cover every block, so the layout does not depend on the block count
        model = _model(pooling=pooling, num_random_blocks=0, num_window_blocks=7)
        short = model(tokens, tokens != 0)
        long = model(padded, padded != 0)
        torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-4)


def test_sparse_and_full_attention_agree_when_pattern_covers_everything() -> None:
    tokens = torch.randint(NUM_SPECIAL, 69, (2, 48))
    sparse = _model(num_window_blocks=5, num_global_blocks=2, backend="block")
    full = _model(backend="full")
    full.load_state_dict(sparse.state_dict())
    mask = torch.ones_like(tokens, dtype=torch.bool)
    torch.testing.assert_close(sparse(tokens, mask), full(tokens, mask), atol=1e-5, rtol=1e-4)


def test_rotary_scores_depend_only_on_relative_position() -> None:
    rotary = RotaryEmbedding(head_dim=8, max_tokens=64, base=10000.0)
    q = torch.randn(1, 1, 1, 8).expand(1, 1, 64, 8)
    k = torch.randn(1, 1, 1, 8).expand(1, 1, 64, 8)
    scores = (rotary(q) * rotary(k)).sum(-1)[0, 0]  # same vectors at every position
    q_rot, k_rot = rotary(q)[0, 0], rotary(k)[0, 0]
    assert torch.allclose(q_rot[10] @ k_rot[7], q_rot[40] @ k_rot[37], atol=1e-4)
    assert torch.allclose(scores, scores[0].expand(64), atol=1e-4)


def test_span_masking_hides_every_overlapping_kmer_of_a_scored_token() -> None:
    k, stride = 6, 1
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(8, 512, dtype=torch.bool)
    mask[:, 400:] = False
    hidden, scored = span_positions(mask, k=k, stride=stride, generator=generator)
    reach = overlap_reach(k, stride)
    assert reach == 5
    assert not hidden[:, 0].any() and not hidden[:, 400:].any()
    assert scored.any(dim=1).all()
    assert (hidden | ~scored).all()  # scored tokens are hidden
    assert 0.08 < hidden[:, 1:400].float().mean().item() < 0.25  # about 15 %
    # Every token sharing bases with a scored token is hidden too (except [CLS] / padding).
    real = mask.clone()
    real[:, 0] = False
    for offset in range(-reach, reach + 1):
        neighbour = torch.roll(scored, offset, dims=1)  # neighbour[p] = scored[p - offset]
        if offset > 0:
            neighbour[:, :offset] = False
        elif offset < 0:
            neighbour[:, offset:] = False
        assert hidden[neighbour & real].all()


def test_mask_spans_labels_and_replacements() -> None:
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(NUM_SPECIAL, NUM_SPECIAL + 64, (4, 300))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    masked, labels = mask_spans(tokens, mask, k=3, stride=1, mask_token_id=MASK_ID,
                                first_kmer_id=NUM_SPECIAL, vocab_size=NUM_SPECIAL + 64,
                                generator=generator)
    scored = labels != IGNORE_INDEX
    assert (labels[scored] == tokens[scored]).all()
    assert (masked[scored] == MASK_ID).float().mean() > 0.6
    assert (masked[:, 0] == tokens[:, 0]).all()


def test_mlm_head_is_tied_to_the_embedding() -> None:
    model = _model("mlm", 0)
    assert model.head.embedding.weight is model.encoder.embedding.weight


def test_random_blocks_redrawn_per_training_step_only_in_training_mode() -> None:
    """attention.redraw_random_per_step: new random blocks per step while training; eval and
    prediction keep the fixed layout of the seed."""
    encoder = {"vocab_size": 69, "hidden_size": 16, "num_layers": 2, "num_heads": 2,
               "intermediate_size": 32, "dropout": 0.0, "max_tokens": 256}
    attention = {"block_size": 16, "num_window_blocks": 3, "num_global_blocks": 2,
                 "num_random_blocks": 2, "backend": "block", "redraw_random_per_step": True}
    torch.manual_seed(0)
    model = GenomicsModel(encoder, attention, "binary", 1)
    tokens = torch.randint(5, 69, (2, 256))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    model.eval()
    fixed = model(tokens, mask)
    model.train()
    model.encoder.set_layout_step(None)
    assert torch.allclose(model(tokens, mask), fixed, atol=1e-6)
    model.encoder.set_layout_step(7)
    step_7 = model(tokens, mask)
    assert not torch.allclose(step_7, fixed, atol=1e-4)
    assert torch.allclose(model(tokens, mask), step_7, atol=1e-6)  # a step's layout is seeded
    model.eval()  # the step is ignored outside training
    assert torch.allclose(model(tokens, mask), fixed, atol=1e-6)


STEM = {**ENCODER, "stem_kernel": 5, "stem_pool": 4}


def _stem_model(
    pooling: str = "cls", task_type: str = "binary", stem_layers: int = 1
) -> GenomicsModel:
    torch.manual_seed(0)
    attention = {**ATTENTION, "num_random_blocks": 0, "num_window_blocks": 7}
    encoder = {**STEM, "stem_layers": stem_layers}
    return GenomicsModel(encoder, attention, task_type, 1, pooling).eval()


def test_conv_stem_pools_tokens_and_ignores_batch_padding() -> None:
    """The stem shortens the sequence by stem_pool and its outputs do not see [PAD]."""
    tokens = torch.randint(NUM_SPECIAL, 69, (2, 41))
    tokens[:, 0] = 1
    tokens[1, 30:] = 0  # a shorter record in the same batch
    padded = torch.cat([tokens, torch.zeros(2, 23, dtype=torch.long)], dim=1)
    for pooling in ("cls", "mean"):
        model = _stem_model(pooling)
        hidden = model.encoder(tokens, tokens != 0)
        assert hidden.shape[1] == 1 + 10  # [CLS] + ceil(40 / 4)
        mask = model.encoder.hidden_mask(tokens != 0)
        assert mask.shape == hidden.shape[:2]
        assert mask[1].sum() == 1 + 8  # 29 real k-mers -> ceil(29 / 4) pooled positions
        torch.testing.assert_close(
            model(tokens, tokens != 0), model(padded, padded != 0), atol=1e-5, rtol=1e-4
        )
    alone = _stem_model()(tokens[1:, :30], tokens[1:, :30] != 0)
    torch.testing.assert_close(alone, _stem_model()(tokens, tokens != 0)[1:], atol=1e-5, rtol=1e-4)


def test_two_stage_stem_pools_like_one_stage_of_the_product() -> None:
    """Two conv + pool stages by 4 leave the positions (and mask) of one pool by 16, so the
    padding rules need only `downsample`; padding and batch neighbours still change nothing."""
    tokens = torch.randint(NUM_SPECIAL, 69, (2, 70))
    tokens[:, 0] = 1
    tokens[1, 37:] = 0  # 36 real k-mers
    padded = torch.cat([tokens, torch.zeros(2, 29, dtype=torch.long)], dim=1)
    model = _stem_model(stem_layers=2)
    assert model.encoder.config.downsample == 16
    hidden = model.encoder(tokens, tokens != 0)
    assert hidden.shape[1] == pooled_length(70, 16) == 1 + 5  # ceil(69 / 16)
    mask = model.encoder.hidden_mask(tokens != 0)
    assert mask.shape == hidden.shape[:2] and mask[1].sum() == 1 + 3  # ceil(36 / 16)
    torch.testing.assert_close(
        model(tokens, tokens != 0), model(padded, padded != 0), atol=1e-5, rtol=1e-4
    )
    alone = model(tokens[1:, :37], tokens[1:, :37] != 0)
    torch.testing.assert_close(alone, model(tokens, tokens != 0)[1:], atol=1e-5, rtol=1e-4)
    # the second stage is a real convolution on the pooled features: it changes the output
    one_stage = _stem_model(stem_layers=1)
    assert not torch.allclose(one_stage(tokens, tokens != 0), model(tokens, tokens != 0))


@pytest.mark.parametrize("stem_layers", [1, 2])
def test_stem_reading_token_ids_is_the_same_function(stem_layers: int) -> None:
    """`ConvStem.forward_ids` (one-hot convolution, used when the vocabulary is narrower than the
    width and no embedding dropout is due) gives the outputs and gradients of the plain path."""
    torch.manual_seed(0)
    encoder = {**ENCODER, "vocab_size": 9, "dropout": 0.0, "stem_kernel": 5, "stem_pool": 2,
               "stem_layers": stem_layers}  # fmt: skip
    attention = {**ATTENTION, "num_random_blocks": 1}
    model = GenomicsModel(encoder, attention, "binary", 1, "cls").train()
    tokens = torch.randint(NUM_SPECIAL, 9, (3, 57))
    tokens[:, 0] = 1
    tokens[2, 40:] = 0
    mask = tokens != 0
    assert model.encoder._stem_reads_ids()
    outputs, grads = [], []
    for reads_ids in (True, False):
        model.zero_grad()
        model.encoder._stem_reads_ids = lambda reads_ids=reads_ids: reads_ids
        out = model(tokens, mask)
        out.sum().backward()
        outputs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    del model.encoder._stem_reads_ids
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-4)
    assert len(grads[0]) == len(grads[1]) > 0
    for fast, plain in zip(*grads, strict=True):
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-3)
    # embedding dropout in training has no one-hot form: the plain path is taken
    dropped = GenomicsModel({**encoder, "dropout": 0.1}, attention, "binary", 1, "cls")
    assert not dropped.train().encoder._stem_reads_ids()
    assert dropped.eval().encoder._stem_reads_ids()
    wide = GenomicsModel({**encoder, "vocab_size": 69}, attention, "binary", 1, "cls")
    assert not wide.encoder._stem_reads_ids()  # 69 ids > 32 channels: one-hot is no cheaper


def test_one_stage_stem_keeps_its_checkpoint_keys() -> None:
    """Checkpoints of one-stage stems (`stem.conv.*`) load into a one-stage stem unchanged."""
    keys = {key for key in _stem_model().encoder.state_dict() if key.startswith("stem.")}
    assert keys == {"stem.conv.weight", "stem.conv.bias"}
    deeper = {k for k in _stem_model(stem_layers=3).encoder.state_dict() if k.startswith("stem.")}
    assert keys < deeper and len(deeper) == 6


def test_padding_rule_with_and_without_a_pooling_stem() -> None:
    """Without a stem, inputs pad to whole blocks; with one, the input is not padded (the stem
    would convolve padding) and the attention pads the pooled positions to whole blocks."""
    for num_tokens in (1, 2, 17, 64, 65, 296, 4096):
        width = padded_width(num_tokens, 64)
        assert width % 64 == 0 and num_tokens <= width < num_tokens + 64
        assert attention_blocks(num_tokens, 64) == width // 64
        assert padded_width(num_tokens, 64, 4) == num_tokens
        assert attention_blocks(num_tokens, 64, 4) == -(-pooled_length(num_tokens, 4) // 64)
    assert pooled_length(296, 4) == 75 and attention_blocks(296, 64, 4) == 2
    cls_only = torch.ones(2, 1, dtype=torch.long)  # a record shorter than one k-mer
    assert _stem_model().encoder(cls_only, cls_only != 0).shape == (2, 1, 32)
    assert _stem_model("mean")(cls_only, cls_only != 0).shape == (2, 1)


def test_conv_stem_is_refused_for_masked_lm_pooling() -> None:
    with pytest.raises(ValueError, match=r"model\.stem_pool"):
        _stem_model(task_type="mlm")


@pytest.mark.parametrize(
    ("attention", "stem_layers", "num_tokens"),
    [
        ({}, 0, 90),  # 6 blocks: `auto` takes dense
        ({"backend": "block", "random_per_head": True}, 0, 200),
        ({"num_global_blocks": 0, "random_per_head": True}, 0, 200),
        ({"backend": "full"}, 0, 90),
        ({}, 2, 90),
        ({"num_global_blocks": 0}, 0, 1),  # [CLS] alone
    ],
)
def test_last_layer_computing_only_cls_gives_the_same_logits_and_gradients(
    attention: dict, stem_layers: int, num_tokens: int
) -> None:
    """A [CLS]-pooled classifier runs its last layer on row 0 alone: same logits, same gradients
    for every parameter, with padding, in training mode (step-drawn random blocks) and eval.
    float64, so that only a real difference (not float32 rounding) can fail the comparison."""
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(NUM_SPECIAL, 69, (3, num_tokens), generator=generator)
    tokens[:, 0] = 1
    tokens[1, num_tokens // 2 + 1 :] = 0
    torch.manual_seed(0)
    encoder = {**ENCODER, "max_tokens": 256}
    if stem_layers:
        encoder.update(stem_kernel=5, stem_pool=4, stem_layers=stem_layers)
    model = GenomicsModel(encoder, {**ATTENTION, **attention}, "multilabel", 3, "cls").double()
    assert model.first_row_only
    for training in (True, False):
        model.train(training)
        model.encoder.set_layout_step(7)
        results = []
        for first_row_only in (True, False):
            model.first_row_only = first_row_only
            model.zero_grad()
            logits = model(tokens, tokens != 0)
            logits.square().sum().backward()
            grads = {name: p.grad.clone() for name, p in model.named_parameters()}
            results.append((logits.detach(), grads))
        (fast, fast_grads), (full, full_grads) = results
        torch.testing.assert_close(fast, full, atol=1e-10, rtol=1e-10)
        assert fast_grads.keys() == full_grads.keys()
        for name in full_grads:
            torch.testing.assert_close(fast_grads[name], full_grads[name], atol=1e-10,
                                       rtol=1e-10, msg=name)


def test_first_row_shortcut_only_for_cls_pooled_classifiers() -> None:
    assert _model(pooling="cls").first_row_only
    assert not _model(pooling="mean").first_row_only
    assert not _model("mlm", 0).first_row_only


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": 0}, r"enc\.hidden_size=0 must be a whole number >= 1"),
        ({"num_heads": 3}, r"enc\.hidden_size=128 is not divisible by enc\.num_heads=3"),
        ({"hidden_size": 24, "num_heads": 8}, r"must be even"),
        ({"dropout": 1.0}, r"enc\.dropout=1\.0 must be in \[0, 1\)"),
        ({"stem_kernel": 4}, r"enc\.stem_kernel=4 must be 0 \(no stem\) or odd"),
        ({"stem_pool": 2}, r"enc\.stem_pool=2 needs a stem"),
    ],
)
def test_encoder_config_validate_names_the_key(change: dict, message: str) -> None:
    assert EncoderConfig(vocab_size=8).validate() is not None
    with pytest.raises(ValueError, match=message):
        EncoderConfig(vocab_size=8, **change).validate("enc")
