"""Span-attention text classification.

`SpanAttentionTextCat.v2` (the default) and `.v1` are models for spaCy's own
`textcat` and `textcat_multilabel` components that read the `spanbert` span
vectors. The `spanbert_textcat` and `spanbert_textcat_multilabel` factories are
those two components plus evidence: from the same forward pass as `doc.cats`,
the top-k spans each label attended to, written to `doc.spans[evidence_key]`
with `attrs["weights"]` (render it with displaCy's "span" style).
"""

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline.textcat import TextCategorizer, textcat_score
from spacy.pipeline.textcat_multilabel import (
    MultiLabel_TextCategorizer,
    textcat_multilabel_score,
)
from spacy.tokens import Doc, Span, SpanGroup
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d, Ragged

from .data_classes import doc_rows
from .errors import Errors, check_positive
from .evidence import METHODS, estimate_drops
from .layers.label_attention import predict_with_weights
from .layers.listener import SpanBertListener
from .learn_rate import LEARN_RATE_SCALE, ScaledLearnRateMixin, check_learn_rate_scale

DEFAULT_TEXTCAT_MODEL_CONFIG = """
[model]
@architectures = "spacy-spanbert.SpanAttentionTextCat.v2"
exclusive_classes = true
nO = null
dropout = 0.1
score_scale = 30.0

[model.tok2vec]
@architectures = "spacy-spanbert.SpanBertListener.v1"
width = null
upstream = "*"
"""
DEFAULT_TEXTCAT_MODEL = Config().from_str(DEFAULT_TEXTCAT_MODEL_CONFIG)["model"]
DEFAULT_MULTI_TEXTCAT_MODEL = Config().from_str(
    DEFAULT_TEXTCAT_MODEL_CONFIG.replace("exclusive_classes = true", "exclusive_classes = false")
)["model"]

# spaCy's textcat scores, so a spanbert_textcat is compared like a textcat.
TEXTCAT_SCORE_WEIGHTS = {
    "cats_score": 1.0,
    "cats_score_desc": None,
    "cats_micro_p": None,
    "cats_micro_r": None,
    "cats_micro_f": None,
    "cats_macro_p": None,
    "cats_macro_r": None,
    "cats_macro_f": None,
    "cats_macro_auc": None,
    "cats_f_per_type": None,
}

# The scores, the [start, end) rows of the candidate spans (one length per
# doc) and one row of label weights per span.
EvidenceT = Tuple[Floats2d, Ragged, Floats2d]


def predict_with_evidence(model: Model, docs: List[Doc], estimator: Optional[Dict[str, Any]] = None) -> EvidenceT:
    """The label scores of `model.predict(docs)` and, from the same forward
    pass, the evidence weight of each candidate span for each label: the
    attention the label pays to it, or with an occlusion estimator
    (evidence.py) the estimated drop of the label's probability without the
    token of each one-token candidate (-inf for the other candidates). The
    `spanbert` component must have annotated `docs`.

    model (Model): A `SpanAttentionTextCat` model, e.g.
        `nlp.get_pipe("textcat").model` (spaCy's own `textcat` with this
        architecture works too).
    docs (List[Doc]): The docs.
    estimator (Optional[Dict[str, Any]]): A fitted occlusion estimator; None
        for attention.
    RETURNS (Tuple[Floats2d, Ragged, Floats2d]): One row of scores per doc,
        the `[start, end)` rows of the spans with one length per doc, and one
        row of label weights per span.
    """
    batch = model.get_ref("tok2vec").predict(docs)
    logits, weights = predict_with_weights(model.get_ref("label_attention"), batch)
    scores = model.get_ref("activation").predict(logits)
    if estimator is not None:
        weights = estimate_drops(estimator, batch.indices, batch.vectors, model.ops)
    return scores, batch.indices, weights


# -- components ---------------------------------------------------------------


@Language.factory(
    "spanbert_textcat",
    assigns=["doc.cats", "doc.spans"],
    default_config={
        "threshold": 0.0,
        "model": DEFAULT_TEXTCAT_MODEL,
        "scorer": {"@scorers": "spacy.textcat_scorer.v2"},
        "evidence_key": "{name}_evidence",
        "evidence_top_k": 3,
        "evidence_method": "auto",
        "learn_rate_scale": LEARN_RATE_SCALE,
    },
    default_score_weights=TEXTCAT_SCORE_WEIGHTS,
)
def make_spanbert_textcat(
    nlp: Language,
    name: str,
    model: Model[List[Doc], Floats2d],
    threshold: float,
    scorer: Optional[Callable],
    evidence_key: Optional[str],
    evidence_top_k: int,
    evidence_method: str,
    learn_rate_scale: float,
) -> "SpanBertTextCategorizer":
    """Create spaCy's single-label `textcat` with span-attention evidence.

    model (Model[List[Doc], Floats2d]): A `SpanAttentionTextCat` model with
        exclusive classes.
    threshold (float): Unused, as in spaCy's `textcat`.
    scorer (Optional[Callable]): The scoring method (`cats_*` scores).
    evidence_key (Optional[str]): Write the evidence to
        `doc.spans[evidence_key]`; "{name}" is replaced by the component name.
        None to write no evidence.
    evidence_top_k (int): Number of spans kept per label and doc.
    evidence_method (str): "attention" (the label attention), "occlusion_estimate"
        (the fitted occlusion estimator, evidence.py) or "auto" (the estimator
        once fitted, else attention).
    learn_rate_scale (float): Train this component's own weights at this
        multiple of the optimizer's learning rate (the transformer keeps the
        optimizer's rate).
    """
    return SpanBertTextCategorizer(
        nlp.vocab,
        model,
        name,
        threshold=threshold,
        scorer=scorer,
        evidence_key=evidence_key,
        evidence_top_k=evidence_top_k,
        evidence_method=evidence_method,
        learn_rate_scale=learn_rate_scale,
    )


@Language.factory(
    "spanbert_textcat_multilabel",
    assigns=["doc.cats", "doc.spans"],
    default_config={
        "threshold": 0.5,
        "model": DEFAULT_MULTI_TEXTCAT_MODEL,
        "scorer": {"@scorers": "spacy.textcat_multilabel_scorer.v2"},
        "evidence_key": "{name}_evidence",
        "evidence_top_k": 3,
        "evidence_method": "auto",
        "learn_rate_scale": LEARN_RATE_SCALE,
    },
    default_score_weights=TEXTCAT_SCORE_WEIGHTS,
)
def make_spanbert_textcat_multilabel(
    nlp: Language,
    name: str,
    model: Model[List[Doc], Floats2d],
    threshold: float,
    scorer: Optional[Callable],
    evidence_key: Optional[str],
    evidence_top_k: int,
    evidence_method: str,
    learn_rate_scale: float,
) -> "SpanBertMultiLabelTextCategorizer":
    """Create spaCy's `textcat_multilabel` with span-attention evidence.

    model (Model[List[Doc], Floats2d]): A `SpanAttentionTextCat` model without
        exclusive classes.
    threshold (float): Cutoff to consider a prediction "positive".
    scorer (Optional[Callable]): The scoring method (`cats_*` scores).
    evidence_key (Optional[str]): Write the evidence to
        `doc.spans[evidence_key]`; "{name}" is replaced by the component name.
        None to write no evidence.
    evidence_top_k (int): Number of spans kept per label and doc.
    evidence_method (str): "attention" (the label attention), "occlusion_estimate"
        (the fitted occlusion estimator, evidence.py) or "auto" (the estimator
        once fitted, else attention).
    learn_rate_scale (float): Train this component's own weights at this
        multiple of the optimizer's learning rate (the transformer keeps the
        optimizer's rate).
    """
    return SpanBertMultiLabelTextCategorizer(
        nlp.vocab,
        model,
        name,
        threshold=threshold,
        scorer=scorer,
        evidence_key=evidence_key,
        evidence_top_k=evidence_top_k,
        evidence_method=evidence_method,
        learn_rate_scale=learn_rate_scale,
    )


class SpanBertTextCategorizer(ScaledLearnRateMixin, TextCategorizer):
    """spaCy's `TextCategorizer` that also stores, for each label, the spans
    its attention weighted most. Training, labels and scores are spaCy's
    (the model's output layer makes spaCy's `scores - truths` a cross-entropy
    gradient); only `predict` and `set_annotations` differ.

    The evidence group `doc.spans[evidence_key]` holds, label by label in the
    order of `labels`, the top `evidence_top_k` candidate spans by weight
    (fewer if the doc has fewer), each labelled with the text label. Its attrs:
    "weights" (numpy float32, one per span, descending within a label),
    "labels" (the labels, in group order), "top_k", "n_candidates" (the
    number of spans the weights were spread over: 1/n is uniform attention)
    and "method". With "attention" the weights are the label's attention
    (summing to 1 over the doc's candidates); with "occlusion_estimate" the
    evidence is single tokens and the weights their estimated probability
    drops (evidence.py), which follow real occlusion where attention over
    contextual span vectors spreads.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "spanbert_textcat",
        *,
        threshold: float,
        scorer: Optional[Callable] = textcat_score,
        evidence_key: Optional[str] = "{name}_evidence",
        evidence_top_k: int = 3,
        evidence_method: str = "auto",
        learn_rate_scale: float = LEARN_RATE_SCALE,
    ) -> None:
        """
        vocab (Vocab): The shared vocabulary.
        model (Model): A `SpanAttentionTextCat` model.
        name (str): The component instance name.
        threshold (float): As in spaCy's text classifiers.
        scorer (Optional[Callable]): The scoring method.
        evidence_key (Optional[str]): Key of the evidence span group; "{name}"
            is replaced by `name`. None to write no evidence.
        evidence_top_k (int): Number of spans kept per label and doc.
        evidence_method (str): "attention", "occlusion_estimate" or "auto".
        learn_rate_scale (float): Multiplier of the optimizer's learning rate
            for this component's weights.
        """
        for ref in ("tok2vec", "label_attention", "activation"):
            if not model.has_ref(ref):
                raise ValueError(Errors.E036.format(name=name, layer=model.name))
        if evidence_key is not None:
            if not isinstance(evidence_key, str) or not evidence_key:
                raise ValueError(Errors.E037.format(name=name, value=evidence_key))
            evidence_key = evidence_key.replace("{name}", name)
        check_positive(name, "evidence_top_k", evidence_top_k)
        if evidence_method not in METHODS:
            raise ValueError(Errors.E083.format(name=name, methods=list(METHODS), value=evidence_method))
        super().__init__(vocab, model, name, threshold=threshold, scorer=scorer)
        self.cfg["evidence_key"] = evidence_key
        self.cfg["evidence_top_k"] = evidence_top_k
        self.cfg["evidence_method"] = evidence_method
        self.cfg["learn_rate_scale"] = check_learn_rate_scale(name, learn_rate_scale)

    @property
    def evidence_key(self) -> Optional[str]:
        """RETURNS (Optional[str]): Key of the evidence span group, or None."""
        return self.cfg["evidence_key"]

    @property
    def evidence_top_k(self) -> int:
        """RETURNS (int): Number of spans kept per label and doc."""
        return self.cfg["evidence_top_k"]

    def predict(self, docs: Iterable[Doc]) -> EvidenceT:
        """Apply the model to a batch of docs, without modifying them.

        docs (Iterable[Doc]): The documents to predict.
        RETURNS (Tuple[Floats2d, Ragged, Floats2d]): The scores, one row per
            doc as in `TextCategorizer.predict`; the `[start, end)` rows of the
            candidate spans, with one length per doc; and, from the same
            forward pass, one row of label weights per span.
        """
        # Empty docs go through the model like any other: no spans and a zero
        # doc vector leave the output bias, so an empty doc's cats do not
        # depend on its batch and exclusive classes sum to 1.
        return predict_with_evidence(self.model, list(docs), self._estimator())

    @property
    def evidence_method(self) -> str:
        """RETURNS (str): The evidence in use: "attention" or "occlusion_estimate"."""
        if self.cfg.get("evidence_method", "auto") == "auto":
            return "occlusion_estimate" if self.cfg.get("occlusion_estimator") else "attention"
        return self.cfg["evidence_method"]

    def _estimator(self) -> Optional[Dict[str, Any]]:
        """The fitted occlusion estimator when it is the evidence in use."""
        if self.evidence_key is None or self.evidence_method != "occlusion_estimate":
            return None
        estimator = self.cfg.get("occlusion_estimator")
        if not estimator:
            raise ValueError(Errors.E084.format(name=self.name, problem="no estimator is fitted"))
        if list(estimator["labels"]) != list(self.labels):
            problem = f"it was fitted for the labels {estimator['labels']}, not {list(self.labels)}"
            raise ValueError(Errors.E084.format(name=self.name, problem=problem))
        return estimator

    def set_annotations(self, docs: Iterable[Doc], predictions: EvidenceT) -> None:
        """Set `doc.cats` and, unless `evidence_key` is None, the evidence
        group `doc.spans[evidence_key]`.

        docs (Iterable[Doc]): The documents to modify.
        predictions (Tuple[Floats2d, Ragged, Floats2d]): The output of `predict`.
        """
        docs = list(docs)
        scores, indices, weights = predictions
        super().set_annotations(docs, scores)
        key = self.evidence_key
        if key is None:
            return
        self._check_evidence_key(key)
        ops = self.model.ops
        weights = ops.to_numpy(weights)
        labels = list(self.labels)
        top_k = self.evidence_top_k
        method = self.evidence_method
        for doc, (rows, doc_offsets) in zip(docs, doc_rows(ops, indices)):
            n = len(doc_offsets)
            doc_weights = weights[rows, : len(labels)]
            # Rows of the top spans, best first, one column per label; ties
            # keep the candidates' order. Candidates an estimator does not
            # score (-inf) are never evidence.
            top = numpy.argsort(-doc_weights, axis=0, kind="stable")[:top_k]
            spans = []
            kept = []
            for j, label in enumerate(labels):
                for row in top[:, j]:
                    if not numpy.isfinite(doc_weights[row, j]):
                        continue
                    s, e = doc_offsets[row]
                    spans.append(Span(doc, int(s), int(e), label=label))
                    kept.append(doc_weights[row, j])
            attrs: Dict[str, Any] = {
                "weights": numpy.asarray(kept, dtype="float32").reshape((-1,)),
                "labels": labels,
                "top_k": top_k,
                "n_candidates": n,
                "method": method,
            }
            doc.spans[key] = SpanGroup(doc, name=key, attrs=attrs, spans=spans)

    def _check_evidence_key(self, key: str) -> None:
        tok2vec = self.model.get_ref("tok2vec")
        if isinstance(tok2vec, SpanBertListener) and tok2vec.attrs.get("spans_key") == key:
            raise ValueError(Errors.E038.format(name=self.name, key=key))


class SpanBertMultiLabelTextCategorizer(SpanBertTextCategorizer, MultiLabel_TextCategorizer):
    """spaCy's `MultiLabel_TextCategorizer` that also stores, for each label,
    the spans its attention weighted most; see `SpanBertTextCategorizer`."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "spanbert_textcat_multilabel",
        *,
        threshold: float,
        scorer: Optional[Callable] = textcat_multilabel_score,
        evidence_key: Optional[str] = "{name}_evidence",
        evidence_top_k: int = 3,
        evidence_method: str = "auto",
        learn_rate_scale: float = LEARN_RATE_SCALE,
    ) -> None:
        """
        vocab (Vocab): The shared vocabulary.
        model (Model): A `SpanAttentionTextCat` model.
        name (str): The component instance name.
        threshold (float): Cutoff to consider a prediction "positive".
        scorer (Optional[Callable]): The scoring method.
        evidence_key (Optional[str]): Key of the evidence span group; "{name}"
            is replaced by `name`. None to write no evidence.
        evidence_top_k (int): Number of spans kept per label and doc.
        evidence_method (str): "attention", "occlusion_estimate" or "auto".
        learn_rate_scale (float): Multiplier of the optimizer's learning rate
            for this component's weights.
        """
        super().__init__(
            vocab,
            model,
            name,
            threshold=threshold,
            scorer=scorer,
            evidence_key=evidence_key,
            evidence_top_k=evidence_top_k,
            evidence_method=evidence_method,
            learn_rate_scale=learn_rate_scale,
        )
