"""Thinc layer: docs -> candidate spans -> span vectors (SpanBatch)."""

from typing import Callable, List, Optional

import numpy
from spacy.tokens import Doc
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from ..data_classes import SpanBatch
from ..errors import Errors
from ..suggesters import adapt_suggester, normalize_suggestions
from .span_encoder_module import SpanEncoderShim

InT = List[Doc]
OutT = SpanBatch


def span_encoder(
    tok2vec: Model[List[Doc], List[Floats2d]],
    suggester: Callable,
    *,
    hidden_width: Optional[int],
    n_heads: int,
    n_layers: int,
    window: int,
    dropout: float,
) -> Model[InT, OutT]:
    """Build the span encoder layer. The PyTorch module is created in `init`,
    once the width of the token vectors is known.

    tok2vec (Model[List[Doc], List[Floats2d]]): Token vectors, one array per doc.
    suggester (Callable): Candidate spans: `(docs, *, ops) -> Ragged`.
    hidden_width (Optional[int]): Width of the span vectors; None for the
        width of the token vectors.
    n_heads (int): Attention heads of the span-to-span layers.
    n_layers (int): Span-to-span attention layers; 0 turns them off.
    window (int): A span attends to spans starting within this many tokens.
    dropout (float): Dropout rate.
    RETURNS (Model[List[Doc], SpanBatch]): The layer.
    """
    return Model(
        "span_encoder",
        forward,
        init=init,
        layers=[tok2vec],
        shims=[SpanEncoderShim(None)],
        dims={"nI": None, "nO": hidden_width},
        attrs={
            "suggester": adapt_suggester(suggester),
            "n_heads": n_heads,
            "n_layers": n_layers,
            "window": window,
            "dropout": dropout,
        },
    )


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y=None) -> None:
    tok2vec = model.layers[0]
    tok2vec.initialize(X=X)
    n_in = model.get_dim("nI") if model.has_dim("nI") else None
    if n_in is None and tok2vec.has_dim("nO") is True:
        n_in = tok2vec.get_dim("nO")
    if n_in is None and X is not None:
        sample = [doc for doc in X if len(doc)] or list(X)
        n_in = int(tok2vec.predict(sample[:1])[0].shape[1])
    if not n_in:
        raise ValueError(Errors.E011)
    model.set_dim("nI", n_in)
    if model.has_dim("nO") is not True:
        model.set_dim("nO", n_in)
    n_out = model.get_dim("nO")
    n_heads = model.attrs["n_heads"]
    if model.attrs["n_layers"] > 0 and n_out % n_heads != 0:
        raise ValueError(Errors.E003.format(where="spanbert", width=n_out, n_heads=n_heads))
    cfg = {
        "n_in": n_in,
        "hidden_width": n_out,
        "n_heads": n_heads,
        "n_layers": model.attrs["n_layers"],
        "window": model.attrs["window"],
        "dropout": model.attrs["dropout"],
    }
    model.shims[0].ensure_built(cfg)


def forward(model: Model[InT, OutT], docs: InT, is_train: bool):
    ops = model.ops
    n_out = model.get_dim("nO")
    indices = normalize_suggestions(model.attrs["suggester"](docs, ops=ops), ops)
    lengths = numpy.asarray([len(doc) for doc in docs], dtype="int64")
    if lengths.sum() == 0:
        empty = SpanBatch(indices, ops.alloc2f(0, n_out), ops.alloc2f(len(docs), n_out))
        return empty, lambda d_batch: []
    tokvecs, bp_tokvecs = model.layers[0](docs, is_train)
    X = ops.flatten(tokvecs)
    doc_starts = numpy.cumsum(lengths) - lengths
    # An empty doc has no whole-doc span: token 0 stands in, and its vector
    # is zeroed below (so it gets no gradient either).
    is_empty = lengths == 0
    keep_doc = ops.asarray2f((~is_empty).astype("float32")[:, None])
    span_lengths = ops.to_numpy(indices.lengths)
    span_data = ops.to_numpy(indices.dataXd).astype("int64")
    _check_spans(span_data, numpy.repeat(lengths, span_lengths))
    span_doc = numpy.repeat(numpy.arange(len(docs)), span_lengths)
    offsets = doc_starts[span_doc]
    device = model.shims[0].device
    args = [
        span_data[:, 0] + offsets,
        span_data[:, 1] + offsets,
        span_doc,
        numpy.where(is_empty, 0, doc_starts),
        numpy.where(is_empty, 1, doc_starts + lengths),
    ]
    Xt = xp2torch(X, requires_grad=is_train, device=device)
    args = [Xt] + [xp2torch(numpy.ascontiguousarray(a, dtype="int64"), device=device) for a in args]
    (span_t, doc_t), bp_torch = model.shims[0](ArgsKwargs(args=tuple(args), kwargs={}), is_train)
    vectors = torch2xp(span_t, ops=ops)
    doc_vectors = torch2xp(doc_t, ops=ops) * keep_doc

    def backprop(d_batch: SpanBatch) -> List[Doc]:
        outputs = [span_t, doc_t]
        grads = [
            xp2torch(d_batch.vectors, device=device),
            xp2torch(d_batch.doc_vectors * keep_doc, device=device),
        ]
        if span_t.shape[0] == 0:
            outputs, grads = outputs[1:], grads[1:]
        d_args = bp_torch(ArgsKwargs(args=(outputs,), kwargs={"grad_tensors": grads}))
        dXt = d_args.args[0]
        dX = torch2xp(dXt, ops=ops) if dXt is not None else ops.alloc2f(*X.shape)
        return bp_tokvecs(ops.unflatten(dX, lengths.tolist()))

    return SpanBatch(indices, vectors, doc_vectors), backprop


def _check_spans(span_data: numpy.ndarray, doc_lengths: numpy.ndarray) -> None:
    """Raise if a suggester produced spans that are empty or outside their doc."""
    bad = (span_data[:, 0] < 0) | (span_data[:, 1] <= span_data[:, 0]) | (span_data[:, 1] > doc_lengths)
    if bad.any():
        row = int(numpy.flatnonzero(bad)[0])
        raise ValueError(
            Errors.E015.format(start=int(span_data[row, 0]), end=int(span_data[row, 1]), n=int(doc_lengths[row]))
        )
