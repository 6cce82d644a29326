"""The squad format: SQuAD 1.1 / 2.0 JSON, one Doc per paragraph ->
`doc._.questions` and the gold answers in `doc.spans[KEY]`."""

from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup

from ...errors import Errors
from ..text_input import read_json
from .common import QA_SPANS_KEY, ConversionError, NlpOrVocab, PathLike, check_limit, get_nlp


class SquadStats(NamedTuple):
    """What `read_squad` found: questions, the unanswerable ones among them,
    gold answers, and the answers whose characters did not fall on spaCy
    token boundaries (expanded to whole tokens)."""

    questions: int
    unanswerable: int
    answers: int
    expanded: int


def read_squad(
    path: PathLike,
    nlp_or_vocab: NlpOrVocab = "en",
    *,
    spans_key: str = QA_SPANS_KEY,
    limit: Optional[int] = None,
    encoding: str = "utf-8",
) -> Tuple[List[Doc], SquadStats]:
    """Read SQuAD 1.1 or 2.0 JSON (`data` -> articles -> `paragraphs` ->
    `context` + `qas`): one Doc per paragraph, the context tokenised with the
    pipeline's tokenizer. `doc._.questions` is `{id: question}`; the gold
    answers are `doc.spans[spans_key]`, one span per answer labelled with the
    question id (aligned to tokens with `char_span(..., alignment_mode=
    "expand")`), the original answer texts in the group's `attrs["texts"]`.
    A question marked `is_impossible` (or with no answers) gets no span.
    Save with `DocBin(store_user_data=True)` to keep the questions.

    path (PathLike): The `.json` file, or a `.gz` of it.
    nlp_or_vocab (NlpOrVocab): A Language, a Vocab or a language code.
    spans_key (str): The span group of the gold answers.
    limit (Optional[int]): Keep only the first `limit` paragraphs.
    encoding (str): The file's encoding.
    RETURNS (Tuple[List[Doc], SquadStats]): The docs and what was found.
    """
    check_limit("read_squad", limit)
    nlp = get_nlp(nlp_or_vocab)
    if not Doc.has_extension("questions"):
        Doc.set_extension("questions", default=None)
    data = read_json(path, encoding=encoding)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ConversionError(Errors.E150.format(path=path))
    docs: List[Doc] = []
    totals = SquadStats(0, 0, 0, 0)
    seen: Set[str] = set()
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            if limit is not None and len(docs) >= limit:
                break
            doc, stats = _paragraph_doc(paragraph, nlp, f"{path}: article {a}, paragraph {p}", seen, spans_key)
            docs.append(doc)
            totals = SquadStats(*(total + n for total, n in zip(totals, stats)))
    return docs, totals


def _paragraph_doc(
    paragraph: Dict[str, Any], nlp: Language, where: str, seen: Set[str], spans_key: str
) -> Tuple[Doc, SquadStats]:
    """The Doc of a paragraph, its questions and gold answers set; `seen`
    holds the question ids so far, and gets this paragraph's."""
    context = paragraph.get("context")
    if not isinstance(context, str):
        raise ConversionError(Errors.E151.format(where=where))
    doc = nlp.make_doc(context)
    questions: Dict[str, str] = {}
    spans: List[Span] = []
    texts: List[str] = []
    n_unanswerable = n_expanded = 0
    for qa in paragraph.get("qas", []):
        qid = qa.get("id")
        if not isinstance(qid, str) or not qid:
            raise ConversionError(Errors.E152.format(where=where))
        if qid in seen:
            raise ConversionError(Errors.E153.format(where=where, qid=qid))
        seen.add(qid)
        question = qa.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ConversionError(Errors.E154.format(where=where, qid=qid))
        questions[qid] = question
        answers = [] if qa.get("is_impossible") else qa.get("answers", [])
        n_unanswerable += not answers
        for answer in answers:
            span, expanded = _answer_span(doc, answer, where, qid)
            spans.append(span)
            texts.append(answer["text"])
            n_expanded += expanded
    doc._.questions = questions
    group = SpanGroup(doc, name=spans_key, spans=spans)
    group.attrs["texts"] = texts
    doc.spans[spans_key] = group
    return doc, SquadStats(len(questions), n_unanswerable, len(spans), n_expanded)


def _answer_span(doc: Doc, answer: Any, where: str, qid: str) -> Tuple[Span, bool]:
    """The span of a gold answer, labelled with the question id, and whether
    it had to be expanded to token boundaries."""
    text, start = (answer.get("text"), answer.get("answer_start")) if isinstance(answer, dict) else (None, None)
    if not isinstance(text, str) or not text or isinstance(start, bool) or not isinstance(start, int):
        raise ConversionError(Errors.E155.format(where=where, qid=qid, answer=answer))
    end = start + len(text)
    if doc.text[start:end] != text:
        raise ConversionError(
            Errors.E156.format(where=where, qid=qid, text=text, start=start, found=doc.text[start:end])
        )
    span = doc.char_span(start, end, label=qid)
    expanded = span is None
    if expanded:
        span = doc.char_span(start, end, label=qid, alignment_mode="expand")
    if span is None or len(span) == 0:
        raise ConversionError(Errors.E157.format(where=where, qid=qid, text=text, start=start))
    return span, expanded
