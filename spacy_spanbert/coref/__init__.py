"""The coreference head `spanbert_coref`: the component, the decoding of
clusters and the coreference scorer (MUC, B³, CEAF-φ4)."""

from .component import SpanBertCoref, make_spanbert_coref
from .scoring import make_coref_scorer, score_coref

__all__ = ["SpanBertCoref", "make_coref_scorer", "make_spanbert_coref", "score_coref"]
