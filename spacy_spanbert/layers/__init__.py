"""Thinc layers and PyTorch modules of spacy-spanbert, one per file."""

from .listener import SpanBertListener
from .span_encoder import span_encoder

__all__ = ["SpanBertListener", "span_encoder"]
