"""span_classifier: score the candidate spans of a `SpanBatch` per label."""
from typing import Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model, NumpyOps
from thinc.types import Floats2d, Ragged

from ..data_classes import SpanBatch

InT = List[Doc]
OutT = Tuple[Ragged, Floats2d]


def span_classifier(
    tok2vec: Model[List[Doc], SpanBatch],
    scorer: Model[Floats2d, Floats2d],
    *,
    nO: Optional[int] = None,
) -> Model[InT, OutT]:
    """Classify each candidate span from its span vector.

    tok2vec (Model[List[Doc], SpanBatch]): Produces the candidate spans and
        their vectors, usually a `SpanBertListener`.
    scorer (Model[Floats2d, Floats2d]): Maps span vectors to one logit per
        class; its output width is this model's `nO`.
    nO (Optional[int]): Number of classes (labels + 1 for "no entity"); None to
        set it at initialization.
    RETURNS (Model[List[Doc], Tuple[Ragged, Floats2d]]): The `[start, end)`
        offsets of the candidates (one length per doc) and their logits.
    """
    return Model(
        "span_classifier",
        forward,
        init=init,
        dims={"nO": nO},
        layers=[tok2vec, scorer],
        refs={"tok2vec": tok2vec, "scorer": scorer},
    )


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y=None) -> None:
    tok2vec = model.get_ref("tok2vec")
    scorer = model.get_ref("scorer")
    if tok2vec.has_dim("nO") is not True:
        raise ValueError(
            "span_classifier: the width of the span vectors is unknown. "
            "Initialize the 'spanbert' component first (it must come before "
            "its heads in the pipeline), or set the listener's width."
        )
    if model.has_dim("nO") is not True:
        raise ValueError(
            "span_classifier: the number of classes (nO) is unknown. Add labels "
            "to the component before initializing it."
        )
    width = tok2vec.get_dim("nO")
    tok2vec.initialize()
    scorer.get_ref("input").set_dim("nI", width)
    scorer.get_ref("output").set_dim("nO", model.get_dim("nO"))
    scorer.initialize()


def forward(model: Model[InT, OutT], docs: InT, is_train: bool) -> Tuple[OutT, Callable]:
    batch, bp_batch = model.get_ref("tok2vec")(docs, is_train)
    if batch.vectors.shape[0] == 0:
        # Some thinc layers (Maxout) cannot backprop through zero rows.
        scores = model.ops.alloc2f(0, model.get_dim("nO"))
        bp_scores = lambda d_scores: model.ops.alloc2f(*batch.vectors.shape)  # noqa: E731
    elif not is_train and (fused := fused_scores(model.get_ref("scorer"), batch.vectors)) is not None:
        scores = fused
        bp_scores = lambda d_scores: model.get_ref("scorer")(batch.vectors, False)[1](d_scores)  # noqa: E731
    else:
        scores, bp_scores = model.get_ref("scorer")(batch.vectors, is_train)

    def backprop(d_scores: Floats2d) -> List[Doc]:
        # Only the scores carry a gradient; the offsets are fixed.
        d_vectors = bp_scores(d_scores)
        d_doc_vectors = model.ops.alloc2f(*batch.doc_vectors.shape)
        return bp_batch(SpanBatch(batch.indices, d_vectors, d_doc_vectors))

    return (batch.indices, scores), backprop


FUSED_LAYERS = ("maxout", "layernorm", "dropout", "linear")
# From this many span rows on, `fused_scores` reorders the Maxout weights so
# that the maximum over pieces reads contiguous blocks: 5-10% of the head's
# time at batch 16 and 64 (about 3,000 and 12,000 rows here); on a one-doc
# batch (about 200 rows) copying the weights cost more than it saved.
PIECE_BLOCKS_MIN_ROWS = 1024


def fused_scores(scorer: Model[Floats2d, Floats2d], X: Floats2d) -> Optional[Floats2d]:
    """Inference on the CPU for the default scorer, `Maxout >> LayerNorm >>
    Dropout >> Linear`, in four torch calls on views of thinc's parameters:
    the same maths as `scorer.predict(X)`, without thinc's per-layer numpy
    passes (LayerNorm's mean and variance, the maxout and the bias adds were
    most of the head's time on a batch of 16 docs). Dropout is the identity
    at inference.

    scorer (Model[Floats2d, Floats2d]): The span scorer.
    X (Floats2d): Span vectors, at least one row.
    RETURNS (Optional[Floats2d]): The logits, or None when this path does not
        apply (another scorer, another backend, or arrays torch cannot view):
        the caller then runs `scorer` as usual.
    """
    if not isinstance(scorer.ops, NumpyOps) or tuple(layer.name for layer in scorer.layers) != FUSED_LAYERS:
        return None
    maxout, norm, _, linear = scorer.layers
    arrays = [
        X,
        maxout.get_param("W"),
        maxout.get_param("b"),
        norm.get_param("G"),
        norm.get_param("b"),
        linear.get_param("W"),
        linear.get_param("b"),
    ]
    if any(
        not isinstance(a, numpy.ndarray) or a.dtype != numpy.float32 or not a.flags.writeable for a in arrays
    ):
        return None
    import torch
    import torch.nn.functional as F

    x, W, b, G, shift, W_out, b_out = (torch.from_numpy(numpy.ascontiguousarray(a)) for a in arrays)
    n_hidden, n_pieces, n_in = W.shape
    with torch.no_grad():
        if x.shape[0] < PIECE_BLOCKS_MIN_ROWS:
            hidden = torch.addmm(b.reshape(-1), x, W.reshape(n_hidden * n_pieces, n_in).t())
            hidden = hidden.view(-1, n_hidden, n_pieces).amax(dim=2)
        else:
            # thinc keeps a unit's pieces side by side ([n_hidden, n_pieces,
            # n_in]); with the weights reordered piece by piece (a copy of
            # the weights, not of the larger output) the maximum runs over
            # contiguous column blocks instead of a strided axis.
            W = W.permute(1, 0, 2).reshape(n_pieces * n_hidden, n_in)
            blocks = torch.addmm(b.t().reshape(-1), x, W.t()).split(n_hidden, dim=1)
            hidden = blocks[0].contiguous()
            for block in blocks[1:]:
                hidden = torch.maximum(hidden, block, out=hidden)
        # thinc's LayerNorm: (h - mean) / sqrt(var + 1e-8), biased variance
        hidden = F.layer_norm(hidden, (n_hidden,), G, shift, eps=1e-8)
        return torch.addmm(b_out, hidden, W_out.t()).numpy()
