"""The relation head `spanbert_rel`: its component, pair selection, the
`doc._.relations` contract and the relation scorer."""

from .component import SpanBertRelations, make_spanbert_rel
from .records import ensure_relations_extension, get_relations
from .scoring import make_rel_scorer, score_relations

__all__ = [
    "SpanBertRelations",
    "ensure_relations_extension",
    "get_relations",
    "make_rel_scorer",
    "make_spanbert_rel",
    "score_relations",
]
