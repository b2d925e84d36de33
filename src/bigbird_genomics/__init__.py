"""bigbird-genomics: BigBird block-sparse transformer encoders for long DNA sequences."""

__version__ = "0.1.0"
