"""The `spanbert` component: candidate spans -> span vectors on `doc.spans`."""

import warnings
import weakref
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from .data_classes import SpanBatch, doc_rows
from .errors import Errors, Warnings, check_key
from .layers.listener import SpanBertListener, token_vector_listeners
from .learn_rate import LEARN_RATE_SCALE, ScaledLearnRateMixin, check_learn_rate_scale
from .span_vectors import DEFAULT_SPANS_KEY, SpanVectorHooks, install_extensions, span_group_from_rows
from .suggesters import PresetSpansSuggester

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

# What a suggester's `requires` entries need, and what meets them.
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
        "spans_key": DEFAULT_SPANS_KEY,
        "store_vectors": True,
        "learn_rate_scale": LEARN_RATE_SCALE,
    },
    default_score_weights={},
)
def make_spanbert(
    nlp: Language,
    name: str,
    model: Model[List[Doc], SpanBatch],
    spans_key: str,
    store_vectors: bool,
    learn_rate_scale: float,
) -> "SpanBert":
    """Create a `spanbert` span encoder.

    model (Model[List[Doc], SpanBatch]): The span encoder model; its
        `suggester` proposes the candidate spans.
    spans_key (str): Write the candidate spans to `doc.spans[spans_key]`.
    store_vectors (bool): Store `attrs["vectors"]` on the group. Heads read
        them at prediction time, so keep it true when heads listen.
    learn_rate_scale (float): Train this component's own weights at this
        multiple of the optimizer's learning rate.
    """
    return SpanBert(
        nlp.vocab,
        model,
        name=name,
        spans_key=spans_key,
        store_vectors=store_vectors,
        learn_rate_scale=learn_rate_scale,
        nlp=nlp,
    )


class _PipelineRef:
    """A weak reference to the pipeline a component belongs to, which pickles
    as an empty reference (a pipeline is never pickled along with a part)."""

    def __init__(self, nlp: Optional[Language] = None) -> None:
        self._ref = weakref.ref(nlp) if nlp is not None else None

    def __call__(self) -> Optional[Language]:
        return self._ref() if self._ref is not None else None

    def __reduce__(self):
        return (_PipelineRef, ())


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
        spans_key: str = DEFAULT_SPANS_KEY,
        store_vectors: bool = True,
        learn_rate_scale: float = LEARN_RATE_SCALE,
        nlp: Optional[Language] = None,
    ) -> None:
        """
        vocab (Vocab): The shared vocabulary.
        model (Model[List[Doc], SpanBatch]): The span encoder model.
        name (str): The component instance name.
        spans_key (str): Key of the span group to write.
        store_vectors (bool): Whether to store the span vectors on the docs.
        learn_rate_scale (float): Multiplier of the optimizer's learning rate
            for this component's weights.
        nlp (Optional[Language]): The pipeline, held by weak reference so that
            `nlp.replace_listeners` finds the components this one listens to.
        """
        check_key(name, "spans_key", spans_key)
        if "suggester" not in model.attrs:
            raise ValueError(Errors.E010.format(name=name, layer=model.name))
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: Dict[str, Any] = {
            "spans_key": spans_key,
            "store_vectors": bool(store_vectors),
            "learn_rate_scale": check_learn_rate_scale(name, learn_rate_scale),
        }
        self.listener_map: Dict[str, List[SpanBertListener]] = {}
        self._nlp = _PipelineRef(nlp)
        install_extensions()

    @property
    def suggester(self) -> Callable:
        """RETURNS (Callable): The suggester of the candidate spans."""
        return self.model.attrs["suggester"]

    @property
    def spans_key(self) -> str:
        """RETURNS (str): The key of the span group written."""
        return self.cfg["spans_key"]

    def upstream_components(self) -> List[Any]:
        """RETURNS (List): The components (transformer / tok2vec) whose
        listener maps hold this component's token-vector listeners."""
        nlp = self._nlp()
        if nlp is None:
            return []
        nodes = token_vector_listeners(self.model)
        return [
            comp
            for _, comp in nlp.pipeline
            if comp is not self
            and any(node in group for group in (getattr(comp, "listener_map", None) or {}).values() for node in nodes)
        ]

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
        if not self.model.shims[0].is_built:
            raise ValueError(Errors.E009.format(name=self.name))
        return self.model.predict(list(docs))

    def set_annotations(self, docs: Iterable[Doc], batch: SpanBatch) -> None:
        """Write the candidate spans (and their vectors) to `doc.spans`.

        docs (Iterable[Doc]): The documents to modify.
        batch (SpanBatch): The output of `predict`.
        """
        ops = self.model.ops
        vectors = ops.to_numpy(batch.vectors).astype("float32", copy=False)
        doc_vectors = ops.to_numpy(batch.doc_vectors).astype("float32", copy=False)
        key = self.spans_key
        for i, (doc, (rows, offsets)) in enumerate(zip(docs, doc_rows(ops, batch.indices))):
            attrs = {}
            if self.cfg["store_vectors"]:
                attrs["vectors"] = vectors[rows].copy()
                attrs["doc_vector"] = doc_vectors[i].copy()
                # The spans' [start, end) rows, so that heads read them back
                # without making a Python Span per candidate.
                attrs["offsets"] = offsets.copy()
                hooks = SpanVectorHooks(key)
                doc.user_span_hooks["vector"] = hooks.vector
                doc.user_span_hooks["similarity"] = hooks.similarity
            doc.spans[key] = span_group_from_rows(doc, key, offsets, attrs)

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
        set_dropout_rate(self.model, drop)
        batch, bp_batch = self.model.begin_update(docs)
        ops = self.model.ops
        d_vectors = ops.alloc2f(*batch.vectors.shape)
        d_doc_vectors = ops.alloc2f(*batch.doc_vectors.shape)

        def accumulate_gradient(d_batch: SpanBatch) -> None:
            nonlocal d_vectors, d_doc_vectors
            d_vectors += d_batch.vectors
            d_doc_vectors += d_batch.doc_vectors
            losses[self.name] += float((d_batch.vectors**2).sum()) + float((d_batch.doc_vectors**2).sum())

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
        """Check the pipeline around the component and infer the model's widths
        from sample docs.

        get_examples (Callable[[], Iterable[Example]]): Returns sample examples.
        nlp (Optional[Language]): The pipeline, to check that a transformer or
            tok2vec feeds this component and that the suggester's needs are met.
        """
        validate_get_examples(get_examples, "SpanBert.initialize")
        docs = [eg.predicted for eg in islice(get_examples(), 32)]
        if nlp is not None and self.name in nlp.pipe_names:
            self._nlp = _PipelineRef(nlp)
            self._check_pipeline(nlp)
        self.model.initialize(X=docs)
        width = self.model.get_dim("nO")
        for head, listeners in self.listener_map.items():
            for listener in listeners:
                if listener.has_dim("nO") is True and listener.get_dim("nO") != width:
                    raise ValueError(
                        Errors.E017.format(head=head, expected=listener.get_dim("nO"), name=self.name, width=width)
                    )
                listener.set_dim("nO", width)
        self._check_suggester(docs)
        self._check_wordpiece_limits()

    # -- checks at initialize ------------------------------------------------------

    def _check_pipeline(self, nlp: Language) -> None:
        """Raise unless every token-vector listener of the model is fed by a
        component before this one, every SpanBertListener of the pipeline
        listens to an existing encoder, and the suggester's needs are met."""
        names = nlp.pipe_names
        before = names[: names.index(self.name)]
        encoders = [name for name, comp in nlp.pipeline if isinstance(comp, SpanBert)]
        for name, comp in nlp.pipeline:
            model = getattr(comp, "model", None)
            if comp is self or not isinstance(model, Model):
                continue
            for node in model.walk():
                if isinstance(node, SpanBertListener) and node.upstream_name not in ["*"] + encoders:
                    raise ValueError(Errors.E018.format(head=name, upstream=node.upstream_name, encoders=encoders))
        for node in token_vector_listeners(self.model):
            listener_maps = [getattr(nlp.get_pipe(n), "listener_map", None) or {} for n in before]
            if not any(node in group for listener_map in listener_maps for group in listener_map.values()):
                raise ValueError(
                    Errors.E012.format(name=self.name, pipeline=names, hint=self._listener_hint(nlp, node))
                )
        assigned = set()
        for name in before:
            assigned.update(nlp.get_pipe_meta(name).assigns)
        for req in getattr(self.suggester, "requires", None) or []:
            if not (_REQUIREMENT_ASSIGNS.get(req, {req}) & assigned):
                hint = _REQUIREMENT_HINTS.get(req, f"a component that sets {req}")
                raise ValueError(Errors.E013.format(name=self.name, requirement=req, pipeline=names, hint=hint))

    def _listener_hint(self, nlp: Language, node: Model) -> str:
        """How to connect the token-vector listener `node`: name the right
        listener when the pipeline has the other kind of upstream component."""
        from spacy.pipeline.tok2vec import Tok2VecListener

        factories = {name: nlp.get_pipe_meta(name).factory for name in nlp.pipe_names}
        tok2vecs = [n for n, f in factories.items() if f == "tok2vec"]
        transformers = [n for n, f in factories.items() if f == "transformer"]
        path = f"components.{self.name}.model.tok2vec"
        if tok2vecs and not isinstance(node, Tok2VecListener):
            return (
                f"The pipeline has a 'tok2vec' component ('{tok2vecs[0]}'), but '{self.name}' "
                f"listens with {node.name}, which only a 'transformer' feeds. Set {path} to "
                f'@architectures = "spacy.Tok2VecListener.v1", width = ${{components.'
                f'{tok2vecs[0]}.model.encode.width}}, upstream = "{tok2vecs[0]}" (see '
                f"configs/tok2vec_ner.cfg)."
            )
        if transformers and isinstance(node, Tok2VecListener):
            return (
                f"The pipeline has a 'transformer' component ('{transformers[0]}'), but "
                f"'{self.name}' listens with a Tok2VecListener. Set {path} to "
                f'@architectures = "spacy-transformers.TransformerListener.v1", '
                f'upstream = "{transformers[0]}", with a pooling layer.'
            )
        return (
            f"Add one first, e.g. nlp.add_pipe('transformer', before='{self.name}'), or "
            f"give {path} a self-contained layer such as spacy.Tok2Vec.v2."
        )

    def _check_suggester(self, docs: List[Doc]) -> None:
        """Raise if the suggester finds no candidates in any sample doc."""
        docs = [doc for doc in docs if len(doc)]
        if not docs or getattr(self.suggester, "requires", None) or isinstance(self.suggester, PresetSpansSuggester):
            return  # candidates that depend on annotations set at run time
        if int(self.suggester(docs, ops=self.model.ops).lengths.sum()) == 0:
            raise ValueError(Errors.E014.format(name=self.name, n_docs=len(docs)))

    def _check_wordpiece_limits(self) -> None:
        """Warn when an upstream transformer would feed its model more
        wordpieces than it has positions: spacy-transformers truncates windows
        only to the tokenizer's `model_max_length`, so a longer window (a long
        URL, a run of CJK or emoji) would make it fail at prediction time."""
        for comp in self.upstream_components():
            model = getattr(comp, "model", None)
            max_length = getattr(getattr(model, "tokenizer", None), "model_max_length", None)
            config = getattr(getattr(model, "transformer", None), "config", None)
            positions = getattr(config, "max_position_embeddings", None)
            if isinstance(max_length, int) and isinstance(positions, int) and max_length > positions:
                shown = max_length if max_length < 10**9 else "unset"
                warnings.warn(
                    Warnings.W002.format(name=self.name, shown=shown, positions=positions), UserWarning, stacklevel=2
                )
                return
