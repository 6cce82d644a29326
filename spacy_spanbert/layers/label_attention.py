"""Label attention: each label attends over a doc's candidate spans.

For a doc with span vectors `V` (one row per span) and doc vector `d`, label
`l` has a learned query `q_l`, output weights `w_l`, `u_l` and a bias `b_l`:

    a_l     = sum_i softmax_i(V q_l / sqrt(W)) V_i      (softmax over the doc's spans)
    logit_l = w_l . a_l + u_l . d + b_l

A doc without candidate spans has `a_l = 0`, so its logits come from the doc
vector alone.

`span_label_attention` (the layer of `SpanAttentionTextCat.v2`) drops the
doc-vector term, replaces the 1/sqrt(W) scale by a fixed gain `g`
(`score_scale`) and starts the queries at zero:

    logit_l = w_l . sum_i softmax_i(g V q_l) V_i + b_l

so the logits depend on the spans only through the attended vector, an
untrained layer mean-pools the spans, and the attention can leave uniform
within a short fine-tuning: under Adam a query moves by about the learning
rate per step and coordinate whatever the size of its gradient, so the
scale of the scores sets how far the attention can move. With 1/sqrt(W) and
a transformer's learning rate the scores of a doc's spans could only spread
by a small fraction of a unit over a few hundred steps. A doc without spans
gets the bias. The layer returns the logits; the activation is added by the
architecture. `predict_with_weights` returns the logits of either layer together with
the attention of the same pass, which is the evidence the text classifiers
store on the doc.
"""

from typing import Callable, Optional, Tuple

from thinc.api import Model, glorot_uniform_init
from thinc.types import Floats2d, Ints1d

from ..data_classes import SpanBatch
from ..errors import Errors

InT = SpanBatch
OutT = Floats2d


def label_attention(nO: Optional[int] = None, nI: Optional[int] = None, *, dropout: float = 0.0) -> Model[InT, OutT]:
    """Score labels for each doc by attending over its span vectors, plus a
    linear term on the doc vector (`SpanAttentionTextCat.v1`).

    nO (Optional[int]): Number of labels; inferred from the output sample in
        `initialize` if None.
    nI (Optional[int]): Width of the span and doc vectors; inferred from the
        input sample in `initialize` if None.
    dropout (float): Dropout rate applied to the span and doc vectors.
    RETURNS (Model[SpanBatch, Floats2d]): The layer, giving one row of label
        logits per doc.
    """
    return Model(
        "label_attention",
        forward_v1,
        init=init_v1,
        dims={"nO": nO, "nI": nI},
        params={"Q": None, "W": None, "U": None, "b": None},
        attrs={"dropout_rate": dropout},
    )


def span_label_attention(
    nO: Optional[int] = None,
    nI: Optional[int] = None,
    *,
    dropout: float = 0.0,
    score_scale: float = 30.0,
) -> Model[InT, OutT]:
    """Score labels for each doc through its attended span vector only:
    `logit_l = w_l . sum_i softmax_i(g V q_l) V_i + b_l`, queries starting at 0
    (`SpanAttentionTextCat.v2`).

    nO (Optional[int]): Number of labels; inferred from the output sample in
        `initialize` if None.
    nI (Optional[int]): Width of the span vectors; inferred from the input
        sample in `initialize` if None.
    dropout (float): Dropout rate applied to the span vectors.
    score_scale (float): The gain `g` of the attention scores; under Adam it
        multiplies how fast the attention can move away from uniform.
    RETURNS (Model[SpanBatch, Floats2d]): The layer, giving one row of label
        logits per doc.
    """
    return Model(
        "span_label_attention",
        forward_v2,
        init=init_v2,
        dims={"nO": nO, "nI": nI},
        params={"Q": None, "W": None, "b": None},
        attrs={"dropout_rate": dropout, "score_scale": float(score_scale)},
    )


# -- v1: span attention + doc vector, scale 1/sqrt(width) ----------------------


def init_v1(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    nO, nI = _infer_dims(model, X, Y)
    # All random like the output layers of spaCy's own text classifiers
    # (thinc's Linear): with W = U = 0 no gradient would reach Q or the span
    # vectors (dV = dP W + dS Q, and dS needs P = V W^T) until W had grown at
    # the transformer's small learning rate.
    for name in ("Q", "W", "U"):
        model.set_param(name, glorot_uniform_init(model.ops, (nO, nI)))
    model.set_param("b", model.ops.alloc1f(nO))


def forward_v1(model: Model[InT, OutT], batch: InT, is_train: bool) -> Tuple[OutT, Callable]:
    ops = model.ops
    V, bp_V = _dropout(model, batch.vectors, is_train)
    D, bp_D = _dropout(model, batch.doc_vectors, is_train)
    U = model.get_param("U")
    lengths = batch.indices.lengths
    Y, A, P = _attend_v1(model, V, D, lengths)

    def backprop(dY: OutT) -> InT:
        model.inc_grad("b", dY.sum(axis=0))
        model.inc_grad("U", ops.gemm(dY, D, trans1=True))
        dV = _backprop_spans(model, dY, V, A, P, lengths, _scale_v1(model))
        return SpanBatch(batch.indices, bp_V(dV), bp_D(ops.gemm(dY, U)))

    return Y, backprop


def _scale_v1(model: Model[InT, OutT]) -> float:
    return 1.0 / float(model.get_dim("nI")) ** 0.5


def _attend_v1(model, V: Floats2d, D: Floats2d, lengths: Ints1d) -> Tuple[OutT, Floats2d, Floats2d]:
    Y, A, P = _attend_spans(model, V, lengths, _scale_v1(model))
    return Y + model.ops.gemm(D, model.get_param("U"), trans2=True), A, P


# -- v2: span attention only, fixed gain, zero queries ------------------------


def init_v2(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    nO, nI = _infer_dims(model, X, Y)
    # Zero queries: uniform attention (mean pooling) until trained; W stays
    # random so that Q gets a gradient from the first step.
    model.set_param("Q", model.ops.alloc2f(nO, nI))
    model.set_param("W", glorot_uniform_init(model.ops, (nO, nI)))
    model.set_param("b", model.ops.alloc1f(nO))


def forward_v2(model: Model[InT, OutT], batch: InT, is_train: bool) -> Tuple[OutT, Callable]:
    V, bp_V = _dropout(model, batch.vectors, is_train)
    lengths = batch.indices.lengths
    Y, A, P = _attend_v2(model, V, batch.doc_vectors, lengths)

    def backprop(dY: OutT) -> InT:
        model.inc_grad("b", dY.sum(axis=0))
        dV = _backprop_spans(model, dY, V, A, P, lengths, model.attrs["score_scale"])
        return SpanBatch(batch.indices, bp_V(dV), model.ops.alloc2f(*batch.doc_vectors.shape))

    return Y, backprop


def _attend_v2(model, V: Floats2d, D: Floats2d, lengths: Ints1d) -> Tuple[OutT, Floats2d, Floats2d]:
    return _attend_spans(model, V, lengths, model.attrs["score_scale"])


# -- shared --------------------------------------------------------------------

_ATTEND = {"label_attention": _attend_v1, "span_label_attention": _attend_v2}


def predict_with_weights(model: Model[InT, OutT], batch: InT) -> Tuple[OutT, Floats2d]:
    """The logits and, from the same pass, the attention of each label over
    the spans of its doc, without dropout.

    model (Model[SpanBatch, Floats2d]): An initialized `label_attention` or
        `span_label_attention` layer.
    batch (SpanBatch): The span vectors.
    RETURNS (Tuple[Floats2d, Floats2d]): One row of label logits per doc (as
        `model.predict(batch)`), and one row of label weights per span; each
        column sums to 1 over the spans of a doc.
    """
    Y, A, _ = _ATTEND[model.name](model, batch.vectors, batch.doc_vectors, batch.indices.lengths)
    return Y, A


def _infer_dims(model: Model[InT, OutT], X: Optional[InT], Y: Optional[OutT]) -> Tuple[int, int]:
    if X is not None and model.has_dim("nI") is None:
        model.set_dim("nI", X.width)
    if Y is not None and model.has_dim("nO") is None:
        model.set_dim("nO", Y.shape[1])
    return model.get_dim("nO"), model.get_dim("nI")


def _dropout(model: Model[InT, OutT], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    """X with the layer's dropout applied in training, and its backprop."""
    rate = model.attrs["dropout_rate"]
    if not (is_train and rate):
        return X, lambda dX: dX
    mask = model.ops.get_dropout_mask(X.shape, rate)
    return X * mask, lambda dX: dX * mask


def _attend_spans(
    model: Model[InT, OutT], V: Floats2d, lengths: Ints1d, scale: float
) -> Tuple[OutT, Floats2d, Floats2d]:
    """The span part of the logits, `b + sum_i A_il P_il`, the attention `A =
    softmax_i(scale V Qᵀ)` and `P = V Wᵀ` (kept for backprop)."""
    ops = model.ops
    A = _segment_softmax(ops, ops.gemm(V, model.get_param("Q"), trans2=True) * scale, lengths)
    P = ops.gemm(V, model.get_param("W"), trans2=True)  # w_l . a_l = sum_i A_il P_il
    return _segment_sum(ops, A * P, lengths) + model.get_param("b"), A, P


def _backprop_spans(model, dY: OutT, V: Floats2d, A: Floats2d, P: Floats2d, lengths: Ints1d, scale: float):
    """Add the gradients of W and Q; RETURNS the gradient of V."""
    ops = model.ops
    xp = ops.xp
    dY_spans = xp.repeat(dY, lengths, axis=0)
    dA = dY_spans * P
    dP = dY_spans * A
    model.inc_grad("W", ops.gemm(dP, V, trans1=True))
    dS = A * (dA - xp.repeat(_segment_sum(ops, A * dA, lengths), lengths, axis=0)) * scale
    model.inc_grad("Q", ops.gemm(dS, V, trans1=True))
    return ops.gemm(dP, model.get_param("W")) + ops.gemm(dS, model.get_param("Q"))


def _segment_sum(ops, X: Floats2d, lengths: Ints1d) -> Floats2d:
    """Sum the rows of each segment; a segment of length 0 sums to zeros."""
    if X.shape[0] == 0:
        return ops.alloc2f(lengths.shape[0], X.shape[1])
    return ops.reduce_sum(X, lengths)


def _segment_softmax(ops, scores: Floats2d, lengths: Ints1d) -> Floats2d:
    """Softmax over the rows of each segment, column by column. Segments of
    length 0 are allowed (they have no rows)."""
    xp = ops.xp
    if scores.shape[0] == 0:
        return scores
    nonempty = lengths[lengths > 0]
    maxes, _ = ops.reduce_max(scores, nonempty)
    exp = xp.exp(scores - xp.repeat(maxes, nonempty, axis=0))
    totals = ops.reduce_sum(exp, nonempty)
    return exp / xp.repeat(totals, nonempty, axis=0)


def grow_labels(model: Model[InT, OutT], nO: int) -> Model[InT, OutT]:
    """A copy of an initialized layer with `nO` labels; the first labels keep
    their weights, new ones start like a freshly initialized layer.

    model (Model[SpanBatch, Floats2d]): The layer to grow.
    nO (int): The new number of labels, at least the current one.
    RETURNS (Model[SpanBatch, Floats2d]): The new layer.
    """
    old_nO = model.get_dim("nO")
    settings = {k: v for k, v in model.attrs.items() if k in ("score_scale",)}
    make = label_attention if model.name == "label_attention" else span_label_attention
    new = make(nO, model.get_dim("nI"), dropout=model.attrs["dropout_rate"], **settings)
    new.initialize()
    for name in new.param_names:
        param = new.get_param(name)
        param[:old_nO] = model.get_param(name)
        new.set_param(name, param)
    return new


# -- the `SpanAttentionTextCat` chain (listener >> label_attention >> activation)


def textcat_init(model: Model, X=None, Y=None) -> None:
    """Init of the `SpanAttentionTextCat` chain. spaCy initializes text
    classifiers with `reference` docs, which the span encoder has not
    annotated: the width comes from the listener, not from X."""
    tok2vec = model.get_ref("tok2vec")
    attention = model.get_ref("label_attention")
    if attention.has_dim("nI") is None:
        if tok2vec.has_dim("nO") is not True:
            raise ValueError(Errors.E039)
        attention.set_dim("nI", tok2vec.get_dim("nO"))
    if Y is not None and attention.has_dim("nO") is None:
        attention.set_dim("nO", Y.shape[1])
    if attention.has_dim("nO") is None:
        raise ValueError(Errors.E040)
    attention.initialize()
    if model.has_dim("nO") is None:
        model.set_dim("nO", attention.get_dim("nO"))


def resize_output(model: Model, new_nO: int) -> Model:
    """Make room for labels added after the model was built; called by the
    text classifiers' `add_label`. The first labels keep their weights.

    model (Model): A `SpanAttentionTextCat` model.
    new_nO (int): The new number of labels.
    RETURNS (Model): The model, changed in place.
    """
    attention = model.get_ref("label_attention")
    if attention.has_dim("nO") is None or attention.get_dim("nO") == new_nO:
        return model
    if attention.get_dim("nO") > new_nO:
        raise ValueError(Errors.E041.format(old=attention.get_dim("nO"), new=new_nO))
    if not attention.has_param("Q"):
        attention.set_dim("nO", new_nO, force=True)
        model.set_dim("nO", new_nO, force=True)
        return model
    grown = grow_labels(attention, new_nO)
    model.replace_node(attention, grown)
    model.set_ref("label_attention", grown)
    model.set_dim("nO", new_nO, force=True)
    return model
