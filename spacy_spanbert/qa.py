"""The `spanbert_qa` component: extractive question answering.

Questions come in `doc._.questions` (`{question_id: question_text}`). The
component owns a Hugging Face cross-encoder over `[CLS] question [SEP]
context [SEP]` windows (long contexts are cut into overlapping windows, never
truncated), scores every candidate answer of at most `max_answer_tokens`
word pieces (whole words) with the span representation (endpoints, attention
pooling, width) and a linear layer, and competes the best one against a
no-answer score from `[CLS]`: a question is answered when best span score -
no-answer score > `threshold` (SQuAD 2.0's rule). The best answer over all
windows is aligned to spaCy tokens by character offsets and written to
`doc.spans[spans_key]`: one span per answered question, `label_` = question
id, `attrs["scores"]` (the margins over no-answer) and `attrs["no_answer"]`
(the ids judged unanswerable). `doc._.answers` gives `{id: Span | None}`.
"""

import re
import string
import warnings
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from .layers.qa_model import InT, OutT, QABatch, get_module

DEFAULT_QA_MODEL_CONFIG = """
[model]
@architectures = "spacy-spanbert.QuestionAnswerer.v1"
name = "bert-base-uncased"
do_lower_case = null
hidden_width = 128
dropout = 0.1
head_lr_scale = 5.0
"""
DEFAULT_QA_MODEL = Config().from_str(DEFAULT_QA_MODEL_CONFIG)["model"]
SPANS_KEY = "spanbert_qa"

# One window of the (question, context) pairs of a batch.
Window = Dict[str, Any]
# Per doc: (question id, answer start char, end char, margin over no-answer);
# start and end are -1 when no candidate was scored.
PredictionsT = List[List[Tuple[str, int, int, float]]]


def register_extensions() -> None:
    """`Doc._.questions` (a dict, default None) and `Doc._.answers` (getter).
    Registered once, never forced over someone else's extension."""
    if not Doc.has_extension("questions"):
        Doc.set_extension("questions", default=None)
    if not Doc.has_extension("answers"):
        Doc.set_extension("answers", getter=get_answers)


def get_answers(doc: Doc) -> Dict[str, Optional[Span]]:
    """`doc._.answers`: every question id of `doc._.questions` with its answer
    span, or None when it has no answer (or was not answered).

    doc (Doc): A doc processed by `spanbert_qa`.
    RETURNS (Dict[str, Optional[Span]]): The answers.
    """
    answers: Dict[str, Optional[Span]] = dict.fromkeys(doc._.questions or {})
    for group in doc.spans.values():
        if "no_answer" in group.attrs:
            for span in group:
                answers[span.label_] = span
            break
    return answers


@Language.factory(
    "spanbert_qa",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_QA_MODEL,
        "spans_key": SPANS_KEY,
        "threshold": 0.0,
        "max_answer_tokens": 30,
        "max_length": 384,
        "stride": 128,
        "batch_windows": 16,
        "scorer": {"@scorers": "spacy-spanbert.qa_scorer.v1"},
    },
    default_score_weights={
        "qa_f1": 1.0,
        "qa_exact": 0.0,
        "qa_has_ans_f1": 0.0,
        "qa_no_ans_acc": 0.0,
    },
)
def make_spanbert_qa(
    nlp: Language,
    name: str,
    model: Model[InT, OutT],
    spans_key: str,
    threshold: float,
    max_answer_tokens: int,
    max_length: int,
    stride: int,
    batch_windows: int,
    scorer: Optional[Callable],
) -> "SpanBertQA":
    """Create a `spanbert_qa` component.

    model (Model[QABatch, Tuple[Floats1d, Floats1d]]): The cross-encoder and
        its span and no-answer scorers.
    spans_key (str): Write answers to `doc.spans[spans_key]`; the gold
        answers are the reference doc's group of that key.
    threshold (float): Answer when best span score - no-answer score exceeds it.
    max_answer_tokens (int): Longest answer, in word pieces.
    max_length (int): Window length in word pieces, question included.
    stride (int): Word pieces shared by consecutive windows of one context.
    batch_windows (int): Windows per forward pass.
    scorer (Optional[Callable]): The scoring method.
    """
    register_extensions()
    return SpanBertQA(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        threshold=threshold,
        max_answer_tokens=max_answer_tokens,
        max_length=max_length,
        stride=stride,
        batch_windows=batch_windows,
        scorer=scorer,
    )


class SpanBertQA(TrainablePipe):
    """Answer the questions of `doc._.questions` with spans of the doc."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[InT, OutT],
        name: str = "spanbert_qa",
        *,
        spans_key: str = SPANS_KEY,
        threshold: float = 0.0,
        max_answer_tokens: int = 30,
        max_length: int = 384,
        stride: int = 128,
        batch_windows: int = 16,
        scorer: Optional[Callable] = None,
    ) -> None:
        """See `make_spanbert_qa`."""
        for setting, value in (
            ("max_answer_tokens", max_answer_tokens),
            ("max_length", max_length),
            ("batch_windows", batch_windows),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"spanbert_qa ({name}): {setting} must be a positive integer, got {value!r}.")
        if isinstance(stride, bool) or not isinstance(stride, int) or not 0 <= stride < max_length - 4:
            raise ValueError(
                f"spanbert_qa ({name}): stride must be an integer in [0, max_length - 4) = "
                f"[0, {max_length - 4}), got {stride!r}. Lower stride or raise max_length."
            )
        register_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "spans_key": spans_key,
            "threshold": float(threshold),
            "max_answer_tokens": max_answer_tokens,
            "max_length": max_length,
            "stride": stride,
            "batch_windows": batch_windows,
        }

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    # -- inputs

    def _module(self):
        module = get_module(self.model)
        if module is None:
            raise ValueError(
                f"spanbert_qa ({self.name}): the component is not initialized, so it has no "
                f"encoder yet. Call nlp.initialize() (or train it with spacy train) first."
            )
        return module

    def _questions(self, doc: Doc) -> List[Tuple[str, str]]:
        """The (id, text) pairs of `doc._.questions`, checked."""
        questions = doc._.questions
        if not questions:
            return []
        if not isinstance(questions, dict):
            raise ValueError(
                f"spanbert_qa ({self.name}): doc._.questions must be a dict "
                f"{{question_id: question_text}}, got {type(questions).__name__}."
            )
        pairs = []
        for qid, text in questions.items():
            if not isinstance(qid, str):
                raise ValueError(
                    f"spanbert_qa ({self.name}): question id {qid!r} is a "
                    f"{type(qid).__name__}; use string ids (they become span labels)."
                )
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f"spanbert_qa ({self.name}): question {qid!r} is empty or not a string "
                    f"({text!r}). Give every question id a non-empty question text."
                )
            pairs.append((qid, text))
        return pairs

    def _windows(self, items: Sequence[Tuple[int, str, str, str]]) -> List[Window]:
        """Cut each (item index, question id, question, context) into windows of
        `max_length` pieces with `stride` shared pieces, and list each window's
        candidate answers (whole words, at most `max_answer_tokens` pieces)."""
        tokenizer = self._module().tokenizer
        max_length, stride = self.cfg["max_length"], self.cfg["stride"]
        questions = [q for _, _, q, _ in items]
        longest = max_length - stride - 4
        q_lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
        for (_, qid, _, _), n in zip(items, q_lengths):
            if n > longest:
                raise ValueError(
                    f"spanbert_qa ({self.name}): question {qid!r} has {n} word pieces, more "
                    f"than the {longest} that fit in a window of max_length={max_length} with "
                    f"stride={stride} (the window also holds 3 special pieces and more than "
                    f"`stride` context pieces). Shorten the question or raise max_length."
                )
        enc = tokenizer(
            questions,
            [c for _, _, _, c in items],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        K = self.cfg["max_answer_tokens"]
        windows = []
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            seq = numpy.array([-1 if s is None else s for s in enc.sequence_ids(w)])
            ctx = numpy.flatnonzero(seq == 1)
            offsets = numpy.asarray(enc["offset_mapping"][w], dtype="int64").reshape(-1, 2)
            window: Window = {
                "item": items[sample][0],
                "qid": items[sample][1],
                "input_ids": enc["input_ids"][w],
                "offsets": offsets,
                "starts": numpy.zeros((0,), dtype="int64"),
                "ends": numpy.zeros((0,), dtype="int64"),
            }
            if "token_type_ids" in enc:
                window["token_type_ids"] = enc["token_type_ids"][w]
            if ctx.size:
                words = numpy.array([-1 if i is None else i for i in enc.word_ids(w)])[ctx]
                is_start = numpy.ones(ctx.size, dtype=bool)
                is_start[1:] = words[1:] != words[:-1]
                is_end = numpy.ones(ctx.size, dtype=bool)
                is_end[:-1] = words[:-1] != words[1:]
                s = ctx[is_start][:, None]
                e = ctx[is_end][None, :]
                keep = (e >= s) & (e - s < K)
                ss, ee = numpy.nonzero(keep)
                window["starts"] = ctx[is_start][ss].astype("int64")
                window["ends"] = ctx[is_end][ee].astype("int64") + 1
            windows.append(window)
        return windows

    def _batch(self, windows: Sequence[Window]) -> QABatch:
        """Pad the windows to the longest and put their candidates on the
        flattened [n_windows * length] positions."""
        module = self._module()
        length = max(len(w["input_ids"]) for w in windows)
        pad = module.tokenizer.pad_token_id or 0
        input_ids = numpy.full((len(windows), length), pad, dtype="int64")
        mask = numpy.zeros((len(windows), length), dtype="int64")
        types = numpy.zeros((len(windows), length), dtype="int64")
        for i, w in enumerate(windows):
            n = len(w["input_ids"])
            input_ids[i, :n] = w["input_ids"]
            mask[i, :n] = 1
            if "token_type_ids" in w:
                types[i, :n] = w["token_type_ids"]
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in windows[0]:
            inputs["token_type_ids"] = types
        starts = numpy.concatenate([w["starts"] + i * length for i, w in enumerate(windows)])
        ends = numpy.concatenate([w["ends"] + i * length for i, w in enumerate(windows)])
        return QABatch(inputs, starts.astype("int64"), ends.astype("int64"))

    def _chunks(self, windows: List[Window]) -> Iterable[List[Window]]:
        size = self.cfg["batch_windows"]
        for i in range(0, len(windows), size):
            yield windows[i : i + size]

    # -- prediction

    def predict(self, docs: Iterable[Doc]) -> PredictionsT:
        """Answer the questions of each doc.

        docs (Iterable[Doc]): The docs.
        RETURNS (List[List[Tuple[str, int, int, float]]]): Per doc, per question:
            the id, the best answer's start and end characters (-1 if none) and
            its margin over the no-answer score.
        """
        docs = list(docs)
        self._module()
        items = [(i, qid, question, doc.text) for i, doc in enumerate(docs) for qid, question in self._questions(doc)]
        best: Dict[Tuple[int, str], Tuple[int, int, float]] = {}
        for i, qid, _, _ in items:
            best[(i, qid)] = (-1, -1, float("-inf"))
        if items:
            for chunk in self._chunks(self._windows(items)):
                span_scores, null_scores = self.model.predict(self._batch(chunk))
                offset = 0
                for w, window in enumerate(chunk):
                    n = window["starts"].size
                    if n == 0:
                        continue
                    margins = span_scores[offset : offset + n] - null_scores[w]
                    offset += n
                    j = int(margins.argmax())
                    key = (window["item"], window["qid"])
                    if margins[j] > best[key][2]:
                        start = int(window["offsets"][window["starts"][j], 0])
                        end = int(window["offsets"][window["ends"][j] - 1, 1])
                        best[key] = (start, end, float(margins[j]))
        predictions: PredictionsT = [[] for _ in docs]
        for (i, qid), (start, end, margin) in best.items():
            predictions[i].append((qid, start, end, margin))
        return predictions

    def set_annotations(self, docs: Iterable[Doc], predictions: PredictionsT) -> None:
        """Write the answers over `threshold` to `doc.spans[spans_key]`.
        Docs without questions are left alone.

        docs (Iterable[Doc]): The docs.
        predictions (PredictionsT): What `predict` returned.
        """
        threshold = self.cfg["threshold"]
        for doc, answers in zip(docs, predictions):
            if not doc._.questions:
                continue
            group = SpanGroup(doc, name=self.spans_key)
            scores: List[float] = []
            no_answer: List[str] = []
            for qid, start, end, margin in answers:
                span = None
                if start >= 0 and margin > threshold:
                    span = doc.char_span(start, end, label=qid, alignment_mode="expand")
                if span is None or len(span) == 0:
                    no_answer.append(qid)
                    continue
                group.append(span)
                scores.append(margin)
            group.attrs["scores"] = numpy.asarray(scores, dtype="float32")
            group.attrs["no_answer"] = no_answer
            doc.spans[self.spans_key] = group

    # -- training

    def _training_items(self, examples: Sequence[Example]):
        items = []
        gold: Dict[Tuple[int, str], List[Tuple[int, int]]] = {}
        for i, eg in enumerate(examples):
            doc = eg.reference if eg.reference._.questions else eg.predicted
            pairs = self._questions(doc)
            if not pairs:
                continue
            group = eg.reference.spans.get(self.spans_key, [])
            for qid, question in pairs:
                gold[(i, qid)] = []
                items.append((i, qid, question, eg.reference.text))
            for span in group:
                if (i, span.label_) in gold:
                    gold[(i, span.label_)].append((span.start_char, span.end_char))
        return items, gold

    def _targets(self, window: Window, answers: List[Tuple[int, int]]) -> List[int]:
        """Indices of the gold answers among [no answer] + the window's
        candidates: a candidate is gold when it covers the same whole words as
        an answer that lies inside the window's context; no answer otherwise."""
        starts, ends, offsets = window["starts"], window["ends"], window["offsets"]
        if not answers or starts.size == 0:
            return [0]
        first = int(offsets[starts.min(), 0])
        last = int(offsets[ends.max() - 1, 1])
        cand_start = offsets[starts, 0]
        cand_end = offsets[ends - 1, 1]
        found = []
        for start, end in answers:
            if start < first or end > last:
                continue
            # the candidate of whole words that starts at or before the answer
            # and ends at or after it, the tightest one
            fits = numpy.flatnonzero((cand_start <= start) & (cand_end >= end))
            if fits.size:
                k = fits[numpy.argmin(cand_end[fits] - cand_start[fits])]
                found.append(int(k) + 1)
        return sorted(set(found)) or [0]

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples: the questions of the reference
        docs (or the predicted ones), gold answers from the reference's
        `doc.spans[spans_key]` (spans labelled with the question id; none for
        an unanswerable question). The loss is the negative log of the
        softmax mass on the gold choices of each window, averaged over
        windows.

        examples (Iterable[Example]): The examples.
        drop (float): Unused; the dropout rate is the model's setting.
        sgd (Optional[Optimizer]): The optimizer.
        losses (Optional[Dict[str, float]]): Losses by component name.
        RETURNS (Dict[str, float]): The updated losses.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "SpanBertQA.update")
        items, gold = self._training_items(examples)
        if not items:
            return losses
        windows = self._windows(items)
        total = 0.0
        for chunk in self._chunks(windows):
            (span_scores, null_scores), backprop = self.model.begin_update(self._batch(chunk))
            d_span = numpy.zeros_like(span_scores)
            d_null = numpy.zeros_like(null_scores)
            offset = 0
            for w, window in enumerate(chunk):
                n = window["starts"].size
                logits = numpy.concatenate([null_scores[w : w + 1], span_scores[offset : offset + n]])
                targets = self._targets(window, gold[(window["item"], window["qid"])])
                probs = numpy.exp(logits - logits.max())
                probs /= probs.sum()
                mass = probs[targets].sum()
                total += -float(numpy.log(max(mass, 1e-30)))
                d = probs.copy()
                d[targets] -= probs[targets] / max(mass, 1e-30)
                d /= len(windows)
                d_null[w] = d[0]
                d_span[offset : offset + n] = d[1:]
                offset += n
            backprop((d_span, d_null))
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += total / len(windows)
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Any):
        raise NotImplementedError(f"spanbert_qa ({self.name}): the loss is computed window by window in update().")

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
    ) -> None:
        """Load the encoder (the model's `name`) and check the settings
        against it; warn once about gold answers longer than
        `max_answer_tokens`, which cannot be found.

        get_examples (Callable[[], Iterable[Example]]): The training examples.
        nlp (Optional[Language]): The pipeline.
        """
        # no labels to infer: an empty sample is fine
        examples = list(get_examples())
        if examples:
            validate_examples(examples, "SpanBertQA.initialize")
        self.model.initialize()
        module = self._module()
        limit = getattr(module.encoder.config, "max_position_embeddings", None)
        if limit is not None and self.cfg["max_length"] > limit:
            raise ValueError(
                f"spanbert_qa ({self.name}): max_length {self.cfg['max_length']} is more than "
                f"the encoder's {limit} positions. Set max_length to at most {limit}."
            )
        texts = []
        for eg in examples:
            if eg.reference._.questions and self.spans_key in eg.reference.spans:
                texts.extend(span.text for span in eg.reference.spans[self.spans_key])
        if texts:
            lengths = [len(ids) for ids in module.tokenizer(texts, add_special_tokens=False)["input_ids"]]
            too_long = sum(n > self.cfg["max_answer_tokens"] for n in lengths)
            if too_long:
                warnings.warn(
                    f"spanbert_qa ({self.name}): {too_long} of {len(texts)} gold answers are "
                    f"longer than max_answer_tokens={self.cfg['max_answer_tokens']} word pieces "
                    f"and cannot be predicted; raise max_answer_tokens to cover them.",
                    stacklevel=2,
                )

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        """Score a batch of examples. `nlp.evaluate` (`spacy train`'s dev
        scores, `spacy evaluate`) makes its predicted docs from the text
        only, so the questions of the reference docs are asked here first
        when the predicted docs have none.

        examples (Iterable[Example]): The examples.
        RETURNS (Dict[str, Any]): The scores.
        """
        examples = list(examples)
        missing = [
            eg
            for eg in examples
            if not eg.predicted._.questions and eg.reference._.questions and eg.predicted.text == eg.reference.text
        ]
        if missing:
            docs = [eg.predicted for eg in missing]
            for doc, eg in zip(docs, missing):
                doc._.questions = dict(eg.reference._.questions)
            self.set_annotations(docs, self.predict(docs))
        return super().score(examples, **kwargs)


# -- scoring (the official SQuAD 2.0 evaluation's normalisation)

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
