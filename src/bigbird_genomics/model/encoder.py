"""Pre-LayerNorm transformer encoder whose self-attention is BigBird block-sparse attention.

A nanoGPT-sized module on purpose: embedding -> N x (LN -> attention -> residual, LN -> GELU MLP
-> residual) -> final LN. Positions are rotary (RoPE): they cost no parameters, so the context
length is a run-time choice. An optional convolutional stem (`stem_kernel`, `stem_pool`,
`stem_layers`) sits between embedding and blocks: it gives the encoder motif detectors from the
first step and, with pooling, shortens the sequence the attention blocks see (see `ConvStem`).
`max_tokens` (context including [CLS]) is the documented maximum: the rotary tables are
precomputed up to it and the configuration checks refuse longer inputs, because a model has only
been trained on relative distances below its context.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import torch
from torch import nn

from bigbird_genomics.attention import SparsityConfig, bigbird_attention, first_row_attention


@dataclass
class EncoderConfig:
    """Shape of the encoder; plain fields so it round-trips through checkpoints as a dict."""

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    dropout: float = 0.1
    max_tokens: int = 512
    rotary_base: float = 10000.0
    pad_token_id: int = 0
    # Convolutional stem: 0 = none (k-mer embeddings go straight into the blocks).
    stem_kernel: int = 0
    # Max-pool factor of each stem stage: the blocks see 1 + ceil((tokens - 1) / downsample)
    # positions, downsample = stem_pool ** stem_layers.
    stem_pool: int = 1
    # Conv + GELU + max-pool stages of the stem (a small CNN tower, as in Basset or Enformer).
    stem_layers: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self, prefix: str = "model") -> EncoderConfig:
        """Raise ValueError naming the offending key (as `prefix.key`); return self when valid.

        The model owns its shape rules (as `SparsityConfig.validate` owns the pattern's), so a
        config is refused before training with the key that cannot work.
        """
        for key in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                    "max_tokens"):  # fmt: skip
            value = getattr(self, key)
            if not _is_whole(value) or value < 1:
                shown = "null" if value is None else repr(value)  # as written in the config
                raise ValueError(f"{prefix}.{key}={shown} must be a whole number >= 1")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{prefix}.dropout={self.dropout} must be in [0, 1)")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"{prefix}.hidden_size={self.hidden_size} is not divisible by "
                f"{prefix}.num_heads={self.num_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(
                f"{prefix}.hidden_size / {prefix}.num_heads must be even (rotary positions "
                "rotate pairs)"
            )
        kernel, pool, layers = self.stem_kernel, self.stem_pool, self.stem_layers
        if not _is_whole(kernel) or kernel < 0 or (kernel and kernel % 2 == 0):
            raise ValueError(f"{prefix}.stem_kernel={kernel} must be 0 (no stem) or odd")
        for key, value in (("stem_pool", pool), ("stem_layers", layers)):
            if not _is_whole(value) or value < 1:
                raise ValueError(f"{prefix}.{key}={value} must be >= 1")
            if value > 1 and not kernel:
                raise ValueError(
                    f"{prefix}.{key}={value} needs a stem: set {prefix}.stem_kernel (e.g. 9)"
                )
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def downsample(self) -> int:
        """Input tokens per position the blocks see (1: no pooling stem)."""
        return stem_downsample(self.stem_pool, self.stem_layers)

    def pad_width(self, num_tokens: int, block_size: int) -> int:
        """Input width to pad a batch whose longest record has `num_tokens` (see padded_width)."""
        return padded_width(num_tokens, block_size, self.downsample)


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def stem_downsample(stem_pool: int, stem_layers: int = 1) -> int:
    """Total pooling of a stem of `stem_layers` stages that each pool by `stem_pool`.

    Stages pool with ceil_mode, and ceil(ceil(n / a) / b) == ceil(n / (a * b)), so a tower pools
    exactly like one stage of the product: `pooled_length` and the padding rules need only this.
    """
    return int(stem_pool) ** max(int(stem_layers), 1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al. 2021), "rotate half" layout as in GPT-NeoX/LLaMA.

    Written by hand (a dozen lines) because torch has no built-in RoPE and the libraries that do
    (torchtune, transformers) would be a heavy dependency for one function.
    """

    def __init__(self, head_dim: int, max_tokens: int, base: float) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embedding needs an even head dimension, got {head_dim}")
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        angles = torch.outer(torch.arange(max_tokens, dtype=torch.float32), inv_freq)
        angles = torch.cat([angles, angles], dim=-1)  # [max_tokens, head_dim]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate `x` [batch, heads, tokens, head_dim] by its token positions."""
        tokens = x.shape[-2]
        if tokens > self.cos.shape[0]:
            raise ValueError(
                f"input has {tokens} tokens but the model's context (model.max_tokens) is "
                f"{self.cos.shape[0]}"
            )
        cos = self.cos[:tokens].to(x.dtype)
        sin = self.sin[:tokens].to(x.dtype)
        first, second = x.chunk(2, dim=-1)
        rotated = torch.cat([-second, first], dim=-1)
        return x * cos + rotated * sin


class ConvStem(nn.Module):
    """`layers` x (Conv1d + GELU + max-pool by `pool`) over the k-mer embeddings; [CLS] passes.

    Why: trained from scratch on a few thousand records, a transformer has to discover motif
    detectors through attention alone; a convolution has them built in (the small CNN baseline
    of benchmarks/accuracy.py beats a plain encoder of the same budget), and pooling cuts the
    blocks' cost by `pool` per stage. A second stage sees motifs in context (its kernel spans
    `pool` times more DNA) at a `pool`-th of the first stage's cost, as the small CNN baselines
    do. Padding is zeroed before every convolution and masked to -inf before every pooling, so
    the stem adds no dependence on padding (the sparse layout itself is drawn over the padded
    length: see `attention_blocks`).
    Hand-written because torch has no masked conv/pool tower; it is a dozen lines.
    """

    def __init__(self, hidden_size: int, kernel: int, pool: int, layers: int = 1) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"model.stem_kernel must be odd (or 0: no stem), got {kernel}")
        if pool < 1:
            raise ValueError(f"model.stem_pool must be >= 1, got {pool}")
        if layers < 1:
            raise ValueError(f"model.stem_layers must be >= 1, got {layers}")
        self.pool = pool
        # `conv` keeps its name so checkpoints of one-stage stems (`stem.conv.*`) load unchanged.
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel, padding=kernel // 2)
        self.deeper = nn.ModuleList(
            nn.Conv1d(hidden_size, hidden_size, kernel, padding=kernel // 2)
            for _ in range(layers - 1)
        )

    def forward(
        self, x: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`x` [batch, tokens, width] with [CLS] first -> (pooled x, pooled mask)."""
        cls, body = x[:, :1], x[:, 1:]
        body_mask = attention_mask[:, 1:]
        if body.shape[1] == 0:  # [CLS] only: nothing to convolve
            return x, attention_mask
        features, body_mask = self._stage(self.conv, body.transpose(1, 2), body_mask)
        return self._deeper_stages(cls, features, attention_mask, body_mask)

    def forward_ids(
        self, cls: torch.Tensor, tokens: torch.Tensor, attention_mask: torch.Tensor,
        embedding: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` of the un-dropped-out embeddings, its first convolution read off token ids.

        conv(E[ids]) == conv_{W.E}(one_hot(ids)): with a vocabulary smaller than the width (single
        bases: 9 ids for 128 channels; 3-mers: 69 for 256) the one-hot convolution is that much
        cheaper, and it is the stem's costliest op (full resolution). Same function of the same
        weights (tested against `forward`); `embedding` is the [vocab, width] embedding matrix,
        `cls` the [CLS] embedding [batch, 1, width], `tokens` all ids, [CLS] first.
        """
        body_ids, body_mask = tokens[:, 1:], attention_mask[:, 1:]
        if body_ids.shape[1] == 0:
            return cls, attention_mask
        kernel = torch.einsum("ohj,vh->ovj", self.conv.weight, embedding)  # [out, vocab, width]
        one_hot = nn.functional.one_hot(body_ids, embedding.shape[0]).to(embedding.dtype)
        features, body_mask = self._stage(self.conv, one_hot.transpose(1, 2), body_mask, kernel)
        return self._deeper_stages(cls, features, attention_mask, body_mask)

    def _deeper_stages(
        self, cls: torch.Tensor, features: torch.Tensor, attention_mask: torch.Tensor,
        body_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.deeper:
            features, body_mask = self._stage(conv, features, body_mask)
        return torch.cat([cls, features.transpose(1, 2)], dim=1), torch.cat(
            [attention_mask[:, :1], body_mask], dim=1
        )

    def _stage(
        self, conv: nn.Conv1d, features: torch.Tensor, mask: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One conv (`weight` replaces conv's own) + GELU + pool over [batch, channels,
        positions] features with their mask."""
        features = features * mask.unsqueeze(1).to(features.dtype)  # zero padding, as conv pads
        weight = conv.weight if weight is None else weight
        features = nn.functional.conv1d(features, weight, conv.bias, padding=conv.padding)
        features = nn.functional.gelu(features)
        if self.pool > 1:
            features = features.masked_fill(~mask.unsqueeze(1), float("-inf"))
            features = nn.functional.max_pool1d(features, self.pool, ceil_mode=True)
            mask = self._pool_once(mask)
            features = features.masked_fill(~mask.unsqueeze(1), 0.0)
        return features, mask

    def _pool_once(self, mask: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.max_pool1d(mask.unsqueeze(1).float(), self.pool, ceil_mode=True)
        return pooled.squeeze(1).bool()

    def pool_mask(self, body_mask: torch.Tensor) -> torch.Tensor:
        """A pooled position is real when any token in its window is."""
        if self.pool == 1 or body_mask.shape[1] == 0:
            return body_mask
        for _ in range(1 + len(self.deeper)):
            body_mask = self._pool_once(body_mask)
        return body_mask


def padded_width(num_tokens: int, block_size: int, downsample: int = 1) -> int:
    """Input width (tokens incl. [CLS]) to pad a batch whose longest record has `num_tokens`.

    `downsample` is the stem's total pooling (`EncoderConfig.downsample`). Without a pooling
    stem: the next multiple of the block size. With one: `num_tokens` itself.
    The attention pads the *pooled* positions to whole blocks (masked, exact), so padding the
    input to a block multiple would only make the stem convolve padding: measured 0.19 vs 0.28
    training steps/s on 300-bp promoters with model=small_conv. The collator and
    `LoadedModel.predict_proba` both use this rule, so training and prediction agree.
    """
    if downsample == 1:
        return math.ceil(num_tokens / block_size) * block_size
    return num_tokens


def attention_blocks(num_tokens: int, block_size: int, downsample: int = 1) -> int:
    """Blocks the attention layout spans for an input of `num_tokens` (incl. [CLS]).

    The layout (which block is the last global one, where random blocks land) depends on this
    number only, so records with the same count can share a batch without changing each
    other's outputs.
    """
    return math.ceil(pooled_length(num_tokens, downsample) / block_size)


def pooled_length(num_tokens: int, downsample: int = 1) -> int:
    """Positions the blocks see for an input of `num_tokens` (incl. [CLS])."""
    return 1 + math.ceil(max(num_tokens - 1, 0) / downsample)


class SelfAttention(nn.Module):
    """Multi-head self-attention that delegates the score pattern to `bigbird_attention`."""

    def __init__(self, config: EncoderConfig, sparsity: SparsityConfig, layer_index: int) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.sparsity = sparsity
        self.layer_index = layer_index
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        # Sparse kernels give no attention-probability tensor to drop out, so dropout acts on
        # the attention output instead (as in the residual dropout of GPT-2).
        self.dropout = nn.Dropout(config.dropout)
        # Training step whose random blocks to use (attention.redraw_random_per_step); only in
        # training mode: eval and prediction always take the fixed layout (step=None).
        self.layout_step: int | None = None

    def forward(
        self, x: torch.Tensor, rotary: RotaryEmbedding, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor:
        batch, tokens, width = x.shape
        qkv = self.qkv(x).view(batch, tokens, 3, self.num_heads, width // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [batch, heads, tokens, head_dim]
        q, k = rotary(q), rotary(k)
        attended = bigbird_attention(
            q, k, v, self.sparsity, layer_index=self.layer_index,
            key_padding_mask=key_padding_mask,
            step=self.layout_step if self.training else None,
        )
        attended = attended.transpose(1, 2).reshape(batch, tokens, width)
        return self.dropout(self.out(attended))

    def forward_first_row(
        self, x: torch.Tensor, rotary: RotaryEmbedding, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """`forward(x, ...)[:, :1]`, computing queries, attention and output for row 0 only.

        Keys and values still come from every row (row 0 attends to them); see `first_row.py`.
        """
        batch, tokens, width = x.shape
        head_dim = width // self.num_heads
        weight_q, weight_kv = self.qkv.weight.split([width, 2 * width])
        bias_q, bias_kv = self.qkv.bias.split([width, 2 * width])
        q = nn.functional.linear(x[:, :1], weight_q, bias_q)
        q = q.view(batch, 1, self.num_heads, head_dim).transpose(1, 2)
        kv = nn.functional.linear(x, weight_kv, bias_kv)
        k, v = kv.view(batch, tokens, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k = rotary(q), rotary(k)  # q is position 0: the rotary tables' first row
        attended = first_row_attention(
            q, k, v, self.sparsity, layer_index=self.layer_index,
            key_padding_mask=key_padding_mask,
            step=self.layout_step if self.training else None,
        )
        return self.dropout(self.out(attended.transpose(1, 2).reshape(batch, 1, width)))


class EncoderBlock(nn.Module):
    """One pre-LN block: pre-LN keeps deep stacks trainable without learning-rate warm-up tricks."""

    def __init__(self, config: EncoderConfig, sparsity: SparsityConfig, layer_index: int) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size)
        self.attention = SelfAttention(config, sparsity, layer_index)
        self.mlp_norm = nn.LayerNorm(config.hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size),
            nn.GELU(),
            nn.Linear(config.intermediate_size, config.hidden_size),
            nn.Dropout(config.dropout),
        )

    def forward(
        self, x: torch.Tensor, rotary: RotaryEmbedding, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), rotary, key_padding_mask)
        return x + self.mlp(self.mlp_norm(x))

    def forward_first_row(
        self, x: torch.Tensor, rotary: RotaryEmbedding, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """`forward(x, ...)[:, :1]`: rows other than 0 only feed row 0's keys and values."""
        first = x[:, :1] + self.attention.forward_first_row(
            self.attention_norm(x), rotary, key_padding_mask
        )
        return first + self.mlp(self.mlp_norm(first))


class Encoder(nn.Module):
    """Token ids [batch, tokens] -> hidden states [batch, tokens, hidden_size]."""

    def __init__(self, config: EncoderConfig, sparsity: SparsityConfig) -> None:
        super().__init__()
        if config.hidden_size % config.num_heads:
            raise ValueError(
                f"model.hidden_size={config.hidden_size} is not divisible by "
                f"model.num_heads={config.num_heads}"
            )
        self.config = config
        self.sparsity = sparsity
        self.embedding = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.stem = (
            ConvStem(config.hidden_size, config.stem_kernel, config.stem_pool, config.stem_layers)
            if config.stem_kernel
            else None
        )
        self.rotary = RotaryEmbedding(config.head_dim, config.max_tokens, config.rotary_base)
        self.blocks = nn.ModuleList(
            EncoderBlock(config, sparsity, index) for index in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.hidden_size)
        self.apply(_init_weights)

    def set_layout_step(self, step: int | None) -> None:
        """Draw training-mode random blocks for optimizer step `step` (None: the fixed layout)."""
        for block in self.blocks:
            block.attention.layout_step = step

    def hidden_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """Which positions of `forward`'s output are real (fewer than tokens under stem pooling)."""
        if self.stem is None:
            return attention_mask
        return torch.cat([attention_mask[:, :1], self.stem.pool_mask(attention_mask[:, 1:])], 1)

    def _stem_reads_ids(self) -> bool:
        """Whether the stem's first convolution can read token ids (`ConvStem.forward_ids`):
        a vocabulary narrower than the width, and no embedding dropout to apply (eval mode or
        model.dropout=0), which the one-hot form cannot reproduce."""
        return (
            self.stem is not None
            and self.config.vocab_size < self.config.hidden_size
            and not (self.training and self.embedding_dropout.p > 0)
        )

    def forward(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor, *, first_row_only: bool = False
    ) -> torch.Tensor:
        """`attention_mask` is True at real tokens (including [CLS]), False at padding.

        Returns [batch, positions, hidden_size]; positions = tokens unless the stem pools
        (`hidden_mask` gives the matching mask). With `first_row_only`, [batch, 1, hidden_size]:
        the [CLS] state alone, the same values, the last layer computing only that row.
        """
        if self._stem_reads_ids():
            cls = self.embedding_dropout(self.embedding(tokens[:, :1]))
            x, attention_mask = self.stem.forward_ids(
                cls, tokens, attention_mask, self.embedding.weight
            )
        else:
            x = self.embedding_dropout(self.embedding(tokens))
            if self.stem is not None:
                x, attention_mask = self.stem(x, attention_mask)
        # A mask with no padding is no mask: the attention kernels then skip masking (on CUDA,
        # the block backend's SDPA can only take its flash path without a mask).
        key_padding_mask = None if bool(attention_mask.all()) else attention_mask
        last = len(self.blocks) - 1
        for index, block in enumerate(self.blocks):
            if first_row_only and index == last:
                x = block.forward_first_row(x, self.rotary, key_padding_mask)
            else:
                x = block(x, self.rotary, key_padding_mask)
        return self.final_norm(x[:, :1] if first_row_only else x)


def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation (normal, std 0.02): the scale the head learning rates assume."""
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """Sequence summary: the [CLS] state, or the mean over real tokens."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    raise ValueError(f"task.pooling must be 'cls' or 'mean', got {how!r}")


__all__ = [
    "ConvStem", "Encoder", "EncoderConfig", "RotaryEmbedding", "attention_blocks", "padded_width",
    "pool", "pooled_length",
]
