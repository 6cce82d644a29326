"""The `spanbert_ner` component: span-classification NER on top of `spanbert`.

Every candidate span of the upstream `spanbert` encoder gets a softmax over
the labels plus "no entity". The spans over `threshold` go to
`doc.spans[spans_key]` (nested or overlapping, with `attrs["scores"]`); a
greedy non-overlapping decode of them goes to `doc.ents`.
"""

import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d, Ragged

from .data_classes import doc_rows
from .errors import Errors, Warnings, check_key
from .heads import LabelledSpanBertHead
from .learn_rate import LEARN_RATE_SCALE, check_learn_rate_scale

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


class SpanBertNER(LabelledSpanBertHead):
    """Classify the candidate spans of `spanbert` into entity labels."""

    invalid_label_error = Errors.E031
    late_label_error = Errors.E032

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
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    @property
    def is_initialized(self) -> bool:
        output = self.model.get_ref("scorer").get_ref("output")
        return output.has_param("W") is True

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
        labels = self.labels
        for doc, (doc_slice, doc_offsets) in zip(docs, doc_rows(ops, indices)):
            doc_probs = probs[doc_slice]
            rows, cols = numpy.nonzero(doc_probs >= threshold)
            scores = doc_probs[rows, cols].astype("float32")
            spans = [
                Span(doc, start, end, label=labels[c])
                for (start, end), c in zip(doc_offsets[rows].tolist(), cols.tolist())
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
        self._add_labels(get_examples, labels)
        if not self.labels:
            raise ValueError(Errors.E033.format(name=self.name, key=self.spans_key))
        self.model.set_dim("nO", len(self.labels) + 1)
        self.model.initialize()
        if nlp is not None:
            self._check_suggester(nlp, get_examples)

    def _gold_labels(self, example: Example) -> Iterable[str]:
        """RETURNS (Iterable[str]): The labels of the reference's group
        `spans_key`, or of its `doc.ents` without one."""
        reference = example.reference
        spans = reference.spans[self.spans_key] if self.spans_key in reference.spans else reference.ents
        return (span.label_ for span in spans)

    def _check_suggester(self, nlp: Language, get_examples: Callable) -> None:
        """Warn once about gold spans that are never candidates."""
        up_name, sampled = self._candidates(nlp, get_examples)
        missed = total = longest = 0
        for eg, candidates in sampled:
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
