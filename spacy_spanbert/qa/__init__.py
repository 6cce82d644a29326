"""Extractive question answering: the `spanbert_qa` component
(`component.py`), its windows of word pieces (`windows.py`), its model
(`model.py`) and the SQuAD 2.0 scorer (`scoring.py`)."""

from .component import SpanBertQA, get_answers, make_spanbert_qa, register_extensions
from .model import QABatch, qa_model
from .scoring import (
    SPANS_KEY,
    gold_answer_texts,
    make_qa_scorer,
    normalize_answer,
    score_answers,
    score_qa,
    squad_exact,
    squad_f1,
)

__all__ = [
    "SPANS_KEY",
    "QABatch",
    "SpanBertQA",
    "get_answers",
    "gold_answer_texts",
    "make_qa_scorer",
    "make_spanbert_qa",
    "normalize_answer",
    "qa_model",
    "register_extensions",
    "score_answers",
    "score_qa",
    "squad_exact",
    "squad_f1",
]
