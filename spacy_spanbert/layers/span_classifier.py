"""span_classifier: score the candidate spans of a `SpanBatch` per label."""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d, Ragged

from ..data_classes import SpanBatch
from ..errors import Errors

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
        raise ValueError(Errors.E034)
    if model.has_dim("nO") is not True:
        raise ValueError(Errors.E035)
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
    else:
        scores, bp_scores = model.get_ref("scorer")(batch.vectors, is_train)

    def backprop(d_scores: Floats2d) -> List[Doc]:
        # Only the scores carry a gradient; the offsets are fixed.
        d_vectors = bp_scores(d_scores)
        d_doc_vectors = model.ops.alloc2f(*batch.doc_vectors.shape)
        return bp_batch(SpanBatch(batch.indices, d_vectors, d_doc_vectors))

    return (batch.indices, scores), backprop
