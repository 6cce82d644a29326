"""Which entity pairs the relation head scores: the entities of a doc, the
ordered pairs within a token distance (and one sentence), closest first and
capped per doc, and the sampled negatives of training."""

import zlib
from typing import List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span


def doc_entities(doc: Doc, spans_key: Optional[str]) -> List[Span]:
    """The entities the relations go between: `doc.spans[spans_key]` when
    `spans_key` is set (nested or overlapping), else `doc.ents`; one per
    offsets (the first label wins), sorted by offsets.

    doc (Doc): The doc.
    spans_key (Optional[str]): The span group, or None for `doc.ents`.
    RETURNS (List[Span]): The entities.
    """
    if spans_key is None:
        spans = list(doc.ents)
    else:
        spans = list(doc.spans[spans_key]) if spans_key in doc.spans else []
    seen = {}
    for span in spans:
        seen.setdefault((span.start, span.end), span)
    return [seen[key] for key in sorted(seen)]


def sentence_ids(doc: Doc) -> numpy.ndarray:
    """One sentence number per token; all 0 when the doc has no sentence
    boundaries (then `within_sentence` constrains nothing)."""
    if not len(doc) or not doc.has_annotation("SENT_START"):
        return numpy.zeros((len(doc),), dtype="int64")
    starts = numpy.asarray([token.is_sent_start is True for token in doc], dtype="int64")
    starts[0] = 0
    return numpy.cumsum(starts)


def select_pairs(
    offsets: Sequence[Tuple[int, int]],
    sent_ids: numpy.ndarray,
    *,
    max_distance: int,
    within_sentence: bool,
    max_pairs: int,
) -> numpy.ndarray:
    """Ordered pairs (i, j), i != j, of entities at most `max_distance` tokens
    apart (tokens strictly between them; 0 when they touch or overlap) and,
    with `within_sentence`, starting in one sentence; the `max_pairs` closest
    (ties by head then tail offsets). Linear in entities x neighbours: only
    entities starting near each head are looked at.

    offsets (Sequence[Tuple[int, int]]): The entities' `[start, end)`, sorted.
    sent_ids (numpy.ndarray): Sentence number per token.
    max_distance (int): Most tokens between two arguments.
    within_sentence (bool): Keep only pairs within one sentence.
    max_pairs (int): Most pairs returned.
    RETURNS (numpy.ndarray): `(n, 2)` int64 rows (head index, tail index).
    """
    spans = numpy.asarray(offsets, dtype="int64").reshape((-1, 2))
    if len(spans) < 2:
        return numpy.zeros((0, 2), dtype="int64")
    starts, ends = spans[:, 0], spans[:, 1]
    longest = int((ends - starts).max())
    rows, dists = [], []
    for i in range(len(spans)):
        lo = numpy.searchsorted(starts, starts[i] - max_distance - longest, side="left")
        hi = numpy.searchsorted(starts, ends[i] + max_distance, side="right")
        j = numpy.arange(lo, hi)
        j = j[j != i]
        gap = numpy.maximum(numpy.maximum(starts[j] - ends[i], starts[i] - ends[j]), 0)
        ok = gap <= max_distance
        if within_sentence:
            ok &= sent_ids[starts[j]] == sent_ids[starts[i]]
        rows.append(numpy.stack([numpy.full(int(ok.sum()), i), j[ok]], axis=1))
        dists.append(gap[ok])
    pairs = numpy.concatenate(rows)
    dist = numpy.concatenate(dists)
    order = numpy.lexsort((pairs[:, 1], pairs[:, 0], dist))
    return pairs[order[:max_pairs]]


def sample_negatives(n: int, n_keep: int, doc: Doc, step: int) -> numpy.ndarray:
    """Pick `n_keep` of `n` negative pairs at random, from a generator seeded
    by the doc's text and the update step: the sample changes from one
    update to the next but not with the global seed or the batch.

    RETURNS (numpy.ndarray): The sorted indices of the kept negatives.
    """
    if n_keep >= n:
        return numpy.arange(n)
    rng = numpy.random.default_rng([zlib.crc32(doc.text.encode("utf8")), step])
    return numpy.sort(rng.choice(n, size=n_keep, replace=False))
