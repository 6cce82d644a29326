"""Optimized (inference-only) pipelines: the registered architecture, its
shim and its runtimes. `spacy spanbert optimize` (commands/optimize/) writes
pipelines that use them."""

from . import architectures  # noqa: F401  (registration)
from .architectures import build_optimized_transformer_model
from .runtimes import QUANTIZE, RUNTIMES
from .shim import ARCHITECTURE, OptimizedHFShim

__all__ = ["ARCHITECTURE", "QUANTIZE", "RUNTIMES", "OptimizedHFShim", "build_optimized_transformer_model"]
