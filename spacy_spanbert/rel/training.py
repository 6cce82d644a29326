"""The training side of `spanbert_rel`: gold entities and relations of an
example in the predicted doc's tokens, and the candidate training pairs."""

from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy
from spacy.training import Example

from .pairs import doc_entities, sentence_ids
from .records import read_triples

Offsets = Tuple[int, int]


def _to_predicted(example: Example, offsets: Offsets) -> Optional[Offsets]:
    """The reference span `offsets` in the predicted doc's tokens (by
    characters), or None if its boundaries fall inside predicted tokens."""
    ref = example.reference[offsets[0] : offsets[1]]
    span = example.predicted.char_span(ref.start_char, ref.end_char)
    return None if span is None else (span.start, span.end)


def gold_relations(example: Example, where: str) -> Dict[Tuple[Offsets, Offsets], Set[str]]:
    """The reference doc's relations, keyed by (head, tail) offsets in the
    predicted doc; relations whose arguments do not align are left out.

    example (Example): The example.
    where (str): Names the component in error messages.
    RETURNS (Dict[Tuple[Offsets, Offsets], Set[str]]): The labels per pair.
    """
    gold: Dict[Tuple[Offsets, Offsets], Set[str]] = {}
    for head, tail, label in read_triples(example.reference, where):
        h, t = _to_predicted(example, head), _to_predicted(example, tail)
        if h is not None and t is not None and h != t:
            gold.setdefault((h, t), set()).add(label)
    return gold


def training_sentence_ids(example: Example) -> numpy.ndarray:
    """Sentence number per predicted token: the predicted doc's sentences if
    it has any, else the reference doc's, carried over by the alignment."""
    predicted, reference = example.predicted, example.reference
    if predicted.has_annotation("SENT_START") or not reference.has_annotation("SENT_START"):
        return sentence_ids(predicted)
    ref_ids = sentence_ids(reference)
    x2y = example.alignment.x2y
    lengths = numpy.asarray(x2y.lengths, dtype="int64")
    data = numpy.asarray(x2y.data, dtype="int64").reshape((-1,))
    if not len(data):
        return numpy.zeros((len(predicted),), dtype="int64")
    firsts = numpy.minimum(numpy.cumsum(lengths) - lengths, len(data) - 1)
    return numpy.where(lengths > 0, ref_ids[data[firsts]], 0)


def relation_offsets(offsets: Sequence[Offsets], selected: numpy.ndarray) -> numpy.ndarray:
    """RETURNS (numpy.ndarray): `[head_start, head_end, tail_start, tail_end]`
    int32 rows of the selected (head index, tail index) pairs."""
    spans = numpy.asarray(offsets, dtype="int32").reshape((-1, 2))
    if not len(selected):
        return numpy.zeros((0, 4), dtype="int32")
    return numpy.concatenate([spans[selected[:, 0]], spans[selected[:, 1]]], axis=1)


def training_pairs(
    example: Example,
    spans_key: Optional[str],
    labels: Sequence[str],
    select: Callable,
    sent_ids: numpy.ndarray,
    where: str,
) -> Tuple[List[List[int]], List[List[int]]]:
    """The pairs the head can learn from in an example: the gold entities
    (and the arguments of gold relations) paired as at prediction time
    (`select`), split into positives (a gold relation of a known label) and
    negatives. A gold relation that `select` leaves out is not trained on.

    RETURNS (Tuple[List[List[int]], List[List[int]]]): Positive and negative
        `[head_start, head_end, tail_start, tail_end]` rows, in selection order.
    """
    gold = {pair: found for pair, found in gold_relations(example, where).items() if any(x in labels for x in found)}
    offsets: Set[Offsets] = set()
    for ent in doc_entities(example.reference, spans_key):
        aligned = _to_predicted(example, (ent.start, ent.end))
        if aligned is not None:
            offsets.add(aligned)
    for head, tail in gold:
        offsets.update((head, tail))
    ordered = sorted(offsets)
    selected = select(example.predicted, ordered, sent_ids)
    positives, negatives = [], []
    for row in relation_offsets(ordered, selected).tolist():
        (positives if (tuple(row[:2]), tuple(row[2:])) in gold else negatives).append(row)
    return positives, negatives
