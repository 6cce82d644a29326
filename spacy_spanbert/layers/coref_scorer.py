"""Thinc layer: candidate spans and vectors (SpanBatch) -> mention scores,
kept mentions and antecedent scores (CorefScores), over `CorefModule`."""

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats1d, Floats2d, Ints1d, Ints2d, Ragged

from ..data_classes import SpanBatch
from ..errors import Errors
from .coref_module import CorefShim

InT = List[Doc]


@dataclass
class CorefScores:
    """What the coreference scorer computes for a batch of docs.

    indices (Ragged): `[start, end)` offsets of the candidates, one length per doc.
    mention_scores (Floats1d): `s_m` of every candidate, in the order of `indices`.
    kept (Ints1d): The kept mentions, as rows of `indices`, doc by doc, each
        doc's in text order.
    kept_lengths (Ints1d): Kept mentions per doc.
    antecedents (Ints2d): Per kept mention, its candidate antecedents as
        positions in `kept` (-1 for an empty slot).
    scores (Floats2d): Per kept mention, column 0 the dummy antecedent (0),
        then the score of each antecedent in `antecedents`.
    """

    indices: Ragged
    mention_scores: Floats1d
    kept: Ints1d
    kept_lengths: Ints1d
    antecedents: Ints2d
    scores: Floats2d


OutT = CorefScores
# The gradient: d(mention_scores), d(scores).
GradT = Tuple[Floats1d, Floats2d]


def coref_scorer(
    tok2vec: Model[List[Doc], SpanBatch],
    *,
    hidden_width: int,
    feature_width: int,
    dropout: float,
    mention_ratio: float,
    max_antecedents: int,
    antecedent_window: int,
) -> Model[InT, OutT]:
    """Build the coreference scorer. The PyTorch module is created in `init`,
    once the width of the span vectors is known.

    tok2vec (Model[List[Doc], SpanBatch]): The candidate spans and vectors,
        usually a `SpanBertListener`.
    hidden_width (int): Width of the hidden layers of the two FFNNs.
    feature_width (int): Width of the distance and width embeddings.
    dropout (float): Dropout rate.
    mention_ratio (float): Kept mentions per token.
    max_antecedents (int): Antecedents scored per mention (K).
    antecedent_window (int): How many previous kept mentions the coarse
        score ranks.
    RETURNS (Model[List[Doc], CorefScores]): The layer.
    """
    return Model(
        "coref_scorer",
        forward,
        init=init,
        layers=[tok2vec],
        refs={"tok2vec": tok2vec},
        shims=[CorefShim(None)],
        attrs={
            "hidden_width": hidden_width,
            "feature_width": feature_width,
            "dropout": dropout,
            "mention_ratio": mention_ratio,
            "max_antecedents": max_antecedents,
            "antecedent_window": antecedent_window,
        },
    )


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y=None) -> None:
    tok2vec = model.get_ref("tok2vec")
    if tok2vec.has_dim("nO") is not True:
        raise ValueError(Errors.E602)
    tok2vec.initialize()
    cfg = {
        "width": tok2vec.get_dim("nO"),
        "hidden_width": model.attrs["hidden_width"],
        "feature_width": model.attrs["feature_width"],
        "dropout": model.attrs["dropout"],
    }
    model.shims[0].ensure_built(cfg)


def forward(model: Model[InT, OutT], docs: InT, is_train: bool) -> Tuple[OutT, Callable]:
    ops = model.ops
    batch, bp_batch = model.get_ref("tok2vec")(docs, is_train)
    shim = model.shims[0]
    device = shim.device
    offsets = ops.to_numpy(batch.indices.dataXd).reshape((-1, 2)).astype("int64")
    G = xp2torch(batch.vectors, requires_grad=is_train, device=device)
    args = (
        G,
        xp2torch(numpy.ascontiguousarray(offsets[:, 0]), device=device),
        xp2torch(numpy.ascontiguousarray(offsets[:, 1]), device=device),
        [int(n) for n in ops.to_numpy(batch.indices.lengths)],
        [len(doc) for doc in docs],
    )
    kwargs = {name: model.attrs[name] for name in ("mention_ratio", "max_antecedents", "antecedent_window")}
    (scores_m, kept, lengths, ants, scores), bp_torch = shim(ArgsKwargs(args=args, kwargs=kwargs), is_train)
    output = CorefScores(
        indices=batch.indices,
        mention_scores=torch2xp(scores_m, ops=ops),
        kept=ops.asarray1i(kept.cpu().numpy()),
        kept_lengths=ops.asarray1i(lengths.cpu().numpy()),
        antecedents=ops.asarray2i(ants.cpu().numpy()),
        scores=torch2xp(scores, ops=ops),
    )

    def backprop(d_output: GradT) -> List[Doc]:
        d_mention, d_scores = d_output
        outputs, grads = [], []
        for tensor, grad in ((scores_m, d_mention), (scores, d_scores)):
            if tensor.numel() and tensor.requires_grad:
                outputs.append(tensor)
                grads.append(xp2torch(ops.asarray(grad, dtype="float32"), device=device))
        dG = None
        if outputs:
            dG = bp_torch(ArgsKwargs(args=(outputs,), kwargs={"grad_tensors": grads})).args[0]
        d_vectors = torch2xp(dG, ops=ops) if dG is not None else ops.alloc2f(*batch.vectors.shape)
        return bp_batch(SpanBatch(batch.indices, d_vectors, ops.alloc2f(*batch.doc_vectors.shape)))

    return output, backprop
