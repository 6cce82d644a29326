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
architecture. `predict_with_weights` returns the logits together with the
attention `softmax_i(V q_l / sqrt(W))` of the same pass, which is the evidence
the text classifiers store on the doc.
"""

from typing import Callable, Optional, Tuple

from thinc.api import Model, glorot_uniform_init
from thinc.types import Floats2d, Ints1d

from ..data_classes import SpanBatch
from ..errors import Errors

InT = SpanBatch
OutT = Floats2d


def label_attention(nO: Optional[int] = None, nI: Optional[int] = None, *, dropout: float = 0.0) -> Model[InT, OutT]:
    """Score labels for each doc by attending over its span vectors.

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
        forward,
        init=init,
        dims={"nO": nO, "nI": nI},
        params={"Q": None, "W": None, "U": None, "b": None},
        attrs={"dropout_rate": dropout, "doc_vector": True, "score_scale": None},
    )


def span_label_attention(
    nO: Optional[int] = None,
    nI: Optional[int] = None,
    *,
    dropout: float = 0.0,
    score_scale: float = 30.0,
) -> Model[InT, OutT]:
    """Score labels for each doc through its attended span vector only:
    `logit_l = w_l . sum_i softmax_i(g V q_l) V_i + b_l`, queries starting at 0.

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
        forward,
        init=init,
        dims={"nO": nO, "nI": nI},
        params={"Q": None, "W": None, "b": None},
        attrs={"dropout_rate": dropout, "doc_vector": False, "score_scale": float(score_scale)},
    )


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    if X is not None and model.has_dim("nI") is None:
        model.set_dim("nI", X.width)
    if Y is not None and model.has_dim("nO") is None:
        model.set_dim("nO", Y.shape[1])
    nO = model.get_dim("nO")
    nI = model.get_dim("nI")
    ops = model.ops
    # W and U are random like the output layers of spaCy's own text
    # classifiers (thinc's Linear), not zero: with W = U = 0 no gradient
    # reaches Q or the span vectors (dV = dP W + dS Q, and dS needs P = V W^T),
    # so the encoder stays untrained until W has grown at the transformer's
    # small learning rate. On GoEmotions (200 steps) zero init learned only the
    # label priors (dev macro AUC 0.53).
    if model.attrs.get("doc_vector", True):
        model.set_param("Q", glorot_uniform_init(ops, (nO, nI)))
        model.set_param("W", glorot_uniform_init(ops, (nO, nI)))
        model.set_param("U", glorot_uniform_init(ops, (nO, nI)))
    else:
        # Zero queries: uniform attention (mean pooling) until trained; W
        # stays random so that Q gets a gradient from the first step.
        model.set_param("Q", ops.alloc2f(nO, nI))
        model.set_param("W", glorot_uniform_init(ops, (nO, nI)))
    model.set_param("b", ops.alloc1f(nO))


def forward(model: Model[InT, OutT], batch: InT, is_train: bool) -> Tuple[OutT, Callable]:
    ops = model.ops
    xp = ops.xp
    Q = model.get_param("Q")
    W = model.get_param("W")
    use_doc = model.attrs.get("doc_vector", True)
    U = model.get_param("U") if use_doc else None
    lengths = batch.indices.lengths
    V = batch.vectors
    D = batch.doc_vectors
    rate = model.attrs["dropout_rate"]
    mask_V = mask_D = None
    if is_train and rate:
        mask_V = ops.get_dropout_mask(V.shape, rate)
        mask_D = ops.get_dropout_mask(D.shape, rate)
        V = V * mask_V
        D = D * mask_D
    scale = _scale(model, Q)
    Y, A, P = _attend(model, V, D, lengths)

    def backprop(dY: OutT) -> InT:
        model.inc_grad("b", dY.sum(axis=0))
        if use_doc:
            model.inc_grad("U", ops.gemm(dY, D, trans1=True))
            dD = ops.gemm(dY, U)
        else:
            dD = ops.alloc2f(*D.shape)
        dY_spans = xp.repeat(dY, lengths, axis=0)
        dA = dY_spans * P
        dP = dY_spans * A
        model.inc_grad("W", ops.gemm(dP, V, trans1=True))
        dS = A * (dA - xp.repeat(_segment_sum(ops, A * dA, lengths), lengths, axis=0))
        dS *= scale
        model.inc_grad("Q", ops.gemm(dS, V, trans1=True))
        dV = ops.gemm(dP, W) + ops.gemm(dS, Q)
        if mask_V is not None:
            dV *= mask_V
            if use_doc:
                dD *= mask_D
        return SpanBatch(batch.indices, dV, dD)

    return Y, backprop


def predict_with_weights(model: Model[InT, OutT], batch: InT) -> Tuple[OutT, Floats2d]:
    """The logits and, from the same pass, the attention of each label over
    the spans of its doc, without dropout.

    model (Model[SpanBatch, Floats2d]): An initialized `label_attention` layer.
    batch (SpanBatch): The span vectors.
    RETURNS (Tuple[Floats2d, Floats2d]): One row of label logits per doc (as
        `model.predict(batch)`), and one row of label weights per span; each
        column sums to 1 over the spans of a doc.
    """
    Y, A, _ = _attend(model, batch.vectors, batch.doc_vectors, batch.indices.lengths)
    return Y, A


def attention_weights(model: Model[InT, OutT], batch: InT) -> Floats2d:
    """The attention of each label over the spans of its doc, without dropout.

    model (Model[SpanBatch, Floats2d]): An initialized `label_attention` layer.
    batch (SpanBatch): The span vectors.
    RETURNS (Floats2d): One row per span, one column per label; each column
        sums to 1 over the spans of a doc.
    """
    return _attention(model, batch.vectors, batch.indices.lengths)


def _scale(model: Model[InT, OutT], Q: Floats2d) -> float:
    """1/sqrt(W) (v1), or the layer's fixed `score_scale`."""
    scale = model.attrs.get("score_scale")
    return 1.0 / float(Q.shape[1]) ** 0.5 if scale is None else float(scale)


def _attention(model: Model[InT, OutT], V: Floats2d, lengths: Ints1d) -> Floats2d:
    """softmax_i(V q_l * scale) over the spans of each doc: (spans, labels)."""
    Q = model.get_param("Q")
    return _segment_softmax(model.ops, model.ops.gemm(V, Q, trans2=True) * _scale(model, Q), lengths)


def _attend(model: Model[InT, OutT], V: Floats2d, D: Floats2d, lengths: Ints1d) -> Tuple[OutT, Floats2d, Floats2d]:
    """The logits, the attention weights `A` and `P = V Wᵀ` (kept for backprop)."""
    ops = model.ops
    A = _attention(model, V, lengths)
    P = ops.gemm(V, model.get_param("W"), trans2=True)  # w_l . a_l = sum_i A_il P_il
    Y = _segment_sum(ops, A * P, lengths)
    if model.attrs.get("doc_vector", True):
        Y = Y + ops.gemm(D, model.get_param("U"), trans2=True)
    return Y + model.get_param("b"), A, P


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
    if model.attrs.get("doc_vector", True):
        new = label_attention(nO, model.get_dim("nI"), dropout=model.attrs["dropout_rate"])
    else:
        new = span_label_attention(
            nO, model.get_dim("nI"), dropout=model.attrs["dropout_rate"], score_scale=model.attrs["score_scale"]
        )
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
