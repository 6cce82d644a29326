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

import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from ..errors import Errors, Warnings, check_positive
from ..learn_rate import LEARN_RATE_SCALE, ScaledLearnRateMixin, check_learn_rate_scale
from .model import InT, OutT, QABatch, get_encoder
from .scoring import SPANS_KEY
from .windows import Item, Window, chunks, make_batch, make_windows, window_targets

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

# Per doc: (question id, answer start char, end char, margin over no-answer);
# start and end are -1 when no candidate was scored.
PredictionsT = List[List[Tuple[str, int, int, float]]]
# Gold answers (start, end characters) by (item index, question id).
GoldT = Dict[Tuple[int, str], List[Tuple[int, int]]]


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
        "learn_rate_scale": LEARN_RATE_SCALE,
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
    learn_rate_scale: float,
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
    learn_rate_scale (float): Train this component's weights (its encoder and
        heads) at this multiple of the optimizer's learning rate; the model's
        `head_lr_scale` multiplies it again for the heads.
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
        learn_rate_scale=learn_rate_scale,
    )


class SpanBertQA(ScaledLearnRateMixin, TrainablePipe):
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
        learn_rate_scale: float = LEARN_RATE_SCALE,
    ) -> None:
        """See `make_spanbert_qa`."""
        where = f"spanbert_qa ({name})"
        check_positive(where, "max_answer_tokens", max_answer_tokens)
        check_positive(where, "max_length", max_length)
        check_positive(where, "batch_windows", batch_windows)
        if isinstance(stride, bool) or not isinstance(stride, int) or not 0 <= stride < max_length - 4:
            raise ValueError(Errors.E400.format(name=name, limit=max_length - 4, value=stride))
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
            "learn_rate_scale": check_learn_rate_scale(name, learn_rate_scale),
        }

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    # -- inputs

    def _tokenizer(self) -> Any:
        """RETURNS (Any): The encoder's tokenizer, or an error before initialize."""
        encoder = get_encoder(self.model)
        if not encoder.is_built:
            raise ValueError(Errors.E401.format(name=self.name))
        return encoder.tokenizer

    def _questions(self, doc: Doc) -> List[Tuple[str, str]]:
        """The (id, text) pairs of `doc._.questions`, checked."""
        questions = doc._.questions
        if not questions:
            return []
        if not isinstance(questions, dict):
            raise ValueError(Errors.E402.format(name=self.name, type=type(questions).__name__))
        for qid, text in questions.items():
            if not isinstance(qid, str):
                raise ValueError(Errors.E403.format(name=self.name, qid=qid, type=type(qid).__name__))
            if not isinstance(text, str) or not text.strip():
                raise ValueError(Errors.E404.format(name=self.name, qid=qid, text=text))
        return list(questions.items())

    def _windows(self, items: Sequence[Item]) -> List[Window]:
        """The windows of (item index, question id, question, context) items."""
        return make_windows(
            self._tokenizer(),
            items,
            max_length=self.cfg["max_length"],
            stride=self.cfg["stride"],
            max_answer_tokens=self.cfg["max_answer_tokens"],
            name=self.name,
        )

    def _batch(self, windows: Sequence[Window]) -> QABatch:
        return make_batch(windows, self._tokenizer().pad_token_id or 0)

    # -- prediction

    def predict(self, docs: Iterable[Doc]) -> PredictionsT:
        """Answer the questions of each doc.

        docs (Iterable[Doc]): The docs.
        RETURNS (List[List[Tuple[str, int, int, float]]]): Per doc, per question:
            the id, the best answer's start and end characters (-1 if none) and
            its margin over the no-answer score.
        """
        docs = list(docs)
        self._tokenizer()
        items = [(i, qid, question, doc.text) for i, doc in enumerate(docs) for qid, question in self._questions(doc)]
        best: Dict[Tuple[int, str], Tuple[int, int, float]] = {}
        for i, qid, _, _ in items:
            best[(i, qid)] = (-1, -1, float("-inf"))
        if items:
            for chunk in chunks(self._windows(items), self.cfg["batch_windows"]):
                span_scores, null_scores = self.model.predict(self._batch(chunk))
                _keep_best(best, chunk, span_scores, null_scores)
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

    def _training_items(self, examples: Sequence[Example]) -> Tuple[List[Item], GoldT]:
        """The questions of the examples as items, and their gold answers."""
        items = []
        gold: GoldT = {}
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
        for chunk in chunks(windows, self.cfg["batch_windows"]):
            scores, backprop = self.model.begin_update(self._batch(chunk))
            loss, d_scores = _choice_loss(chunk, scores, gold, len(windows))
            backprop(d_scores)
            total += loss
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += total / len(windows)
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Any):
        raise NotImplementedError(Errors.E406.format(name=self.name))

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
        limit = get_encoder(self.model).max_positions
        if limit is not None and self.cfg["max_length"] > limit:
            raise ValueError(Errors.E407.format(name=self.name, max_length=self.cfg["max_length"], limit=limit))
        texts = []
        for eg in examples:
            if eg.reference._.questions and self.spans_key in eg.reference.spans:
                texts.extend(span.text for span in eg.reference.spans[self.spans_key])
        if texts:
            lengths = [len(ids) for ids in self._tokenizer()(texts, add_special_tokens=False)["input_ids"]]
            too_long = sum(n > self.cfg["max_answer_tokens"] for n in lengths)
            if too_long:
                warnings.warn(
                    Warnings.W400.format(
                        name=self.name, n=too_long, total=len(texts), limit=self.cfg["max_answer_tokens"]
                    ),
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


def _keep_best(
    best: Dict[Tuple[int, str], Tuple[int, int, float]],
    chunk: List[Window],
    span_scores: numpy.ndarray,
    null_scores: numpy.ndarray,
) -> None:
    """For each window of `chunk`, its best candidate's characters and margin
    over no-answer go to `best[(item, qid)]` when they beat what earlier
    windows of the same question gave."""
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


def _choice_loss(chunk: List[Window], scores: OutT, gold: GoldT, n_windows: int) -> Tuple[float, OutT]:
    """The loss of a chunk of windows and its gradient: per window, the
    negative log of the softmax mass on its gold choices among [no answer] +
    its candidates, divided by `n_windows` (all windows of the batch) in the
    gradient.

    RETURNS (Tuple[float, Tuple[Floats1d, Floats1d]]): The summed loss, and
        the gradients of the span and no-answer scores.
    """
    span_scores, null_scores = scores
    d_span = numpy.zeros_like(span_scores)
    d_null = numpy.zeros_like(null_scores)
    total = 0.0
    offset = 0
    for w, window in enumerate(chunk):
        n = window["starts"].size
        logits = numpy.concatenate([null_scores[w : w + 1], span_scores[offset : offset + n]])
        targets = window_targets(window, gold[(window["item"], window["qid"])])
        probs = numpy.exp(logits - logits.max())
        probs /= probs.sum()
        mass = probs[targets].sum()
        total += -float(numpy.log(max(mass, 1e-30)))
        d = probs.copy()
        d[targets] -= probs[targets] / max(mass, 1e-30)
        d /= n_windows
        d_null[w] = d[0]
        d_span[offset : offset + n] = d[1:]
        offset += n
    return total, (d_span, d_null)
