"""Task heads: sequence classification (binary / multi-class / multi-label) and masked LM."""

from __future__ import annotations

import torch
from torch import nn


class SequenceHead(nn.Module):
    """Pooled state -> one logit per label (binary: 1, multi-label: L) or per class."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


class MaskedLMHead(nn.Module):
    """BERT's LM head (dense, GELU, LayerNorm, decoder tied to the token embedding).

    Tying halves the parameters that scale with the k-mer vocabulary (4**k + 5 rows).
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        hidden_size = embedding.embedding_dim
        self.transform = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.LayerNorm(hidden_size)
        )
        self.embedding = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.transform(hidden) @ self.embedding.weight.T + self.bias
