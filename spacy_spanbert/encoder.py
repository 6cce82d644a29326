"""The `spanbert` component: candidate spans -> span vectors on `doc.spans`."""
import warnings
import weakref
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from .data_classes import SpanBatch
from .layers.listener import SpanBertListener
from .util import (
    LEARN_RATE_SCALE,
    ScaledLearnRateMixin,
    SpanVectorHooks,
    check_learn_rate_scale,
    install_extensions,
    span_group_from_rows,
    token_vector_listeners,
)
from .suggesters import PresetSpansSuggester, adapt_suggester

DEFAULT_SPANBERT_MODEL_CONFIG = """
[model]
@architectures = "spacy-spanbert.SpanEncoder.v1"
hidden_width = null
n_heads = 4
n_layers = 1
window = 8
dropout = 0.1

[model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[model.tok2vec.pooling]
@layers = "reduce_mean.v1"

[model.suggester]
@misc = "spacy-spanbert.ngram_suggester.v1"
min_size = 1
max_size = 8
"""
DEFAULT_SPANBERT_MODEL = Config().from_str(DEFAULT_SPANBERT_MODEL_CONFIG)["model"]

# Requirements a suggester can declare, and which pipeline attributes meet them.
_REQUIREMENT_HINTS = {
    "token.dep": "a 'parser' (e.g. sourced from en_core_web_sm)",
    "token.is_sent_start": "a 'sentencizer', 'senter' or 'parser'",
    "doc.ents": "an 'ner' or 'entity_ruler'",
}
_REQUIREMENT_ASSIGNS = {
    "token.dep": {"token.dep"},
    "token.is_sent_start": {"token.is_sent_start", "doc.sents", "token.dep"},
    "doc.ents": {"doc.ents", "token.ent_iob", "token.ent_type"},
}


@Language.factory(
    "spanbert",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_SPANBERT_MODEL,
        "suggester": None,
        "spans_key": "spanbert",
        "store_vectors": True,
        "learn_rate_scale": LEARN_RATE_SCALE,
    },
    default_score_weights={},
)
def make_spanbert(
    nlp: Language,
    name: str,
    model: Model[List[Doc], SpanBatch],
    suggester: Optional[Callable],
    spans_key: str,
    store_vectors: bool,
    learn_rate_scale: float,
) -> "SpanBert":
    """Create a `spanbert` span encoder.

    model (Model[List[Doc], SpanBatch]): The span encoder model.
    suggester (Optional[Callable]): Candidate spans; overrides the model's
        `suggester` when given (spaCy's suggesters work too).
    spans_key (str): Write the candidate spans to `doc.spans[spans_key]`.
    store_vectors (bool): Store `attrs["vectors"]` on the group. Heads read
        them at prediction time, so keep it true when heads listen.
    learn_rate_scale (float): Train this component's own weights at this
        multiple of the optimizer's learning rate (the transformer keeps the
        optimizer's rate).
    """
    return SpanBert(
        nlp.vocab,
        model,
        name=name,
        nlp=nlp,
        suggester=suggester,
        spans_key=spans_key,
        store_vectors=store_vectors,
        learn_rate_scale=learn_rate_scale,
    )


# component -> weak reference to the Language that created it
_PIPELINES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class SpanBert(ScaledLearnRateMixin, TrainablePipe):
    """Encode candidate spans with span-level attention and share the span
    vectors with downstream heads through `SpanBertListener` layers, the way
    `Tok2Vec` shares token vectors."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], SpanBatch],
        name: str = "spanbert",
        *,
        suggester: Optional[Callable] = None,
        spans_key: str = "spanbert",
        store_vectors: bool = True,
        learn_rate_scale: float = LEARN_RATE_SCALE,
        nlp: Optional[Language] = None,
    ) -> None:
        """
        vocab (Vocab): The shared vocabulary.
        model (Model[List[Doc], SpanBatch]): The span encoder model.
        name (str): The component instance name.
        suggester (Optional[Callable]): Overrides the model's suggester.
        spans_key (str): Key of the span group to write.
        store_vectors (bool): Whether to store the span vectors on the docs.
        learn_rate_scale (float): Multiplier of the optimizer's learning rate
            for this component's weights.
        nlp (Optional[Language]): The pipeline, held by weak reference to find
            the component(s) this one listens to (not serialized).
        """
        if not isinstance(spans_key, str) or not spans_key:
            raise ValueError(
                f"{name}: spans_key must be a non-empty string, got {spans_key!r}."
            )
        if "suggester" not in model.attrs:
            raise ValueError(
                f"{name}: the model must be a span encoder such as "
                f"spacy-spanbert.SpanEncoder.v1, got the layer '{model.name}'."
            )
        if suggester is not None:
            model.attrs["suggester"] = adapt_suggester(suggester)
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: Dict = {
            "spans_key": spans_key,
            "store_vectors": bool(store_vectors),
            "learn_rate_scale": check_learn_rate_scale(name, learn_rate_scale),
        }
        self.listener_map: Dict[str, List[SpanBertListener]] = {}
        self.upstream_components: List = []
        self._warned_truncation = False
        self._truncation_limit_for: Optional[Tuple[int, ...]] = None
        self._truncation_limit: Optional[int] = None
        if nlp is not None:
            # Kept outside the instance so that pickling never sees it.
            _PIPELINES[self] = weakref.ref(nlp)
        install_extensions()

    def find_upstream_components(self) -> List:
        """RETURNS (List): The components (transformer / tok2vec) whose
        listener maps hold this component's token-vector listeners."""
        ref = _PIPELINES.get(self)
        nlp = ref() if ref is not None else None
        if nlp is None:
            return list(self.upstream_components)
        nodes = list(token_vector_listeners(self.model))
        found = []
        for _, comp in nlp.pipeline:
            if comp is self:
                continue
            listener_map = getattr(comp, "listener_map", None) or {}
            if any(node in group for group in listener_map.values() for node in nodes):
                found.append(comp)
        return found or list(self.upstream_components)

    @property
    def suggester(self) -> Callable:
        return self.model.attrs["suggester"]

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    # -- ListenedToComponent protocol (spacy/ty.py) --------------------------

    @property
    def listeners(self) -> List[SpanBertListener]:
        """RETURNS (List[SpanBertListener]): The listener layers of the heads."""
        return [m for c in self.listening_components for m in self.listener_map[c]]

    @property
    def listening_components(self) -> List[str]:
        """RETURNS (List[str]): The names of the heads listening to this component."""
        return list(self.listener_map.keys())

    def add_listener(self, listener: SpanBertListener, component_name: str) -> None:
        """Register a listener of a downstream component. Usually internals."""
        self.listener_map.setdefault(component_name, [])
        if listener not in self.listener_map[component_name]:
            self.listener_map[component_name].append(listener)
        listener.attrs["spans_key"] = self.spans_key
        if self.model.has_dim("nO") is True and listener.has_dim("nO") is not True:
            listener.set_dim("nO", self.model.get_dim("nO"))

    def remove_listener(self, listener: SpanBertListener, component_name: str) -> bool:
        """Remove a listener of a downstream component. Usually internals."""
        if listener in self.listener_map.get(component_name, []):
            self.listener_map[component_name].remove(listener)
            if not self.listener_map[component_name]:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        """Register the SpanBertListener layers of `component` whose upstream
        name is this component's name or "*"."""
        names = ("*", self.name)
        if isinstance(getattr(component, "model", None), Model):
            for node in component.model.walk():
                if isinstance(node, SpanBertListener) and node.upstream_name in names:
                    self.add_listener(node, component.name)

    # -- prediction ------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> SpanBatch:
        """Encode the candidate spans of a batch of docs, without changing them.

        docs (Iterable[Doc]): The documents.
        RETURNS (SpanBatch): Candidate spans and their vectors.
        """
        docs = list(docs)
        self._check_initialized()
        self._check_upstream(docs)
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], batch: SpanBatch) -> None:
        """Write the candidate spans (and their vectors) to `doc.spans`.

        docs (Iterable[Doc]): The documents to modify.
        batch (SpanBatch): The output of `predict`.
        """
        ops = self.model.ops
        indices = ops.to_numpy(batch.indices.dataXd)
        lengths = ops.to_numpy(batch.indices.lengths)
        vectors = ops.to_numpy(batch.vectors).astype("float32", copy=False)
        doc_vectors = ops.to_numpy(batch.doc_vectors).astype("float32", copy=False)
        key = self.spans_key
        offset = 0
        for i, doc in enumerate(docs):
            n = int(lengths[i])
            rows = indices[offset : offset + n]
            attrs = {}
            if self.cfg["store_vectors"]:
                attrs["vectors"] = numpy.ascontiguousarray(vectors[offset : offset + n])
                attrs["doc_vector"] = numpy.ascontiguousarray(doc_vectors[i])
                # The same [start, end) rows as the spans, so the heads can
                # read them without making a Python Span per candidate.
                attrs["offsets"] = numpy.ascontiguousarray(rows, dtype="int32")
            doc.spans[key] = span_group_from_rows(doc, key, rows, attrs)
            if self.cfg["store_vectors"]:
                hooks = SpanVectorHooks(key)
                doc.user_span_hooks["vector"] = hooks.vector
                doc.user_span_hooks["similarity"] = hooks.similarity
            offset += n

    # -- training --------------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Encode the batch and hand the output and a backprop callback to the
        listeners. All but the last listener accumulate gradient; the last one
        backpropagates through the encoder (and into the transformer).

        examples (Iterable[Example]): A batch of examples (only `predicted` is used).
        drop (float): The dropout rate.
        sgd (Optional[Optimizer]): An optimizer, applied after the backprop.
        losses (Optional[Dict[str, float]]): Updated with the gradient norm
            under this component's name.
        RETURNS (Dict[str, float]): The updated losses dictionary.
        """
        if losses is None:
            losses = {}
        validate_examples(examples, "SpanBert.update")
        losses.setdefault(self.name, 0.0)
        docs = [eg.predicted for eg in examples]
        if not self.listeners or not any(len(doc) for doc in docs):
            return losses
        self._check_initialized()
        set_dropout_rate(self.model, drop)
        batch, bp_batch = self.model.begin_update(docs)
        ops = self.model.ops
        d_vectors = ops.alloc2f(*batch.vectors.shape)
        d_doc_vectors = ops.alloc2f(*batch.doc_vectors.shape)

        def accumulate_gradient(d_batch: SpanBatch) -> None:
            nonlocal d_vectors, d_doc_vectors
            d_vectors += d_batch.vectors
            d_doc_vectors += d_batch.doc_vectors
            losses[self.name] += float((d_batch.vectors**2).sum()) + float(
                (d_batch.doc_vectors**2).sum()
            )

        def backprop(d_batch: SpanBatch):
            accumulate_gradient(d_batch)
            d_docs = bp_batch(SpanBatch(batch.indices, d_vectors, d_doc_vectors))
            if sgd is not None:
                self.finish_update(sgd)
            return d_docs

        batch_id = SpanBertListener.get_batch_id(docs)
        for listener in self.listeners[:-1]:
            listener.receive(batch_id, batch, accumulate_gradient)
        self.listeners[-1].receive(batch_id, batch, backprop)
        return losses

    def get_loss(self, examples, scores) -> None:
        """The encoder has no loss of its own: its heads provide the gradient."""
        return None

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
    ) -> None:
        """Infer the model's widths from sample docs and check the pipeline.

        get_examples (Callable[[], Iterable[Example]]): Returns sample examples.
        nlp (Optional[Language]): The pipeline, to check that a transformer or
            tok2vec feeds this component and that the suggester's needs are met.
        """
        validate_get_examples(get_examples, "SpanBert.initialize")
        docs = [eg.predicted for eg in islice(get_examples(), 32)]
        if nlp is not None:
            self._check_pipeline(nlp)
        self.model.initialize(X=docs)
        width = self.model.get_dim("nO")
        for head, listeners in self.listener_map.items():
            for listener in listeners:
                self._check_listener_width(head, listener, width)
                listener.set_dim("nO", width)
        self._check_suggester(docs)
        self._check_wordpiece_limits()

    # -- checks ------------------------------------------------------------------

    def _check_initialized(self) -> None:
        if not self.model.shims[0].is_built:
            raise ValueError(Errors.E109.format(name=self.name) + " Call nlp.initialize() first.")

    def _check_pipeline(self, nlp: Language) -> None:
        names = nlp.pipe_names
        if self.name not in names:
            return
        self._check_listener_upstreams(nlp)
        before = [(n, nlp.get_pipe(n)) for n in names[: names.index(self.name)]]
        self.upstream_components = []
        for node in token_vector_listeners(self.model):
            feeding = [
                comp
                for _, comp in before
                if node in getattr(comp, "listeners", [])
                or any(node in v for v in getattr(comp, "listener_map", {}).values())
            ]
            if not feeding:
                raise ValueError(
                    f"{self.name}: no 'transformer' or 'tok2vec' component before "
                    f"'{self.name}' feeds its token-vector listener (pipeline: "
                    f"{names}). Add one first, e.g. nlp.add_pipe('transformer', "
                    f"before='{self.name}'), or give components.{self.name}.model."
                    f"tok2vec a self-contained layer such as spacy.Tok2Vec.v2."
                )
            for comp in feeding:
                if comp not in self.upstream_components:
                    self.upstream_components.append(comp)
        requires = getattr(self.suggester, "requires", None) or []
        assigned = set()
        for name, _ in before:
            assigned.update(nlp.get_pipe_meta(name).assigns)
        for req in requires:
            if not (_REQUIREMENT_ASSIGNS.get(req, {req}) & assigned):
                hint = _REQUIREMENT_HINTS.get(req, f"a component that sets {req}")
                raise ValueError(
                    f"{self.name}: the suggester needs {req}, but no component "
                    f"before '{self.name}' sets it (pipeline: {names}). Add {hint} "
                    f"before '{self.name}', or choose another suggester."
                )

    def _check_listener_width(self, head: str, listener: SpanBertListener, width: int) -> None:
        if listener.has_dim("nO") is True and listener.get_dim("nO") != width:
            raise ValueError(
                f"{head}: its SpanBertListener expects span vectors of width "
                f"{listener.get_dim('nO')}, but '{self.name}' produces vectors of "
                f"width {width}. Set width = null on the listener (e.g. "
                f"components.{head}.model.tok2vec.width) to take the width from "
                f"'{self.name}', or set it to {width}."
            )

    def _check_listener_upstreams(self, nlp: Language) -> None:
        """Raise if a component has a SpanBertListener whose upstream name is
        neither "*" nor the name of a `spanbert` component: nothing would ever
        send it span vectors."""
        encoders = [name for name, comp in nlp.pipeline if isinstance(comp, SpanBert)]
        for name, comp in nlp.pipeline:
            model = getattr(comp, "model", None)
            if comp is self or not isinstance(model, Model):
                continue
            for node in model.walk():
                if isinstance(node, SpanBertListener) and node.upstream_name not in ["*"] + encoders:
                    raise ValueError(
                        f"{name}: its SpanBertListener listens to "
                        f"'{node.upstream_name}', but the pipeline has no 'spanbert' "
                        f"component of that name (spanbert components: {encoders}). "
                        f"Set the listener's upstream (e.g. components.{name}.model."
                        f"tok2vec.upstream) to one of them, or to \"*\"."
                    )

    def _wordpiece_limits(self) -> List[Tuple[int, int]]:
        """RETURNS (List[Tuple[int, int]]): For each upstream transformer, the
        most wordpieces its tokenizer lets through per window
        (`model_max_length`) and the model's `max_position_embeddings`."""
        limits = []
        for comp in self.find_upstream_components():
            # None unless comp is a loaded spacy-transformers component.
            model = getattr(comp, "model", None)
            max_length = getattr(getattr(model, "tokenizer", None), "model_max_length", None)
            config = getattr(getattr(model, "transformer", None), "config", None)
            positions = getattr(config, "max_position_embeddings", None)
            if isinstance(max_length, int) and isinstance(positions, int):
                limits.append((max_length, positions))
        return limits

    def _check_wordpiece_limits(self) -> None:
        """Warn when the transformer would feed its model more wordpieces than
        it has positions: spacy-transformers truncates windows only to the
        tokenizer's `model_max_length`, so a longer window (a long URL, a run
        of CJK or emoji) makes the transformer fail at prediction time."""
        for max_length, positions in self._wordpiece_limits():
            if max_length > positions:
                shown = max_length if max_length < 10**9 else "unset"
                warnings.warn(
                    f"{self.name}: the upstream transformer's tokenizer has "
                    f"model_max_length {shown}, but its model has only {positions} "
                    f"positions, so a window of more than {positions} wordpieces "
                    f"(e.g. a long URL) will crash the pipeline. Set "
                    f"model_max_length = {positions} in [components.transformer."
                    f"model.tokenizer_config] so that spacy-transformers truncates "
                    f"such windows.",
                    UserWarning,
                )
                return

    def _check_suggester(self, docs: List[Doc]) -> None:
        docs = [doc for doc in docs if len(doc)]
        if not docs or getattr(self.suggester, "requires", None):
            return
        if isinstance(self.suggester, PresetSpansSuggester):
            return  # the spans are set by the user or an earlier component at run time
        found = self.suggester(docs, ops=self.model.ops)
        if int(found.lengths.sum()) == 0:
            raise ValueError(
                f"{self.name}: the suggester found no candidate spans in any of the "
                f"{len(docs)} sample docs, so every head would see nothing. Check "
                f"the suggester's settings (e.g. min_size/max_size or its spans key)."
            )

    def _check_upstream(self, docs: List[Doc]) -> None:
        from spacy_transformers.layers import TransformerListener

        if not Doc.has_extension("trf_data"):
            return
        if not any(isinstance(n, TransformerListener) for n in self.model.walk()):
            return
        for doc in docs:
            if len(doc) and doc._.trf_data is None:
                raise ValueError(
                    f"{self.name}: the doc has no transformer output "
                    f"(doc._.trf_data). Run a 'transformer' component before "
                    f"'{self.name}' and don't disable it."
                )
        if not self._warned_truncation:
            self._check_truncation(docs)

    def _cached_truncation_limit(self) -> Optional[int]:
        """The smallest `model_max_length` of the upstream transformers, looked
        up again only when the pipeline's components change: finding them
        walks the pipeline's listener maps, which cost about as much as the
        rest of the check on every batch. (Only this advisory warning reads
        the cache: a `model_max_length` changed in place is not seen.)"""
        ref = _PIPELINES.get(self)
        nlp = ref() if ref is not None else None
        key = tuple(id(comp) for _, comp in nlp.pipeline) if nlp is not None else None
        if key is None or key != self._truncation_limit_for:
            limits = [max_length for max_length, _ in self._wordpiece_limits()]
            self._truncation_limit = min(limits) if limits else None
            self._truncation_limit_for = key
        return self._truncation_limit

    def _check_truncation(self, docs: List[Doc]) -> None:
        """Warn once when a transformer window reached the tokenizer's
        `model_max_length`: spacy-transformers then silently drops the
        wordpieces past the limit, and the tokens they covered get zero vectors."""
        limit = self._cached_truncation_limit()
        if limit is None:
            return
        for doc in docs:
            wordpieces = getattr(doc._.trf_data, "wordpieces", None)
            mask = getattr(wordpieces, "attention_mask", None)
            # Padded to the longest window, so a narrower mask cannot reach it.
            if mask is None or mask.size == 0 or mask.shape[-1] < limit:
                continue
            if int(mask.sum(axis=1).max()) < limit:
                continue
            self._warned_truncation = True
            warnings.warn(
                f"{self.name}: a transformer window reached the tokenizer's limit "
                f"of {limit} wordpieces (model_max_length), so spacy-transformers "
                f"dropped the wordpieces past it: the tokens they covered get zero "
                f"token vectors, and the spans over them carry no information "
                f"(doc: {doc.text[:40]!r}). Use a smaller window in [components."
                f"transformer.model.get_spans], or shorten very long tokens such as "
                f"URLs. This warning is shown once.",
                UserWarning,
            )
            return
