"""The `spanbert_rel` component: relations between entity pairs, on top of
`spanbert` and whatever sets the entities (`spanbert_ner`, spaCy's `ner`, an
`entity_ruler`, or a span group).

Every ordered pair of entities at most `max_distance` tokens apart (and, with
`within_sentence`, in one sentence) gets an independent sigmoid per relation
label; the `max_pairs` closest pairs of a doc are scored, so the cost per doc
is bounded by `max_pairs` pairs x the spans between their arguments (at most
`max_distance` x the suggester's widest span each). Pairs and labels over
threshold go to `doc._.relations` (rel/records.py).

Training uses the gold entities and relations of the reference docs: every
gold relation is a positive pair, and up to `negative_ratio` negatives per
positive are sampled from the other gold entity pairs. Prediction uses the
entities on the doc, as set by the components before this one.
"""

import math
import warnings
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d

from ..errors import Errors, Warnings
from ..heads import LabelledSpanBertHead
from ..layers.listener import SpanBertListener
from ..learn_rate import LEARN_RATE_SCALE, check_learn_rate_scale
from .pairs import doc_entities, sample_negatives, select_pairs, sentence_ids
from .records import RELATIONS_ATTR, ensure_relations_extension, make_record, read_triples
from .scoring import score_relations
from .settings import check_constraints, check_settings
from .training import gold_relations, relation_offsets, training_pairs, training_sentence_ids

DEFAULT_REL_MODEL_CONFIG = """
[model]
@architectures = "spacy-spanbert.RelationClassifier.v1"
hidden_width = 128
feature_width = 32
dropout = 0.1
nO = null

[model.tok2vec]
@architectures = "spacy-spanbert.SpanBertListener.v1"
upstream = "*"
"""
DEFAULT_REL_MODEL = Config().from_str(DEFAULT_REL_MODEL_CONFIG)["model"]
TypeConstraints = Union[str, Dict[str, List[List[str]]]]


class RelationScores(NamedTuple):
    """What `predict` returns: per doc the scored pairs (`[head_start,
    head_end, tail_start, tail_end]` rows) and their (head, tail) entity
    types; the positions of the pairs whose arguments are candidate spans,
    and their probabilities, one column per label."""

    pairs: List[numpy.ndarray]
    types: List[List[Tuple[str, str]]]
    kept: numpy.ndarray
    probs: numpy.ndarray


@Language.factory(
    "spanbert_rel",
    assigns=[f"doc._.{RELATIONS_ATTR}"],
    default_config={
        "model": DEFAULT_REL_MODEL,
        "spans_key": None,
        "labels": None,
        "threshold": 0.5,
        "thresholds": None,
        "max_distance": 32,
        "within_sentence": False,
        "max_pairs": 1000,
        "negative_ratio": 3.0,
        "type_constraints": "none",
        "scorer": {"@scorers": "spacy-spanbert.rel_scorer.v1"},
        "learn_rate_scale": LEARN_RATE_SCALE,
    },
    default_score_weights={
        "rel_micro_f": 1.0,
        "rel_micro_p": 0.0,
        "rel_micro_r": 0.0,
        "rel_boundaries_f": 0.0,
        "rel_macro_f": 0.0,
        "rel_f_per_type": None,
    },
)
def make_spanbert_rel(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: Optional[str],
    labels: Optional[List[str]],
    threshold: float,
    thresholds: Optional[Dict[str, float]],
    max_distance: int,
    within_sentence: bool,
    max_pairs: int,
    negative_ratio: float,
    type_constraints: TypeConstraints,
    scorer: Optional[Callable],
    learn_rate_scale: float,
) -> "SpanBertRelations":
    """Create a `spanbert_rel` head.

    model (Model): Scores entity pairs, e.g. spacy-spanbert.RelationClassifier.v1.
    spans_key (Optional[str]): Relate the spans of `doc.spans[spans_key]`;
        None (default) relates `doc.ents`.
    labels (Optional[List[str]]): The relation labels; None to infer them.
    threshold (float): Minimum probability of a (pair, label) to be kept.
    thresholds (Optional[Dict[str, float]]): Per-label thresholds, over `threshold`.
    max_distance (int): Most tokens between the two arguments of a pair.
    within_sentence (bool): Relate only entities of one sentence (sentence
        boundaries come from the doc; a doc without them is one sentence).
    max_pairs (int): Most pairs scored per doc, the closest first.
    negative_ratio (float): Negative pairs sampled per gold relation in training.
    type_constraints (Union[str, Dict[str, List[List[str]]]]): "none";
        "learned" (each label only between the (head type, tail type) seen
        with it in the training data); or a dict label -> [[head type, tail
        type], ...] (labels it does not name are unconstrained).
    scorer (Optional[Callable]): The scoring method.
    learn_rate_scale (float): Multiple of the optimizer's learning rate for
        this component's own weights.
    """
    return SpanBertRelations(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        labels=labels,
        threshold=threshold,
        thresholds=thresholds,
        max_distance=max_distance,
        within_sentence=within_sentence,
        max_pairs=max_pairs,
        negative_ratio=negative_ratio,
        type_constraints=type_constraints,
        scorer=scorer,
        learn_rate_scale=learn_rate_scale,
    )


class SpanBertRelations(LabelledSpanBertHead):
    """Classify pairs of entities into relation labels (independent sigmoids)."""

    invalid_label_error = Errors.E505
    late_label_error = Errors.E506

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "spanbert_rel",
        *,
        spans_key: Optional[str] = None,
        labels: Optional[List[str]] = None,
        threshold: float = 0.5,
        thresholds: Optional[Dict[str, float]] = None,
        max_distance: int = 32,
        within_sentence: bool = False,
        max_pairs: int = 1000,
        negative_ratio: float = 3.0,
        type_constraints: TypeConstraints = "none",
        scorer: Optional[Callable] = score_relations,
        learn_rate_scale: float = LEARN_RATE_SCALE,
    ) -> None:
        """See `make_spanbert_rel` for the settings."""
        check_settings(name, spans_key, threshold, thresholds, max_distance, within_sentence, max_pairs, negative_ratio)
        ensure_relations_extension()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self._n_updates = 0
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "threshold": float(threshold),
            "thresholds": {k: float(v) for k, v in (thresholds or {}).items()},
            "max_distance": max_distance,
            "within_sentence": within_sentence,
            "max_pairs": max_pairs,
            "negative_ratio": float(negative_ratio),
            "type_constraints": type_constraints,
            "allowed_types": check_constraints(name, type_constraints),
            "learn_rate_scale": check_learn_rate_scale(name, learn_rate_scale),
        }
        for label in labels or []:
            self.add_label(label)

    @property
    def is_initialized(self) -> bool:
        return self.model.shims[0].is_built

    # -- prediction ------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> RelationScores:
        """Score the entity pairs of a batch of docs, without changing them.

        docs (Iterable[Doc]): The documents, with their entities set.
        RETURNS (RelationScores): The pairs and their probabilities.
        """
        docs = list(docs)
        self._check_initialized()
        pairs, types = [], []
        for doc in docs:
            entities = doc_entities(doc, self.cfg["spans_key"])
            selected = self._select(doc, [(e.start, e.end) for e in entities], sentence_ids(doc))
            pairs.append(relation_offsets([(e.start, e.end) for e in entities], selected))
            types.append([(entities[i].label_, entities[j].label_) for i, j in selected.tolist()])
        if not any(len(p) for p in pairs):
            return RelationScores(pairs, types, numpy.zeros((0,), "int32"), numpy.zeros((0, len(self.labels)), "f"))
        kept, logits = self.model.predict((docs, pairs))
        probs = self.model.ops.to_numpy(self.model.ops.sigmoid(logits))
        return RelationScores(pairs, types, self.model.ops.to_numpy(kept), probs)

    def _select(self, doc: Doc, offsets: List[Tuple[int, int]], sent_ids: numpy.ndarray) -> numpy.ndarray:
        return select_pairs(
            offsets,
            sent_ids,
            max_distance=self.cfg["max_distance"],
            within_sentence=self.cfg["within_sentence"],
            max_pairs=self.cfg["max_pairs"],
        )

    def set_annotations(self, docs: Iterable[Doc], predictions: RelationScores) -> None:
        """Write `doc._.relations`: every (pair, label) over its threshold whose
        argument types the type constraints allow, sorted by head, tail, label.

        docs (Iterable[Doc]): The documents to modify.
        predictions (RelationScores): The output of `predict`.
        """
        labels = self.labels
        thresholds = numpy.asarray([self.cfg["thresholds"].get(label, self.cfg["threshold"]) for label in labels])
        allowed = self.cfg["allowed_types"] or {}
        allowed_sets = [None if label not in allowed else {tuple(t) for t in allowed[label]} for label in labels]
        n_total = sum(len(p) for p in predictions.pairs)
        row_of = numpy.full((n_total,), -1, dtype="int64")
        row_of[predictions.kept] = numpy.arange(len(predictions.kept))
        start = 0
        for doc, pairs, types in zip(docs, predictions.pairs, predictions.types):
            rows = row_of[start : start + len(pairs)]
            start += len(pairs)
            records = []
            for p in numpy.flatnonzero(rows >= 0).tolist():
                probs = predictions.probs[rows[p]]
                for c in numpy.flatnonzero(probs >= thresholds).tolist():
                    if allowed_sets[c] is None or types[p] in allowed_sets[c]:
                        records.append(make_record(pairs[p, :2], pairs[p, 2:], labels[c], probs[c]))
            records.sort(key=lambda r: (r["head"], r["tail"], labels.index(r["label"])))
            doc._.set(RELATIONS_ATTR, records)

    # -- training --------------------------------------------------------------

    def _learn(self, examples: List[Example], docs: List[Doc]) -> float:
        """One forward and backward pass over a batch: its gold relations and
        sampled negative pairs. The gradient is passed back even for a batch
        without pairs, so that the listener still hands `spanbert` the
        gradient of its other heads.

        examples (List[Example]): The batch.
        docs (List[Doc]): Their predicted docs.
        RETURNS (float): The loss.
        """
        pairs = [self._training_pairs(eg) for eg in examples]
        self._n_updates += 1
        (kept, logits), backprop = self.model.begin_update((docs, pairs))
        loss, d_logits = self.get_loss(examples, (pairs, kept, logits))
        backprop(d_logits)
        return loss

    def _training_pairs(self, example: Example) -> numpy.ndarray:
        """The gold relation pairs and sampled negative pairs of an example,
        as `[head_start, head_end, tail_start, tail_end]` rows of the predicted doc."""
        positives, negatives = training_pairs(
            example, self.cfg["spans_key"], self.labels, self._select, training_sentence_ids(example), self.name
        )
        n_keep = int(math.ceil(self.cfg["negative_ratio"] * max(1, len(positives))))
        keep = sample_negatives(len(negatives), n_keep, example.predicted, self._n_updates)
        rows = positives + [negatives[i] for i in keep.tolist()]
        return numpy.asarray(rows, dtype="int32").reshape((-1, 4))

    def get_loss(self, examples: Iterable[Example], predictions: Tuple) -> Tuple[float, Floats2d]:
        """Binary cross-entropy per (pair, label), summed (as `spanbert_ner`
        sums over its candidates); a pair's targets are the labels of the gold
        relations with its offsets.

        examples (Iterable[Example]): The batch.
        predictions (Tuple[List[numpy.ndarray], Ints1d, Floats2d]): The pairs
            scored per doc, the positions of the kept ones and their logits.
        RETURNS (Tuple[float, Floats2d]): The loss and the gradient of the logits.
        """
        pairs, kept, logits = predictions
        ops = self.model.ops
        label_ids = {label: i for i, label in enumerate(self.labels)}
        targets = []
        for eg, doc_pairs in zip(examples, pairs):
            gold = gold_relations(eg, self.name)
            rows = numpy.zeros((len(doc_pairs), len(self.labels)), dtype="f")
            for p, row in enumerate(numpy.asarray(doc_pairs).reshape((-1, 4)).tolist()):
                for label in gold.get((tuple(row[:2]), tuple(row[2:])), ()):
                    if label in label_ids:
                        rows[p, label_ids[label]] = 1.0
            targets.append(rows)
        truth = numpy.concatenate(targets)[ops.to_numpy(kept)] if targets else numpy.zeros((0, len(self.labels)), "f")
        probs = ops.to_numpy(ops.sigmoid(logits))
        clipped = numpy.clip(probs, 1e-7, 1 - 1e-7)
        loss = float(-(truth * numpy.log(clipped) + (1 - truth) * numpy.log(1 - clipped)).sum())
        return loss, ops.asarray2f(probs - truth)

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Add the labels (given, or inferred from the reference docs'
        `doc._.relations`), learn the type constraints if asked, size and
        initialize the model, and warn about gold relations the head can
        never predict.

        get_examples (Callable[[], Iterable[Example]]): Returns sample examples.
        nlp (Optional[Language]): The pipeline, to find the upstream `spanbert`.
        labels (Optional[List[str]]): The labels; None to keep those of the
            config or infer them from the examples.
        """
        validate_get_examples(get_examples, "SpanBertRelations.initialize")
        if nlp is not None:
            self._check_upstream(nlp)
        self._add_labels(get_examples, labels)
        if not self.labels:
            raise ValueError(Errors.E503.format(name=self.name))
        if self.cfg["type_constraints"] == "learned":
            self.cfg["allowed_types"] = self._learn_types(get_examples)
        self.model.set_dim("nO", len(self.labels))
        self.model.initialize()
        if nlp is not None:
            self._check_reachable(nlp, get_examples)

    def _gold_labels(self, example: Example) -> Iterable[str]:
        """RETURNS (Iterable[str]): The labels of the reference's `doc._.relations`."""
        return (label for _, _, label in read_triples(example.reference, self.name))

    def _learn_types(self, get_examples: Callable) -> Dict[str, List[List[str]]]:
        """RETURNS (Dict[str, List[List[str]]]): Per label, the sorted
        [head type, tail type] pairs its gold relations have."""
        seen: Dict[str, set] = {label: set() for label in self.labels}
        for eg in get_examples():
            types = {(e.start, e.end): e.label_ for e in doc_entities(eg.reference, self.cfg["spans_key"])}
            for head, tail, label in read_triples(eg.reference, self.name):
                if label in seen:
                    seen[label].add((types.get(head, ""), types.get(tail, "")))
        return {label: [list(t) for t in sorted(pairs)] for label, pairs in seen.items()}

    def _no_upstream_message(self, listener: SpanBertListener, nlp: Language) -> str:
        """RETURNS (str): The relation head's own message (E507)."""
        return Errors.E507.format(name=self.name, pipeline=nlp.pipe_names)

    def _check_reachable(self, nlp: Language, get_examples: Callable) -> None:
        """Warn once about gold relations that can never be predicted: an
        argument is not a candidate span, or the pair is not selected."""
        up_name, sampled = self._candidates(nlp, get_examples)
        total = not_candidates = too_far = longest = 0
        for eg, candidates in sampled:
            reachable = {(tuple(r[:2]), tuple(r[2:])) for r in self._training_pairs_all(eg)}
            for (head, tail), found_labels in gold_relations(eg, self.name).items():
                labels = [label for label in found_labels if label in self.labels]
                total += len(labels)
                missing = [arg for arg in (head, tail) if arg not in candidates]
                if missing:
                    not_candidates += len(labels)
                    longest = max([longest] + [end - start for start, end in missing])
                elif (head, tail) not in reachable:
                    too_far += len(labels)
        if not_candidates or too_far:
            warnings.warn(
                Warnings.W500.format(
                    name=self.name,
                    lost=not_candidates + too_far,
                    total=total,
                    not_candidates=not_candidates,
                    encoder=up_name,
                    longest=longest,
                    too_far=too_far,
                    max_distance=self.cfg["max_distance"],
                ),
                UserWarning,
                stacklevel=2,
            )

    def _training_pairs_all(self, example: Example) -> List[List[int]]:
        positives, _ = training_pairs(
            example, self.cfg["spans_key"], self.labels, self._select, training_sentence_ids(example), self.name
        )
        return positives
