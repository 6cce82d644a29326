"""The `pairs` system of `accuracy.py rel`: relation extraction as a spaCy
user builds it today, after spaCy's rel_component tutorial
(explosion/projects `tutorials/rel_component`), written for the benchmark.

Each entity's token vectors (the transformer listener, reduce_mean pooling to
spaCy tokens) are mean-pooled, the ordered pair's two vectors concatenated,
and one linear layer with a sigmoid per label scores the pair:

    with_getitem(0, tok2vec) >> entity_tokens >> reduce_mean >> pair_concat >> Linear   (logits)
    predict: sigmoid(logits)

As in the tutorial, every pair of gold entities is a training instance (no
negative sampling). The loss is not the tutorial's: its squared error of the
probabilities (the gradient `probs - truth` passed back through the sigmoid)
learned nothing in 300 steps on CoNLL04 (all pairs below the threshold,
rel_micro_f 0.00), so the baseline gets `spanbert_rel`'s loss, binary
cross-entropy summed over (pair, label), and the two systems differ in the
model only. The pairs are those `spanbert_rel` would score: ordered pairs of
entities at most `max_distance` tokens apart, the `max_pairs` closest per doc
(spacy_spanbert.rel's pair selection), over the reference's gold entities in
training and over `doc.ents` at prediction time. Output: the
`doc._.relations` records of `spanbert_rel`, scored by
`spacy-spanbert.rel_scorer.v1`.

Importing this module registers the factory `rel_pairs_baseline` and the
architecture `spacy-spanbert-bench.RelPairs.v1`; a saved pipeline that uses
them loads after `import rel_baseline`.
"""

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Linear, Model, Optimizer, chain, reduce_mean, set_dropout_rate, with_getitem
from thinc.types import Floats2d, Ints2d, Ragged

from spacy_spanbert.rel.pairs import doc_entities, select_pairs
from spacy_spanbert.rel.records import RELATIONS_ATTR, ensure_relations_extension, make_record, read_triples
from spacy_spanbert.rel.training import gold_relations, relation_offsets, training_pairs

FACTORY = "rel_pairs_baseline"
ARCHITECTURE = "spacy-spanbert-bench.RelPairs.v1"

# token vectors per doc, and per doc the pairs as [head_start, head_end, tail_start, tail_end] rows
InT = Tuple[List[Floats2d], List[Ints2d]]
PairsInT = Tuple[List[Doc], List[Ints2d]]

DEFAULT_MODEL_CONFIG = f"""
[model]
@architectures = "{ARCHITECTURE}"
nO = null

[model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"
pooling = {{"@layers":"reduce_mean.v1"}}
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@registry.architectures(ARCHITECTURE)
def build_rel_pairs_model(
    tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None
) -> Model[PairsInT, Floats2d]:
    """The tutorial's relation model: mean of each entity's token vectors,
    the pair's two means concatenated, a linear layer (the sigmoid is
    applied by the component, so that training sees the logits).

    tok2vec (Model[List[Doc], List[Floats2d]]): Token vectors per doc.
    nO (Optional[int]): The number of labels.
    RETURNS (Model[Tuple[List[Doc], List[Ints2d]], Floats2d]): One row of
        logits per pair, the pairs of all docs in order.
    """
    output_layer = Linear(nO=nO)
    model = chain(with_getitem(0, tok2vec), entity_tokens(), reduce_mean(), pair_concat(), output_layer)
    model.set_ref("output_layer", output_layer)
    return model


def entity_tokens() -> Model[InT, Ragged]:
    """The token vectors of the head and the tail of every pair, one
    sequence per argument (head, tail, head, tail, ...)."""
    return Model("entity_tokens", entity_tokens_forward)


def entity_tokens_forward(model: Model[InT, Ragged], X: InT, is_train: bool) -> Tuple[Ragged, Callable]:
    tokvecs, pairs = X
    ops = model.ops
    width = max((v.shape[1] for v in tokvecs if len(v)), default=0)
    starts = numpy.cumsum([0] + [len(v) for v in tokvecs])
    indices: List[int] = []
    lengths: List[int] = []
    for start, doc_pairs in zip(starts.tolist(), pairs):
        for row in ops.to_numpy(doc_pairs).reshape((-1, 4)).tolist():
            for a, b in (row[:2], row[2:]):
                indices.extend(range(start + a, start + b))
                lengths.append(b - a)
    nonempty = [v for v in tokvecs if len(v)]
    table = ops.xp.concatenate(nonempty) if nonempty else ops.alloc2f(0, width)
    index = ops.asarray1i(indices)
    Y = Ragged(table[index], ops.asarray1i(lengths))

    def backprop(dY: Ragged) -> InT:
        d_table = ops.alloc2f(len(table), width)
        if len(index):
            ops.scatter_add(d_table, index, dY.dataXd)
        d_tokvecs = [
            d_table[a:b] if b > a else ops.alloc2f(*v.shape) for v, a, b in zip(tokvecs, starts[:-1], starts[1:])
        ]
        return d_tokvecs, pairs

    return Y, backprop


def pair_concat() -> Model[Floats2d, Floats2d]:
    """Rows (head, tail, head, tail, ...) -> one row [head; tail] per pair.
    The widths are inferred in `init`, so that a batch without pairs (for
    which `reduce_mean` gives a `(0, 0)` array) keeps them."""
    return Model("pair_concat", pair_concat_forward, init=pair_concat_init, dims={"nI": None, "nO": None})


def pair_concat_init(model: Model[Floats2d, Floats2d], X: Optional[Floats2d] = None, Y=None) -> None:
    if X is not None:
        model.set_dim("nI", X.shape[1])
        model.set_dim("nO", 2 * X.shape[1])


def pair_concat_forward(model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    n, width = len(X), model.get_dim("nI")
    Y = model.ops.reshape2f(X, n // 2, 2 * width) if n else model.ops.alloc2f(0, 2 * width)

    def backprop(dY: Floats2d) -> Floats2d:
        return model.ops.reshape2f(dY, n, width) if n else model.ops.alloc2f(*X.shape)

    return Y, backprop


@Language.factory(
    FACTORY,
    assigns=[f"doc._.{RELATIONS_ATTR}"],
    default_config={
        "model": DEFAULT_MODEL,
        "threshold": 0.5,
        "max_distance": 64,
        "max_pairs": 1000,
        "scorer": {"@scorers": "spacy-spanbert.rel_scorer.v1"},
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
def make_rel_pairs_baseline(
    nlp: Language,
    name: str,
    model: Model,
    threshold: float,
    max_distance: int,
    max_pairs: int,
    scorer: Optional[Callable],
) -> "RelPairsBaseline":
    """Create the benchmark's tutorial-style relation component.

    model (Model): Scores entity pairs, e.g. spacy-spanbert-bench.RelPairs.v1.
    threshold (float): Minimum probability of a (pair, label) to be kept.
    max_distance (int): Most tokens between the two entities of a pair.
    max_pairs (int): Most pairs scored per doc, the closest first.
    scorer (Optional[Callable]): The scoring method.
    """
    return RelPairsBaseline(
        nlp.vocab,
        model,
        name,
        threshold=threshold,
        max_distance=max_distance,
        max_pairs=max_pairs,
        scorer=scorer,
    )


class RelPairsBaseline(TrainablePipe):
    """Classify ordered pairs of `doc.ents` into relation labels
    (independent sigmoids), writing `doc._.relations`."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = FACTORY,
        *,
        threshold: float = 0.5,
        max_distance: int = 64,
        max_pairs: int = 1000,
        scorer: Optional[Callable] = None,
    ) -> None:
        """See `make_rel_pairs_baseline` for the settings."""
        ensure_relations_extension()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "threshold": float(threshold),
            "max_distance": int(max_distance),
            "max_pairs": int(max_pairs),
        }

    @property
    def labels(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str]): The labels, in the order of the model's columns."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        if label in self.labels:
            return 0
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def _select(self, doc: Doc, offsets: List[Tuple[int, int]], sent_ids: numpy.ndarray) -> numpy.ndarray:
        return select_pairs(
            offsets,
            sent_ids,
            max_distance=self.cfg["max_distance"],
            within_sentence=False,
            max_pairs=self.cfg["max_pairs"],
        )

    def doc_pairs(self, doc: Doc) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): The `[head_start, head_end, tail_start,
        tail_end]` rows of the pairs of `doc.ents` to score."""
        offsets = [(e.start, e.end) for e in doc_entities(doc, None)]
        return relation_offsets(offsets, self._select(doc, offsets, numpy.zeros((len(doc),), "int64")))

    def predict(self, docs: Iterable[Doc]) -> Tuple[List[numpy.ndarray], Floats2d]:
        """RETURNS (Tuple[List[numpy.ndarray], Floats2d]): The pairs per doc
        and their probabilities, one row per pair, one column per label."""
        docs = list(docs)
        pairs = [self.doc_pairs(doc) for doc in docs]
        if not any(len(p) for p in pairs):
            return pairs, numpy.zeros((0, len(self.labels)), "f")
        return pairs, self.model.ops.to_numpy(self.model.ops.sigmoid(self.model.predict((docs, pairs))))

    def set_annotations(self, docs: Iterable[Doc], predictions: Tuple[List[numpy.ndarray], Floats2d]) -> None:
        """Write `doc._.relations`: every (pair, label) at or over the threshold."""
        pairs, probs = predictions
        start = 0
        for doc, doc_pairs in zip(docs, pairs):
            records = []
            for row, p in zip(doc_pairs.tolist(), probs[start : start + len(doc_pairs)]):
                for c in numpy.flatnonzero(p >= self.cfg["threshold"]).tolist():
                    records.append(make_record(row[:2], row[2:], self.labels[c], p[c]))
            start += len(doc_pairs)
            doc._.set(RELATIONS_ATTR, records)

    def training_rows(self, example: Example) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): Every selected pair of the reference's
        gold entities, in the predicted doc's tokens."""
        positives, negatives = training_pairs(
            example, None, self.labels, self._select, numpy.zeros((len(example.predicted),), "int64"), self.name
        )
        return numpy.asarray(positives + negatives, dtype="int32").reshape((-1, 4))

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from the gold-entity pairs of a batch. The model (and so the
        transformer listener) runs even when the batch has no pairs, so the
        transformer still gets the other listeners' gradient."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, "RelPairsBaseline.update")
        examples = list(examples)
        docs = [eg.predicted for eg in examples]
        pairs = [self.training_rows(eg) for eg in examples]
        set_dropout_rate(self.model, drop)
        logits, backprop = self.model.begin_update((docs, pairs))
        loss, gradient = self.get_loss(examples, (pairs, logits))
        backprop(gradient)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], predictions: Tuple[List[numpy.ndarray], Floats2d]):
        """`spanbert_rel`'s loss: binary cross-entropy per (pair, label),
        summed; the gradient of the logits is `sigmoid(logits) - truth`."""
        pairs, logits = predictions
        ops = self.model.ops
        label_ids = {label: i for i, label in enumerate(self.labels)}
        truth = numpy.zeros((sum(len(p) for p in pairs), len(self.labels)), dtype="f")
        row = 0
        for eg, doc_pairs in zip(examples, pairs):
            gold = gold_relations(eg, self.name)
            for pair in doc_pairs.tolist():
                for label in gold.get((tuple(pair[:2]), tuple(pair[2:])), ()):
                    if label in label_ids:
                        truth[row, label_ids[label]] = 1.0
                row += 1
        probs = ops.to_numpy(ops.sigmoid(logits)) if len(truth) else truth
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
        """Add the labels (given, or those of the reference docs'
        `doc._.relations`) and size the model on a few docs."""
        validate_get_examples(get_examples, "RelPairsBaseline.initialize")
        found = set(labels or [])
        if labels is None:
            for eg in get_examples():
                found.update(label for _, _, label in read_triples(eg.reference, self.name))
        for label in sorted(found):
            self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"{self.name}: no relation labels. Give labels, or training docs with "
                f"doc._.relations (python -m spacy spanbert convert spert writes them)."
            )
        self.model.get_ref("output_layer").set_dim("nO", len(self.labels))
        docs = [eg.predicted for eg in get_examples() if len(eg.predicted)][:10]
        # one single-token pair per doc is enough to infer the widths
        pairs = [numpy.asarray([[0, 1, 0, 1]], dtype="int32") for _ in docs]
        self.model.initialize(X=(docs, pairs), Y=numpy.zeros((len(docs), len(self.labels)), "f"))
