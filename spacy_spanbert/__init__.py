"""spacy-spanbert: span-level attention for spaCy.

Importing the package registers its factories, architectures, suggesters and
scorers; a packaged pipeline finds them through the entry points in
pyproject.toml.
"""

from . import _fork, architectures, callbacks, cleaner, coref, encoder, ner, optimize, qa, rel, suggesters, textcat  # noqa: F401  (registration)
from .cleaner import SpanBertCleaner
from .coref import SpanBertCoref, make_spanbert_coref
from .data_classes import SpanBatch
from .display import clusters_for_displacy, relations_for_displacy
from .encoder import SpanBert, make_spanbert
from .evidence import fit_occlusion_estimator
from .layers.listener import SpanBertListener
from .ner import SpanBertNER, make_spanbert_ner
from .qa import SpanBertQA, make_spanbert_qa
from .rel import SpanBertRelations, get_relations, make_spanbert_rel
from .textcat import (
    SpanBertMultiLabelTextCategorizer,
    SpanBertTextCategorizer,
    make_spanbert_textcat,
    make_spanbert_textcat_multilabel,
    predict_with_evidence,
)

__version__ = "0.1.0"

_fork.install()

__all__ = [
    "SpanBatch",
    "SpanBert",
    "SpanBertCleaner",
    "SpanBertCoref",
    "SpanBertListener",
    "SpanBertMultiLabelTextCategorizer",
    "SpanBertNER",
    "SpanBertQA",
    "SpanBertRelations",
    "SpanBertTextCategorizer",
    "make_spanbert",
    "make_spanbert_coref",
    "make_spanbert_ner",
    "make_spanbert_qa",
    "make_spanbert_rel",
    "make_spanbert_textcat",
    "make_spanbert_textcat_multilabel",
    "clusters_for_displacy",
    "fit_occlusion_estimator",
    "get_relations",
    "predict_with_evidence",
    "relations_for_displacy",
    "__version__",
]
