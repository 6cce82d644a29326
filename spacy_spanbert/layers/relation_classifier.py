"""relation_classifier: score entity pairs per relation label from the span
vectors of a `SpanBatch` (layers/relation_module.py holds the maths)."""

from typing import Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d, Ints1d, Ints2d, Ragged

from ..data_classes import SpanBatch, doc_rows
from ..errors import Errors
from .relation_module import RelationShim

# The docs, and per doc the pairs to score: int32 rows
# [head_start, head_end, tail_start, tail_end] in the doc's token offsets.
InT = Tuple[List[Doc], List[Ints2d]]
# The positions (in the concatenated pair rows) of the pairs whose two
# arguments are candidate spans, and one row of logits per such pair.
OutT = Tuple[Ints1d, Floats2d]


def relation_classifier(
    tok2vec: Model[List[Doc], SpanBatch],
    *,
    hidden_width: int,
    feature_width: int,
    dropout: float,
    nO: Optional[int] = None,
) -> Model[InT, OutT]:
    """Score pairs of candidate spans; the torch module is built in `init`,
    once the span width and the number of labels are known.

    tok2vec (Model[List[Doc], SpanBatch]): Candidate spans and their vectors,
        usually a `SpanBertListener`.
    hidden_width (int): Width of the hidden layer of the output MLP.
    feature_width (int): Width of the distance and width embeddings.
    dropout (float): Dropout rate.
    nO (Optional[int]): Number of relation labels; None to set it at initialize.
    RETURNS (Model[InT, OutT]): The layer.
    """
    return Model(
        "relation_classifier",
        forward,
        init=init,
        layers=[tok2vec],
        refs={"tok2vec": tok2vec},
        shims=[RelationShim(None)],
        dims={"nO": nO},
        attrs={"hidden_width": hidden_width, "feature_width": feature_width, "dropout": dropout},
    )


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y=None) -> None:
    tok2vec = model.get_ref("tok2vec")
    if tok2vec.has_dim("nO") is not True:
        raise ValueError(Errors.E034)
    if model.has_dim("nO") is not True:
        raise ValueError(Errors.E035)
    tok2vec.initialize()
    cfg = {
        "width": tok2vec.get_dim("nO"),
        "n_labels": model.get_dim("nO"),
        "hidden_width": model.attrs["hidden_width"],
        "feature_width": model.attrs["feature_width"],
        "dropout": model.attrs["dropout"],
    }
    model.shims[0].ensure_built(cfg)


def forward(model: Model[InT, OutT], X: InT, is_train: bool) -> Tuple[OutT, Callable]:
    docs, pairs = X
    ops = model.ops
    batch, bp_batch = model.get_ref("tok2vec")(docs, is_train)
    kept, arrays = index_pairs(batch.indices, pairs, ops=ops)
    n_labels = model.get_dim("nO")

    def backprop_nothing(d_logits: Floats2d) -> List[Doc]:
        # Still called, so that the encoder gets its other heads' gradient.
        return bp_batch(
            SpanBatch(batch.indices, ops.alloc2f(*batch.vectors.shape), ops.alloc2f(*batch.doc_vectors.shape))
        )

    if kept.shape[0] == 0:
        return (kept, ops.alloc2f(0, n_labels)), backprop_nothing
    device = model.shims[0].device
    G = xp2torch(batch.vectors, requires_grad=is_train, device=device)
    args = (G,) + tuple(xp2torch(a, device=device) for a in arrays)
    logits_t, bp_torch = model.shims[0](ArgsKwargs(args=args, kwargs={}), is_train)
    logits = torch2xp(logits_t, ops=ops)

    def backprop(d_logits: Floats2d) -> List[Doc]:
        d_args = bp_torch(
            ArgsKwargs(args=((logits_t,),), kwargs={"grad_tensors": (xp2torch(d_logits, device=device),)})
        )
        dG = d_args.args[0]
        d_vectors = torch2xp(dG, ops=ops) if dG is not None else ops.alloc2f(*batch.vectors.shape)
        return bp_batch(SpanBatch(batch.indices, d_vectors, ops.alloc2f(*batch.doc_vectors.shape)))

    return (kept, logits), backprop


def index_pairs(indices: Ragged, pairs: List[Ints2d], *, ops) -> Tuple[Ints1d, Tuple[numpy.ndarray, ...]]:
    """Find the rows of the pairs' arguments among the candidate spans, and
    the candidate spans strictly between each pair's arguments. Vectorized
    per doc: a sorted search, no loop over pairs or spans.

    indices (Ragged): The candidates' `[start, end)` rows, one length per doc.
    pairs (List[Ints2d]): Per doc, `[head_start, head_end, tail_start, tail_end]` rows.
    RETURNS (Tuple[Ints1d, Tuple[numpy.ndarray, ...]]): The positions of the
        pairs whose arguments are both candidates, and the int64 arrays the
        torch module takes after the span vectors: starts, ends (every
        candidate), heads, tails (per kept pair), context pairs, context rows.
    """
    offsets = ops.to_numpy(indices.dataXd).reshape((-1, 2)).astype("int64")
    kept, heads, tails, ctx_pairs, ctx_rows = [], [], [], [], []
    n_kept = position = 0
    for (rows, doc_offsets), doc_pairs in zip(doc_rows(ops, indices), pairs):
        doc_pairs = numpy.asarray(doc_pairs, dtype="int64").reshape((-1, 4))
        doc_offsets = doc_offsets.astype("int64")
        h, t, found = _lookup(doc_offsets, doc_pairs)
        kept.append(numpy.flatnonzero(found) + position)
        position += doc_pairs.shape[0]
        heads.append(h[found] + rows.start)
        tails.append(t[found] + rows.start)
        p, r = _between(doc_offsets, doc_pairs[found])
        ctx_pairs.append(p + n_kept)
        ctx_rows.append(r + rows.start)
        n_kept += int(found.sum())
    arrays = (offsets[:, 0], offsets[:, 1], heads, tails, ctx_pairs, ctx_rows)
    arrays = tuple(a if isinstance(a, numpy.ndarray) else _concat(a) for a in arrays)
    return _concat(kept).astype("int32"), tuple(numpy.ascontiguousarray(a, dtype="int64") for a in arrays)


def _concat(arrays: List[numpy.ndarray]) -> numpy.ndarray:
    return numpy.concatenate(arrays) if arrays else numpy.zeros((0,), dtype="int64")


def _lookup(offsets: numpy.ndarray, pairs: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Rows of the heads and tails among `offsets`, and whether both exist."""
    base = int(max(offsets.max(initial=0), pairs.max(initial=0))) + 1
    keys = offsets[:, 0] * base + offsets[:, 1]
    order = numpy.argsort(keys, kind="stable")
    sorted_keys = keys[order]

    def find(starts: numpy.ndarray, ends: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
        query = starts * base + ends
        pos = numpy.minimum(numpy.searchsorted(sorted_keys, query), max(len(keys) - 1, 0))
        hit = (sorted_keys[pos] == query) if len(keys) else numpy.zeros(query.shape, dtype=bool)
        return (order[pos] if len(keys) else pos), hit

    h, h_hit = find(pairs[:, 0], pairs[:, 1])
    t, t_hit = find(pairs[:, 2], pairs[:, 3])
    return h, t, h_hit & t_hit


def _between(offsets: numpy.ndarray, pairs: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(pair, candidate row) for every candidate lying within the gap between
    a pair's arguments: start >= the earlier argument's end, end <= the later
    one's start. Empty for arguments that touch or overlap."""
    gap_start = numpy.minimum(pairs[:, 1], pairs[:, 3])
    gap_end = numpy.maximum(pairs[:, 0], pairs[:, 2])
    order = numpy.argsort(offsets[:, 0], kind="stable")
    starts = offsets[order, 0]
    lo = numpy.searchsorted(starts, gap_start, side="left")
    hi = numpy.searchsorted(starts, gap_end, side="left")
    counts = numpy.maximum(hi - lo, 0)
    pair_ids = numpy.repeat(numpy.arange(len(pairs)), counts)
    first = numpy.cumsum(counts) - counts
    rows = order[lo[pair_ids] + numpy.arange(int(counts.sum())) - first[pair_ids]]
    inside = offsets[rows, 1] <= gap_end[pair_ids]
    return pair_ids[inside], rows[inside]
