"""Thinc layer: docs -> candidate spans -> span vectors (SpanBatch)."""
from typing import Callable, List, Optional

import numpy
import torch
from spacy.tokens import Doc
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from ..data_classes import SpanBatch
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
        raise ValueError(
            "spanbert: cannot infer the width of the token vectors. Make sure a "
            "'transformer' (or 'tok2vec') component runs before 'spanbert' and "
            "is initialized first, or give a tok2vec layer with a known width."
        )
    model.set_dim("nI", n_in)
    if model.has_dim("nO") is not True:
        model.set_dim("nO", n_in)
    n_out = model.get_dim("nO")
    n_heads = model.attrs["n_heads"]
    if model.attrs["n_layers"] > 0 and n_out % n_heads != 0:
        raise ValueError(
            f"spanbert: hidden_width {n_out} is not divisible by n_heads "
            f"{n_heads}. Set components.spanbert.model.hidden_width to a multiple "
            f"of n_heads, or change n_heads (e.g. 1, 2, 4 or 8)."
        )
    shim = model.shims[0]
    cfg = {
        "n_in": n_in,
        "hidden_width": n_out,
        "n_heads": n_heads,
        "n_layers": model.attrs["n_layers"],
        "window": model.attrs["window"],
        "dropout": model.attrs["dropout"],
    }
    if not shim.is_built or shim.cfg != cfg:
        shim.build(cfg)


def forward(model: Model[InT, OutT], docs: InT, is_train: bool):
    ops = model.ops
    xp = ops.xp
    tok2vec = model.layers[0]
    n_out = model.get_dim("nO")
    indices = normalize_suggestions(model.attrs["suggester"](docs, ops=ops), ops)
    lengths = [len(doc) for doc in docs]
    n_tokens = sum(lengths)
    if n_tokens == 0:
        empty = SpanBatch(
            indices, ops.alloc2f(0, n_out), ops.alloc2f(len(docs), n_out)
        )
        return empty, lambda d_batch: []
    tokvecs, bp_tokvecs = tok2vec(docs, is_train)
    X = ops.flatten(tokvecs)
    doc_starts = ops.asarray1i(numpy.cumsum([0] + lengths[:-1]))
    is_empty = numpy.asarray(lengths) == 0
    # An empty doc has no whole-doc span; token 0 stands in and its vector
    # is zeroed below (and gets no gradient).
    safe_starts = ops.asarray1i(numpy.where(is_empty, 0, ops.to_numpy(doc_starts)))
    safe_ends = ops.asarray1i(
        numpy.where(is_empty, 1, ops.to_numpy(doc_starts) + numpy.asarray(lengths))
    )
    span_doc = ops.asarray1i(
        numpy.repeat(numpy.arange(len(docs)), ops.to_numpy(indices.lengths))
    )
    span_data = indices.dataXd
    _check_spans(span_data, ops.asarray1i(lengths)[span_doc], xp)
    starts = span_data[:, 0] + doc_starts[span_doc]
    ends = span_data[:, 1] + doc_starts[span_doc]
    shim = model.shims[0]
    device = shim.device
    Xt = to_torch(X, device, requires_grad=is_train)
    args = (
        Xt,
        to_torch(starts.astype("int64"), device),
        to_torch(ends.astype("int64"), device),
        to_torch(span_doc.astype("int64"), device),
        to_torch(safe_starts.astype("int64"), device),
        to_torch(safe_ends.astype("int64"), device),
    )
    (span_t, doc_t), bp_torch = shim(ArgsKwargs(args=args, kwargs={}), is_train)
    vectors = torch2xp(span_t)
    doc_vectors = torch2xp(doc_t)
    keep_doc = xp.asarray(~is_empty, dtype=doc_vectors.dtype)[:, None]
    if is_empty.any():
        doc_vectors = doc_vectors * keep_doc
    batch = SpanBatch(indices, vectors, doc_vectors)

    def backprop(d_batch: SpanBatch) -> List[Doc]:
        outputs = [span_t, doc_t]
        grads = [
            xp2torch(d_batch.vectors, device=device),
            xp2torch(d_batch.doc_vectors * keep_doc, device=device),
        ]
        if span_t.shape[0] == 0 or not span_t.requires_grad:
            outputs, grads = outputs[1:], grads[1:]
        d_args = bp_torch(ArgsKwargs(args=(outputs,), kwargs={"grad_tensors": grads}))
        dXt = d_args.args[0]
        dX = torch2xp(dXt) if dXt is not None else ops.alloc2f(*X.shape)
        return bp_tokvecs(ops.unflatten(dX, lengths))

    return batch, backprop


def to_torch(array, device, *, requires_grad: bool = False):
    """`xp2torch`, with numpy arrays for the CPU taken by `torch.from_numpy`
    (a view, as xp2torch's DLPack route gives, for a fraction of its
    per-call cost: six conversions per batch counted on one-doc batches).

    array (ArrayXd): A numpy or cupy array.
    device (torch.device): Where the tensor must be.
    requires_grad (bool): Whether autograd tracks the tensor.
    RETURNS (torch.Tensor): The tensor.
    """
    if isinstance(array, numpy.ndarray) and device.type == "cpu":
        tensor = torch.from_numpy(array)
        return tensor.requires_grad_() if requires_grad else tensor
    return xp2torch(array, requires_grad=requires_grad, device=device)


def _check_spans(span_data, doc_lengths, xp) -> None:
    """Raise if a suggester produced spans that are empty or outside their doc."""
    if span_data.shape[0] == 0:
        return
    bad = (
        (span_data[:, 0] < 0)
        | (span_data[:, 1] <= span_data[:, 0])
        | (span_data[:, 1] > doc_lengths)
    )
    if bool(bad.any()):
        row = int(xp.nonzero(bad)[0][0])
        start, end = (int(v) for v in span_data[row])
        raise ValueError(
            f"spanbert: the suggester returned the span [{start}, {end}) for a doc "
            f"of {int(doc_lengths[row])} tokens. Candidate spans must satisfy "
            f"0 <= start < end <= len(doc); fix the suggester function."
        )
