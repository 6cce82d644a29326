"""Scoring extractive QA: the official SQuAD 2.0 evaluation's normalisation,
exact match and token F1, and the registered `spacy-spanbert.qa_scorer.v1`,
which adds exact-span precision, recall and F."""

import re
import string
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

# The span group `spanbert_qa` writes its answers to, by default.
SPANS_KEY = "spanbert_qa"

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, remove punctuation, the articles a/an/the and extra
    whitespace, as the official SQuAD 2.0 evaluation does."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(gold: str, predicted: str) -> float:
    """RETURNS (float): 1.0 if the normalised texts are equal, else 0.0."""
    return float(normalize_answer(gold) == normalize_answer(predicted))


def squad_f1(gold: str, predicted: str) -> float:
    """RETURNS (float): Token F1 of the normalised texts; an empty text on
    either side scores 1.0 only when both are empty."""
    gold_tokens = normalize_answer(gold).split()
    pred_tokens = normalize_answer(predicted).split()
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    common = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def score_answers(golds: Sequence[Sequence[str]], predictions: Sequence[str]) -> Dict[str, Optional[float]]:
    """SQuAD 2.0 scores of answer texts.

    golds (Sequence[Sequence[str]]): Per question its gold answer texts;
        empty for an unanswerable question.
    predictions (Sequence[str]): Per question the predicted text, "" for no answer.
    RETURNS (Dict[str, Optional[float]]): qa_exact, qa_f1 (all questions),
        qa_has_ans_exact, qa_has_ans_f1 (answerable ones), qa_no_ans_acc
        (share of unanswerable ones left unanswered); None without questions.
    """
    exact, f1, has_exact, has_f1, no_ans = [], [], [], [], []
    for answers, predicted in zip(golds, predictions):
        texts = [a for a in answers if normalize_answer(a)] or [""]
        e = max(squad_exact(a, predicted) for a in texts)
        f = max(squad_f1(a, predicted) for a in texts)
        exact.append(e)
        f1.append(f)
        if answers:
            has_exact.append(e)
            has_f1.append(f)
        else:
            no_ans.append(e)

    def mean(values: List[float]) -> Optional[float]:
        return sum(values) / len(values) if values else None

    return {
        "qa_exact": mean(exact),
        "qa_f1": mean(f1),
        "qa_has_ans_exact": mean(has_exact),
        "qa_has_ans_f1": mean(has_f1),
        "qa_no_ans_acc": mean(no_ans),
    }


def gold_answer_texts(doc: Doc, spans_key: str) -> Dict[str, List[str]]:
    """The gold answer texts of each question of `doc._.questions`: the
    group's `attrs["texts"]` (the original answer strings, which the
    converter keeps) where present, else the spans' texts."""
    answers: Dict[str, List[str]] = {qid: [] for qid in (doc._.questions or {})}
    if spans_key in doc.spans:
        group = doc.spans[spans_key]
        texts = group.attrs.get("texts")
        for i, span in enumerate(group):
            if span.label_ in answers:
                answers[span.label_].append(texts[i] if texts is not None else span.text)
    return answers


def score_qa(examples: Iterable[Example], *, spans_key: str = SPANS_KEY, **kwargs: Any) -> Dict[str, Any]:
    """Score extractive QA with the SQuAD 2.0 measures, plus exact-span
    precision, recall and F (`spans_{spans_key}_p/r/f`: a predicted answer is
    right when it is one of the question's gold spans), the keys that
    `spacy evaluate --spans-key {spans_key}` prints.

    examples (Iterable[Example]): Predicted docs answered by `spanbert_qa`,
        reference docs with the questions and the gold span group.
    spans_key (str): The span group of the answers.
    RETURNS (Dict[str, Any]): The scores; None where nothing was counted.
    """
    golds: List[List[str]] = []
    predictions: List[str] = []
    n_predicted = n_gold = n_right = 0
    for eg in examples:
        ref = eg.reference
        if not ref._.questions:
            continue
        gold_texts = gold_answer_texts(ref, spans_key)
        gold_spans: Dict[str, set] = {qid: set() for qid in gold_texts}
        for span in ref.spans.get(spans_key, []):
            if span.label_ in gold_spans:
                gold_spans[span.label_].add((span.start_char, span.end_char))
        predicted = {span.label_: span for span in eg.predicted.spans.get(spans_key, []) if span.label_ in gold_texts}
        for qid, texts in gold_texts.items():
            golds.append(texts)
            span = predicted.get(qid)
            predictions.append(span.text if span is not None else "")
            n_gold += bool(gold_spans[qid])
            if span is not None:
                n_predicted += 1
                n_right += (span.start_char, span.end_char) in gold_spans[qid]
    scores: Dict[str, Any] = score_answers(golds, predictions)
    p = n_right / n_predicted if n_predicted else None
    r = n_right / n_gold if n_gold else None
    f = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
    scores.update({f"spans_{spans_key}_p": p, f"spans_{spans_key}_r": r, f"spans_{spans_key}_f": f})
    return scores


@registry.scorers("spacy-spanbert.qa_scorer.v1")
def make_qa_scorer() -> Callable:
    """RETURNS (Callable): `score_qa`."""
    return score_qa
