"""The relation scorer, `spacy-spanbert.rel_scorer.v1`.

A relation is compared by the characters of its two arguments, so the
predicted and reference docs may be tokenized differently:

- strict (`rel_micro_p/r/f`, `rel_macro_f`, `rel_f_per_type`): both argument
  spans, their entity types (the predicted doc's entities against the
  reference doc's) and the label are right;
- boundaries (`rel_boundaries_f`): both argument spans and the label are
  right, the types are ignored.
"""

from typing import Any, Dict, Iterable, Optional, Set, Tuple

from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .pairs import doc_entities
from .records import read_triples

# (head chars, head type, tail chars, tail type, label)
Strict = Tuple[Tuple[int, int], str, Tuple[int, int], str, str]


@registry.scorers("spacy-spanbert.rel_scorer.v1")
def make_rel_scorer():
    """RETURNS (Callable): `score_relations`."""
    return score_relations


def score_relations(examples: Iterable[Example], *, spans_key: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
    """Score `doc._.relations` of the predicted docs against the reference docs.

    examples (Iterable[Example]): The examples to score.
    spans_key (Optional[str]): Where the entity types come from:
        `doc.spans[spans_key]`, or `doc.ents` when None.
    RETURNS (Dict[str, Any]): `rel_micro_p`, `rel_micro_r`, `rel_micro_f`,
        `rel_boundaries_f`, `rel_macro_f` (the mean of the per-label strict F
        over the labels in the reference or the predictions) and
        `rel_f_per_type` ({label: {"p", "r", "f"}}).
    """
    strict = PRFScore()
    boundaries = PRFScore()
    per_label: Dict[str, PRFScore] = {}
    for eg in examples:
        pred = _strict_set(eg.predicted, spans_key)
        gold = _strict_set(eg.reference, spans_key)
        strict.score_set(pred, gold)
        boundaries.score_set(
            {(h, t, label) for h, _, t, _, label in pred}, {(h, t, label) for h, _, t, _, label in gold}
        )
        for label in {r[-1] for r in pred | gold}:
            score = per_label.setdefault(label, PRFScore())
            score.score_set({r for r in pred if r[-1] == label}, {r for r in gold if r[-1] == label})
    macro = sum(s.fscore for s in per_label.values()) / len(per_label) if per_label else 0.0
    return {
        "rel_micro_p": strict.precision,
        "rel_micro_r": strict.recall,
        "rel_micro_f": strict.fscore,
        "rel_boundaries_f": boundaries.fscore,
        "rel_macro_f": macro,
        "rel_f_per_type": {label: per_label[label].to_dict() for label in sorted(per_label)},
    }


def _strict_set(doc: Doc, spans_key: Optional[str]) -> Set[Strict]:
    """The relations of a doc with character offsets and argument types (""
    for an argument that is not an entity of the doc)."""
    types = {(e.start, e.end): e.label_ for e in doc_entities(doc, spans_key)}
    out = set()
    for head, tail, label in read_triples(doc, "rel_scorer"):
        h, t = doc[head[0] : head[1]], doc[tail[0] : tail[1]]
        out.add(
            ((h.start_char, h.end_char), types.get(head, ""), (t.start_char, t.end_char), types.get(tail, ""), label)
        )
    return out
