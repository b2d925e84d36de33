"""The BigBird encoder for k-mer tokens and the task heads on top of it."""

from bigbird_genomics.model.encoder import Encoder, EncoderConfig
from bigbird_genomics.model.heads import MaskedLMHead, SequenceHead
from bigbird_genomics.model.network import GenomicsModel

__all__ = ["Encoder", "EncoderConfig", "GenomicsModel", "MaskedLMHead", "SequenceHead"]
