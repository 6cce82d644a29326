"""The `spanbert_coref` component: coreference by span ranking (Lee et al.
2017, 2018) over the candidate spans of `spanbert`.

The model (`spacy-spanbert.CorefScorer.v1`) scores mentions, keeps the best
`mention_ratio * n_tokens`, and scores up to `max_antecedents` earlier kept
mentions per mention against a dummy antecedent of score 0. Each mention
follows its best antecedent; the clusters go to `doc.spans["{prefix}_1"]`,
`..._2`, ... in order of first mention (spaCy's convention), and the kept
mentions with their scores to `doc.spans[mentions_key]`.
"""

import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..data_classes import doc_rows
from ..errors import Errors, Warnings, check_key
from ..heads import SpanBertHead
from ..layers.coref_scorer import CorefScores, GradT
from ..learn_rate import check_learn_rate_scale
from .clusters import follow_antecedents, gold_mentions
from .scoring import DEFAULT_CLUSTER_PREFIX, cluster_keys, score_coref

# The head's own learning rate as a multiple of the optimizer's (see make_spanbert_coref).
COREF_LEARN_RATE_SCALE = 10.0

DEFAULT_COREF_MODEL_CONFIG = """
[model]
@architectures = "spacy-spanbert.CorefScorer.v1"
hidden_width = 150
feature_width = 20
dropout = 0.3
mention_ratio = 0.4
max_antecedents = 50
antecedent_window = 400

[model.tok2vec]
@architectures = "spacy-spanbert.SpanBertListener.v1"
upstream = "*"
"""
DEFAULT_COREF_MODEL = Config().from_str(DEFAULT_COREF_MODEL_CONFIG)["model"]
DEFAULT_MENTIONS_KEY = "spanbert_mentions"


@Language.factory(
    "spanbert_coref",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_COREF_MODEL,
        "span_cluster_prefix": DEFAULT_CLUSTER_PREFIX,
        "mentions_key": DEFAULT_MENTIONS_KEY,
        "keep_singletons": True,
        "mention_loss_weight": 1.0,
        "scorer": {"@scorers": "spacy-spanbert.coref_scorer.v1"},
        "learn_rate_scale": COREF_LEARN_RATE_SCALE,
    },
    default_score_weights={
        "coref_f": 1.0,
        "coref_muc_f": 0.0,
        "coref_b3_f": 0.0,
        "coref_ceafe_f": 0.0,
        "coref_mention_f": 0.0,
    },
)
def make_spanbert_coref(
    nlp: Language,
    name: str,
    model: Model[List[Doc], CorefScores],
    span_cluster_prefix: str,
    mentions_key: str,
    keep_singletons: bool,
    mention_loss_weight: float,
    scorer: Optional[Callable],
    learn_rate_scale: float,
) -> "SpanBertCoref":
    """Create a `spanbert_coref` head.

    model (Model[List[Doc], CorefScores]): Scores mentions and antecedents,
        e.g. `spacy-spanbert.CorefScorer.v1`.
    span_cluster_prefix (str): Write the clusters to `doc.spans[prefix_N]`
        (N = 1, 2, ...), and train from the reference docs' groups of it.
    mentions_key (str): Write the kept mentions, with `attrs["scores"]`, here.
    keep_singletons (bool): Also output clusters of one mention (a kept
        mention with a positive mention score and no antecedent).
    mention_loss_weight (float): Weight of the mention loss (a sigmoid
        cross-entropy on every candidate: is it a gold mention?) beside the
        antecedent loss; it calibrates the mention score that decides
        singletons. 0 leaves only the loss of Lee et al.
    scorer (Optional[Callable]): The scoring method.
    learn_rate_scale (float): Train this component's own weights at this
        multiple of the optimizer's learning rate (default 10: span-ranking
        coreference trains its scorers well above the encoder's rate, as
        Joshi et al. 2019 do for BERT).
    """
    return SpanBertCoref(
        nlp.vocab,
        model,
        name,
        span_cluster_prefix=span_cluster_prefix,
        mentions_key=mentions_key,
        keep_singletons=keep_singletons,
        mention_loss_weight=mention_loss_weight,
        scorer=scorer,
        learn_rate_scale=learn_rate_scale,
    )


class SpanBertCoref(SpanBertHead):
    """Resolve coreference among the candidate spans of `spanbert`."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], CorefScores],
        name: str = "spanbert_coref",
        *,
        span_cluster_prefix: str = DEFAULT_CLUSTER_PREFIX,
        mentions_key: str = DEFAULT_MENTIONS_KEY,
        keep_singletons: bool = True,
        mention_loss_weight: float = 1.0,
        scorer: Optional[Callable] = score_coref,
        learn_rate_scale: float = COREF_LEARN_RATE_SCALE,
    ) -> None:
        """
        vocab (Vocab): The shared vocabulary.
        model (Model[List[Doc], CorefScores]): The coreference scorer.
        name (str): The component instance name.
        span_cluster_prefix (str): Prefix of the cluster span groups.
        mentions_key (str): Key of the kept-mention span group.
        keep_singletons (bool): Output clusters of one mention.
        mention_loss_weight (float): Weight of the mention loss.
        scorer (Optional[Callable]): The scoring method.
        learn_rate_scale (float): Multiplier of the optimizer's learning rate
            for this component's weights.
        """
        check_key(name, "span_cluster_prefix", span_cluster_prefix)
        check_key(name, "mentions_key", mentions_key)
        if not isinstance(keep_singletons, bool):
            raise ValueError(Errors.E008.format(name=name, setting="keep_singletons", value=keep_singletons))
        weight = mention_loss_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(Errors.E601.format(name=name, value=weight))
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "span_cluster_prefix": span_cluster_prefix,
            "mentions_key": mentions_key,
            "keep_singletons": keep_singletons,
            "mention_loss_weight": float(weight),
            "learn_rate_scale": check_learn_rate_scale(name, learn_rate_scale),
        }

    @property
    def is_initialized(self) -> bool:
        return bool(self.model.shims[0].is_built)

    # -- prediction ------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> CorefScores:
        """Score the mentions and antecedents of a batch, without changing it.

        docs (Iterable[Doc]): The documents.
        RETURNS (CorefScores): Mention scores, kept mentions, antecedent scores.
        """
        docs = list(docs)
        self._check_initialized()
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], predictions: CorefScores) -> None:
        """Write the clusters to `doc.spans["{prefix}_N"]` (replacing groups of
        that prefix) and the kept mentions to `doc.spans[mentions_key]`.

        docs (Iterable[Doc]): The documents to modify.
        predictions (CorefScores): The output of `predict`.
        """
        ops = self.model.ops
        prefix, key = self.cfg["span_cluster_prefix"], self.cfg["mentions_key"]
        mention_scores = ops.to_numpy(predictions.mention_scores)
        antecedents = ops.to_numpy(predictions.antecedents)
        scores = ops.to_numpy(predictions.scores)
        kept = ops.to_numpy(predictions.kept)
        offsets = ops.to_numpy(predictions.indices.dataXd).reshape((-1, 2))
        first = 0
        for doc, n in zip(docs, ops.to_numpy(predictions.kept_lengths).tolist()):
            rows = slice(first, first + n)
            kept_offsets = offsets[kept[rows]]
            kept_scores = numpy.ascontiguousarray(mention_scores[kept[rows]], dtype="float32")
            ants = numpy.where(antecedents[rows] >= 0, antecedents[rows] - first, -1)
            clusters = follow_antecedents(ants, scores[rows], kept_scores, keep_singletons=self.cfg["keep_singletons"])
            for old in cluster_keys(doc, prefix):
                del doc.spans[old]
            for i, cluster in enumerate(clusters, 1):
                spans = [Span(doc, int(kept_offsets[m, 0]), int(kept_offsets[m, 1])) for m in cluster]
                doc.spans[f"{prefix}_{i}"] = SpanGroup(doc, name=f"{prefix}_{i}", spans=spans)
            mentions = [Span(doc, int(s), int(e)) for s, e in kept_offsets.tolist()]
            doc.spans[key] = SpanGroup(doc, name=key, attrs={"scores": kept_scores}, spans=mentions)
            first += n

    # -- training --------------------------------------------------------------

    def get_loss(self, examples: Iterable[Example], predictions: CorefScores) -> Tuple[float, GradT]:
        """The negative marginal log-likelihood of the gold antecedents among
        each kept mention's candidates (the dummy when none is gold: a new
        entity, or not a mention; Lee et al. 2017), summed over the kept
        mentions, plus `mention_loss_weight` times the sigmoid cross-entropy
        of the mention scores, summed over the candidates.

        examples (Iterable[Example]): The batch, aligned with `predictions`.
        predictions (CorefScores): The output of the model.
        RETURNS (Tuple[float, Tuple[Floats1d, Floats2d]]): The loss and the
            gradients of the mention scores and of the antecedent scores.
        """
        ops = self.model.ops
        mention_scores = ops.to_numpy(predictions.mention_scores).astype("float64")
        scores = ops.to_numpy(predictions.scores).astype("float64")
        antecedents = ops.to_numpy(predictions.antecedents)
        kept = ops.to_numpy(predictions.kept)
        weight = self.cfg["mention_loss_weight"]
        is_gold = numpy.zeros(mention_scores.shape, dtype="bool")
        cluster = numpy.full(kept.shape, -1, dtype="int64")
        first = 0
        for eg, (cand_rows, offsets), n in zip(
            examples, doc_rows(ops, predictions.indices), predictions.kept_lengths.tolist()
        ):
            gold = gold_mentions(eg, self.cfg["span_cluster_prefix"])
            ids = numpy.asarray([gold.get((s, e), -1) for s, e in offsets.tolist()], dtype="int64")
            is_gold[cand_rows] = ids >= 0
            cluster[first : first + n] = ids[kept[first : first + n] - cand_rows.start]
            first += n
        probs = 1.0 / (1.0 + numpy.exp(-mention_scores))
        d_mention = weight * (probs - is_gold)
        loss = weight * float((numpy.logaddexp(0.0, mention_scores) - is_gold * mention_scores).sum())
        ant_cluster = numpy.where(antecedents >= 0, cluster[numpy.maximum(antecedents, 0)], -2)
        gold_ants = (ant_cluster == cluster[:, None]) & (cluster[:, None] >= 0)
        mask = numpy.concatenate([~gold_ants.any(axis=1, keepdims=True), gold_ants], axis=1)
        log_z = numpy.logaddexp.reduce(scores, axis=1)
        log_gold = numpy.logaddexp.reduce(numpy.where(mask, scores, -numpy.inf), axis=1)
        loss += float((log_z - log_gold).sum())
        d_scores = numpy.exp(scores - log_z[:, None]) - numpy.where(mask, numpy.exp(scores - log_gold[:, None]), 0.0)
        return loss, (ops.asarray1f(d_mention.astype("float32")), ops.asarray2f(d_scores.astype("float32")))

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        """Check that the examples hold gold clusters, initialize the model,
        and warn about gold mentions the upstream suggester cannot produce.

        get_examples (Callable[[], Iterable[Example]]): Returns sample examples.
        nlp (Optional[Language]): The pipeline, to find the upstream `spanbert`.
        """
        validate_get_examples(get_examples, "SpanBertCoref.initialize")
        if nlp is not None:
            self._check_upstream(nlp)
        prefix = self.cfg["span_cluster_prefix"]
        if not any(cluster_keys(eg.reference, prefix) for eg in islice(get_examples(), 10000)):
            raise ValueError(Errors.E603.format(name=self.name, prefix=prefix))
        self.model.initialize()
        if nlp is not None:
            self._check_suggester(nlp, get_examples)

    def _check_suggester(self, nlp: Language, get_examples: Callable) -> None:
        """Warn once about gold mentions that are never candidates."""
        up_name, sampled = self._candidates(nlp, get_examples)
        missed = total = longest = 0
        for eg, candidates in sampled:
            for start, end in gold_mentions(eg, self.cfg["span_cluster_prefix"]):
                total += 1
                if (start, end) not in candidates:
                    missed += 1
                    longest = max(longest, end - start)
        if missed:
            warnings.warn(
                Warnings.W600.format(name=self.name, missed=missed, total=total, encoder=up_name, longest=longest),
                UserWarning,
                stacklevel=2,
            )
