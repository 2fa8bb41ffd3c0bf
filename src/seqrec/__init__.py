"""seqrec: long-term sequential recommendation by autoregressive generation."""

__version__ = "0.1.0"
