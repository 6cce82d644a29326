"""The `spanbert_ner` component: span-classification NER on top of `spanbert`.

Every candidate span of the upstream `spanbert` encoder gets a softmax over
the labels plus "no entity". The spans over `threshold` go to
`doc.spans[spans_key]` (nested or overlapping, with `attrs["scores"]`); a
greedy non-overlapping decode of them goes to `doc.ents`.
"""

import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d, Ragged

from .data_classes import doc_rows
from .errors import Errors, Warnings, check_key
from .layers.listener import SpanBertListener
from .learn_rate import LEARN_RATE_SCALE, ScaledLearnRateMixin, check_learn_rate_scale
from .suggesters import PresetSpansSuggester

DEFAULT_NER_MODEL_CONFIG = """
[model]
@architectures = "spacy-spanbert.SpanClassifier.v1"
hidden_width = 64
dropout = 0.1
nO = null

[model.tok2vec]
@architectures = "spacy-spanbert.SpanBertListener.v1"
upstream = "*"
"""
DEFAULT_NER_MODEL = Config().from_str(DEFAULT_NER_MODEL_CONFIG)["model"]

PredictionsT = Tuple[Ragged, Floats2d]


@registry.scorers("spacy-spanbert.ner_scorer.v1")
def make_ner_scorer() -> Callable:
    """RETURNS (Callable): `score_spanbert_ner`."""
    return score_spanbert_ner


def score_spanbert_ner(
    examples: Iterable[Example], *, spans_key: str = "spanbert_ner", **kwargs: Any
) -> Dict[str, Any]:
    """Score the flat entities (`ents_p/r/f`, `ents_per_type`) and the nested
    span group (`spans_{spans_key}_p/r/f`, `..._per_type`).

    A reference doc without a `spans_key` group is scored against its
    `doc.ents`, so flat data also gives a span-group score.

    examples (Iterable[Example]): The examples to score.
    spans_key (str): Key of the predicted span group.
    RETURNS (Dict[str, Any]): The scores.
    """
    examples = list(examples)

    def getter(doc: Doc, attr: str) -> Iterable[Span]:
        if spans_key in doc.spans:
            return doc.spans[spans_key]
        return doc.ents

    results = get_ner_prf(examples)
    results.update(
        Scorer.score_spans(
            examples,
            f"spans_{spans_key}",
            getter=getter,
            has_annotation=None,
            labeled=True,
            allow_overlap=True,
        )
    )
    return results


@Language.factory(
    "spanbert_ner",
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "model": DEFAULT_NER_MODEL,
        "spans_key": "spanbert_ner",
        "labels": None,
        "threshold": 0.5,
        "negative_weight": 0.3,
        "overwrite": False,
        "scorer": {"@scorers": "spacy-spanbert.ner_scorer.v1"},
        "learn_rate_scale": LEARN_RATE_SCALE,
    },
    default_score_weights={
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
        "spans_spanbert_ner_f": 0.0,
        "spans_spanbert_ner_p": 0.0,
        "spans_spanbert_ner_r": 0.0,
    },
)
def make_spanbert_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], PredictionsT],
    spans_key: str,
    labels: Optional[List[str]],
    threshold: float,
    negative_weight: float,
    overwrite: bool,
    scorer: Optional[Callable],
    learn_rate_scale: float,
) -> "SpanBertNER":
    """Create a `spanbert_ner` head.

    model (Model[List[Doc], Tuple[Ragged, Floats2d]]): Scores the candidate
        spans; logits over the labels then "no entity".
    spans_key (str): Write all spans over threshold to `doc.spans[spans_key]`,
        and train from the reference `doc.spans[spans_key]` if present (else
        from `doc.ents`).
    labels (Optional[List[str]]): The labels; None to infer them at initialize.
    threshold (float): Minimum probability of a (span, label) to be kept.
    negative_weight (float): Weight of the "no entity" class in the loss.
    overwrite (bool): Replace existing `doc.ents`; if false, only fill gaps.
    scorer (Optional[Callable]): The scoring method.
    learn_rate_scale (float): Train this component's own weights at this
        multiple of the optimizer's learning rate (the transformer keeps the
        optimizer's rate).
    """
    return SpanBertNER(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        labels=labels,
        threshold=threshold,
        negative_weight=negative_weight,
        overwrite=overwrite,
        scorer=scorer,
        learn_rate_scale=learn_rate_scale,
    )


class SpanBertNER(ScaledLearnRateMixin, TrainablePipe):
    """Classify the candidate spans of `spanbert` into entity labels."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], PredictionsT],
        name: str = "spanbert_ner",
        *,
        spans_key: str = "spanbert_ner",
        labels: Optional[List[str]] = None,
        threshold: float = 0.5,
        negative_weight: float = 0.3,
        overwrite: bool = False,
        scorer: Optional[Callable] = score_spanbert_ner,
        learn_rate_scale: float = LEARN_RATE_SCALE,
    ) -> None:
        """
        vocab (Vocab): The shared vocabulary.
        model (Model[List[Doc], Tuple[Ragged, Floats2d]]): The span classifier.
        name (str): The component instance name.
        spans_key (str): Key of the span group to write (and to train from).
        labels (Optional[List[str]]): Labels to start with.
        threshold (float): Minimum probability of a (span, label) to be kept.
        negative_weight (float): Weight of the "no entity" class in the loss.
        overwrite (bool): Replace existing `doc.ents` instead of filling gaps.
        scorer (Optional[Callable]): The scoring method.
        learn_rate_scale (float): Multiplier of the optimizer's learning rate
            for this component's weights.
        """
        check_key(name, "spans_key", spans_key)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(Errors.E006.format(name=name, value=threshold))
        if negative_weight < 0.0:
            raise ValueError(Errors.E007.format(name=name, value=negative_weight))
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "threshold": float(threshold),
            "negative_weight": float(negative_weight),
            "overwrite": bool(overwrite),
            "learn_rate_scale": check_learn_rate_scale(name, learn_rate_scale),
        }
        for label in labels or []:
            self.add_label(label)

    @property
    def labels(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str]): The labels, in the order of the model's columns."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        """RETURNS (List[str]): The labels, for `init labels`."""
        return list(self.labels)

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    @property
    def is_initialized(self) -> bool:
        output = self.model.get_ref("scorer").get_ref("output")
        return output.has_param("W") is True

    def add_label(self, label: str) -> int:
        """Add a label before the component is initialized.

        label (str): The label.
        RETURNS (int): 1 if the label was added, 0 if it was already there.
        """
        if not isinstance(label, str) or not label:
            raise ValueError(Errors.E031.format(name=self.name, label=label))
        if label in self.labels:
            return 0
        if self.is_initialized:
            raise ValueError(Errors.E032.format(name=self.name, label=label, n_labels=len(self.labels)))
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    # -- prediction ------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> PredictionsT:
        """Score the candidate spans of a batch of docs, without changing them.

        docs (Iterable[Doc]): The documents.
        RETURNS (Tuple[Ragged, Floats2d]): The candidate offsets and their
            probabilities, one column per label then "no entity".
        """
        docs = list(docs)
        self._check_initialized()
        if not docs:
            ops = self.model.ops
            return Ragged(ops.alloc2i(0, 2), ops.alloc1i(0)), ops.alloc2f(0, len(self.labels) + 1)
        indices, scores = self.model.predict(docs)
        return indices, self.model.ops.softmax(scores, axis=-1)

    def set_annotations(self, docs: Iterable[Doc], predictions: PredictionsT) -> None:
        """Write `doc.spans[spans_key]` (every span and label over threshold,
        with `attrs["scores"]`) and fill `doc.ents` with a greedy
        non-overlapping decode by score.

        docs (Iterable[Doc]): The documents to modify.
        predictions (Tuple[Ragged, Floats2d]): The output of `predict`.
        """
        indices, probs = predictions
        ops = self.model.ops
        probs = ops.to_numpy(probs)[:, : len(self.labels)]
        threshold = self.cfg["threshold"]
        key = self.spans_key
        for doc, (doc_slice, doc_offsets) in zip(docs, doc_rows(ops, indices)):
            doc_probs = probs[doc_slice]
            rows, cols = numpy.nonzero(doc_probs >= threshold)
            scores = doc_probs[rows, cols].astype("float32")
            spans = [
                Span(doc, int(doc_offsets[r, 0]), int(doc_offsets[r, 1]), label=self.labels[c])
                for r, c in zip(rows, cols)
            ]
            doc.spans[key] = SpanGroup(doc, name=key, attrs={"scores": numpy.ascontiguousarray(scores)}, spans=spans)
            self._set_ents(doc, spans, scores)

    def _set_ents(self, doc: Doc, spans: List[Span], scores) -> None:
        if not spans:  # most docs, for a trained head: nothing to decode
            # Still assigned: tokens outside the kept entities become "O".
            doc.ents = [] if self.cfg["overwrite"] else list(doc.ents)
            return
        kept = [] if self.cfg["overwrite"] else list(doc.ents)
        taken = bytearray(len(doc))
        for ent in kept:
            taken[ent.start : ent.end] = b"\x01" * len(ent)
        # Scores within float noise of each other (batching changes the last
        # digits) are ties, and ties go to the earlier span: the decode must
        # not depend on the batch a doc was processed in.
        rounded = numpy.round(numpy.asarray(scores, dtype="float64"), 4)
        starts = numpy.fromiter((span.start for span in spans), dtype="int64", count=len(spans))
        ends = numpy.fromiter((span.end for span in spans), dtype="int64", count=len(spans))
        # Stable: by score (descending), then start, then end.
        order = numpy.lexsort((ends, starts, -rounded))
        for i, start, end in zip(order.tolist(), starts[order].tolist(), ends[order].tolist()):
            if not any(taken[start:end]):
                taken[start:end] = b"\x01" * (end - start)
                kept.append(spans[i])
        doc.ents = sorted(kept, key=lambda s: (s.start, s.end))

    # -- training --------------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples; the gradient flows back into the
        upstream `spanbert` (and the transformer) through the listener.

        examples (Iterable[Example]): A batch of examples.
        drop (float): The dropout rate.
        sgd (Optional[Optimizer]): An optimizer.
        losses (Optional[Dict[str, float]]): Updated with this component's loss.
        RETURNS (Dict[str, float]): The updated losses dictionary.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, "SpanBertNER.update")
        examples = list(examples)
        docs = [eg.predicted for eg in examples]
        if not any(len(doc) for doc in docs):
            return losses
        self._check_initialized()
        set_dropout_rate(self.model, drop)
        (indices, scores), backprop = self.model.begin_update(docs)
        loss, d_scores = self.get_loss(examples, (indices, scores))
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], predictions: PredictionsT) -> Tuple[float, Floats2d]:
        """Weighted softmax cross-entropy over labels + "no entity", summed
        over the candidates; the gold class of a candidate is the label of a
        gold span with the same offsets, else "no entity" (weighted by
        `negative_weight`).

        examples (Iterable[Example]): The batch, aligned with `predictions`.
        predictions (Tuple[Ragged, Floats2d]): Candidate offsets and logits.
        RETURNS (Tuple[float, Floats2d]): The loss and the gradient of the logits.
        """
        indices, scores = predictions
        ops = self.model.ops
        n_rows, n_classes = scores.shape
        if n_rows == 0:
            return 0.0, ops.alloc2f(n_rows, n_classes)
        negative = len(self.labels)
        label_ids = {label: i for i, label in enumerate(self.labels)}
        target = numpy.full((n_rows,), negative, dtype="i")
        for eg, (rows, offsets) in zip(examples, doc_rows(ops, indices)):
            gold: Dict[Tuple[int, int], int] = {}
            for span in self._gold_spans(eg):
                if span.label_ in label_ids:
                    gold.setdefault((span.start, span.end), label_ids[span.label_])
            target[rows] = [gold.get((s, e), negative) for s, e in offsets.tolist()]
        weights = numpy.ones((n_classes,), dtype="f")
        weights[negative] = self.cfg["negative_weight"]
        row_weights = weights[target]
        probs = ops.to_numpy(ops.softmax(scores, axis=-1))
        truth = numpy.zeros((n_rows, n_classes), dtype="f")
        truth[numpy.arange(n_rows), target] = 1.0
        # Summed over the candidates, not averaged, as spaCy's own span and
        # text classifiers do: averaging over the ~8 candidates per token
        # would divide the gradient reaching spanbert and the transformer by
        # the number of candidates in the batch (thousands), and a sibling
        # head sharing the encoder (textcat, whose loss is not averaged)
        # would drown it.
        d_scores = (probs - truth) * row_weights[:, None]
        gold_probs = numpy.clip(probs[numpy.arange(n_rows), target], 1e-12, 1.0)
        loss = float((-numpy.log(gold_probs) * row_weights).sum())
        return loss, ops.asarray2f(d_scores)

    def _gold_spans(self, example: Example) -> List[Span]:
        """The gold spans of an example, in the predicted doc's tokens."""
        reference = example.reference
        if self.spans_key in reference.spans:
            gold = list(reference.spans[self.spans_key])
            return example.get_aligned_spans_y2x(gold, allow_overlap=True)
        return example.get_aligned_spans_y2x(list(reference.ents))

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Add the labels (given, or inferred from the gold spans), size and
        initialize the model, and warn about gold entities the upstream
        suggester cannot produce.

        get_examples (Callable[[], Iterable[Example]]): Returns sample examples.
        nlp (Optional[Language]): The pipeline, to find the upstream `spanbert`.
        labels (Optional[List[str]]): The labels; None to keep those of the
            config or infer them from the examples.
        """
        validate_get_examples(get_examples, "SpanBertNER.initialize")
        if nlp is not None:
            self._check_upstream(nlp)
        if labels is not None:
            for label in labels:
                self.add_label(label)
        elif not self.labels:
            found = set()
            for eg in get_examples():
                found.update(span.label_ for span in self._reference_spans(eg))
            for label in sorted(found):
                self.add_label(label)
        if not self.labels:
            raise ValueError(Errors.E033.format(name=self.name, key=self.spans_key))
        self.model.set_dim("nO", len(self.labels) + 1)
        self.model.initialize()
        if nlp is not None:
            self._check_suggester(nlp, get_examples)

    def _reference_spans(self, example: Example) -> Iterable[Span]:
        reference = example.reference
        if self.spans_key in reference.spans:
            return reference.spans[self.spans_key]
        return reference.ents

    def _find_encoder(self, nlp: Language) -> Optional[Tuple[str, Any]]:
        """RETURNS (Optional[Tuple[str, Any]]): The name and component of the
        `spanbert` encoder this head listens to, or None."""
        for name, comp in nlp.pipeline:
            if self.name in (getattr(comp, "listening_components", None) or []) and hasattr(comp, "suggester"):
                return name, comp
        return None

    def _check_upstream(self, nlp: Language) -> None:
        """Raise if the head has a SpanBertListener that no `spanbert`
        component before it feeds (after `replace_listeners` it has none)."""
        listeners = [n for n in self.model.walk() if isinstance(n, SpanBertListener)]
        if not listeners or self._find_encoder(nlp) is not None:
            return
        raise ValueError(
            Errors.E030.format(name=self.name, upstream=listeners[0].upstream_name, pipeline=nlp.pipe_names)
        )

    def _check_suggester(self, nlp: Language, get_examples: Callable) -> None:
        """Warn once about gold spans that are never candidates."""
        upstream = self._find_encoder(nlp)
        if upstream is None:
            return
        up_name, encoder = upstream
        suggester = encoder.suggester
        if getattr(suggester, "requires", None) or isinstance(suggester, PresetSpansSuggester):
            return  # its candidates depend on annotations set at run time
        examples = [eg for eg in islice(get_examples(), 10000) if len(eg.predicted)]
        if not examples:
            return
        found = suggester([eg.predicted for eg in examples], ops=self.model.ops)
        missed = total = longest = 0
        for eg, (_, offsets) in zip(examples, doc_rows(self.model.ops, found)):
            candidates = set(map(tuple, offsets.tolist()))
            for span in self._gold_spans(eg):
                total += 1
                if (span.start, span.end) not in candidates:
                    missed += 1
                    longest = max(longest, len(span))
        if missed:
            warnings.warn(
                Warnings.W001.format(name=self.name, missed=missed, total=total, encoder=up_name, longest=longest),
                UserWarning,
                stacklevel=2,
            )

    def _check_initialized(self) -> None:
        if not self.is_initialized:
            raise ValueError(Errors.E009.format(name=self.name))
