"""Registered model builders. They only compose layers."""
from typing import Callable, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from .data_classes import SpanBatch
from .layers.listener import SpanBertListener
from .layers.span_encoder import span_encoder
from .suggesters import build_ngram_suggester
from .util import check_positive, replace_listener


@registry.architectures("spacy-spanbert.SpanEncoder.v1")
def build_span_encoder(
    tok2vec: Model[List[Doc], List[Floats2d]],
    suggester: Optional[Callable] = None,
    hidden_width: Optional[int] = None,
    n_heads: int = 4,
    n_layers: int = 1,
    window: int = 8,
    dropout: float = 0.1,
) -> Model[List[Doc], SpanBatch]:
    """Token vectors -> span vectors: attention pooling, endpoints and width,
    projected to `hidden_width`, then `n_layers` of local span-to-span attention.

    tok2vec (Model[List[Doc], List[Floats2d]]): Token vectors, e.g.
        `spacy-transformers.TransformerListener.v1` or `spacy.Tok2Vec.v2`.
    suggester (Optional[Callable]): Candidate spans; None for all spans of
        1 to 8 tokens. The `spanbert` component's own `suggester` overrides it.
    hidden_width (Optional[int]): Width of the span vectors; None (default)
        keeps the width of the token vectors.
    n_heads (int): Attention heads; must divide hidden_width.
    n_layers (int): Span-to-span attention layers (0 turns them off).
    window (int): A span attends to spans that start within this many tokens.
    dropout (float): Dropout rate, in [0, 1).
    RETURNS (Model[List[Doc], SpanBatch]): The encoder.
    """
    where = "spacy-spanbert.SpanEncoder.v1 (components.spanbert.model)"
    if hidden_width is not None:
        check_positive(where, "hidden_width", hidden_width)
    check_positive(where, "n_heads", n_heads)
    check_positive(where, "n_layers", n_layers, allow_zero=True)
    check_positive(where, "window", window, allow_zero=True)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{where}: dropout must be in [0, 1), got {dropout!r}.")
    if hidden_width is not None and n_layers > 0 and hidden_width % n_heads:
        raise ValueError(
            f"{where}: hidden_width {hidden_width} is not divisible by n_heads "
            f"{n_heads}. Use a hidden_width that is a multiple of n_heads."
        )
    if suggester is None:
        suggester = build_ngram_suggester(1, 8)
    model = span_encoder(
        tok2vec,
        suggester,
        hidden_width=hidden_width,
        n_heads=n_heads,
        n_layers=n_layers,
        window=window,
        dropout=dropout,
    )
    model.attrs["replace_listener"] = replace_listener
    return model


@registry.architectures("spacy-spanbert.SpanBertListener.v1")
def build_span_bert_listener(
    width: Optional[int] = None, upstream: str = "*"
) -> Model[List[Doc], SpanBatch]:
    """Receive span vectors from an upstream `spanbert` component.

    width (Optional[int]): Width of the span vectors; None to take it from the
        upstream component when the pipeline is linked.
    upstream (str): Name of the `spanbert` component, or "*" for any.
    RETURNS (Model[List[Doc], SpanBatch]): The listener.
    """
    return SpanBertListener(upstream_name=upstream, width=width)
