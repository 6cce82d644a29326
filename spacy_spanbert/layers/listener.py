"""SpanBertListener: how a head receives the span encoder's output."""

from typing import Any, Callable, List, Optional

import numpy
from spacy.tokens import Doc
from spacy.util import replace_model_node
from thinc.api import Model
from thinc.types import Ragged

from ..data_classes import SpanBatch
from ..errors import Errors, check_positive
from ..span_vectors import DEFAULT_SPANS_KEY, group_offsets

InT = List[Doc]
OutT = SpanBatch


class SpanBertListener(Model):
    """A layer that gets fed its answers from the upstream `spanbert`
    component, as `Tok2VecListener` does for `tok2vec`.

    During `update`, the encoder calls `receive` with its output and a backprop
    callback. At prediction time the listener reads what the encoder stored on
    the docs: `doc.spans[spans_key]` and its `attrs["vectors"]` and
    `attrs["doc_vector"]`.
    """

    name = "spanbert-listener"

    def __init__(self, upstream_name: str, width: Optional[int] = None) -> None:
        """
        upstream_name (str): The name of the `spanbert` component to listen to,
            or "*" for any.
        width (Optional[int]): Width of the span vectors; set by the upstream
            component when it registers this listener.
        """
        if width is not None:
            check_positive("spacy-spanbert.SpanBertListener.v1", "width", width)
        Model.__init__(
            self,
            name=self.name,
            forward=forward,
            dims={"nO": width},
            attrs={"spans_key": None},
        )
        self.upstream_name = upstream_name
        self._batch_id: Optional[int] = None
        self._outputs: Optional[SpanBatch] = None
        self._backprop: Optional[Callable] = None

    @classmethod
    def get_batch_id(cls, inputs: List[Doc]) -> int:
        """A content-sensitive hash of a batch of docs."""
        return sum(sum(token.orth for token in doc) for doc in inputs)

    def receive(self, batch_id: int, outputs: SpanBatch, backprop: Callable) -> None:
        """Store a batch of training outputs and the callback to backprop them."""
        self._batch_id = batch_id
        self._outputs = outputs
        self._backprop = backprop

    def verify_inputs(self, inputs: List[Doc]) -> bool:
        if self._batch_id is None and self._outputs is None:
            raise ValueError(Errors.E020)
        batch_id = self.get_batch_id(inputs)
        if batch_id != self._batch_id:
            raise ValueError(Errors.E021.format(got=batch_id, expected=self._batch_id))
        return True

    def backprop_and_clear(self, d_batch: SpanBatch):
        """Call the stored backprop callback once, then drop the references."""
        result = self._backprop(d_batch) if self._backprop is not None else None
        self._batch_id = None
        self._outputs = None
        self._backprop = None
        return result


def forward(model: SpanBertListener, docs: InT, is_train: bool):
    if is_train and model._batch_id is not None:
        model.verify_inputs(docs)
        return model._outputs, model.backprop_and_clear
    # Prediction (or a frozen encoder in training): read what the encoder stored.
    return read_span_batch(model, docs), _empty_backprop


def read_span_batch(model: SpanBertListener, docs: InT) -> SpanBatch:
    """The SpanBatch that `spanbert` stored on already processed docs."""
    ops = model.ops
    key = model.attrs.get("spans_key") or DEFAULT_SPANS_KEY
    width = model.get_dim("nO") if model.has_dim("nO") is True else None
    rows = []
    vectors = []
    doc_vectors = []
    for doc in docs:
        if key not in doc.spans:
            if len(doc):
                raise ValueError(Errors.E022.format(key=key))
            rows.append(numpy.zeros((0, 2), "int32"))
            doc_vectors.append(None)
            continue
        group = doc.spans[key]
        attrs = group.attrs
        if len(doc) and "vectors" not in attrs:
            raise ValueError(Errors.E023.format(key=key))
        if len(doc) and len(attrs["vectors"]) != len(group):
            raise ValueError(Errors.E024.format(key=key, n_spans=len(group), n_rows=len(attrs["vectors"])))
        rows.append(group_offsets(group))
        if len(group):
            vectors.append(numpy.asarray(attrs["vectors"], dtype="float32"))
        doc_vector = attrs.get("doc_vector")
        doc_vectors.append(None if doc_vector is None else numpy.asarray(doc_vector, dtype="float32"))
        if width is None and doc_vector is not None:
            width = len(doc_vector)
    if width is None:
        raise ValueError(Errors.E025)
    doc_vectors = [numpy.zeros((width,), "f") if v is None else v for v in doc_vectors]
    lengths = [len(r) for r in rows]
    return SpanBatch(
        Ragged(ops.asarray2i(numpy.concatenate(rows)), ops.asarray1i(lengths)),
        ops.asarray2f(numpy.concatenate(vectors) if vectors else numpy.zeros((0, width), "f")),
        ops.asarray2f(numpy.stack(doc_vectors).reshape((len(docs), width))),
    )


def _empty_backprop(d_batch):
    return []


# -- nlp.replace_listeners("spanbert", head, [path]) -------------------------


def token_vector_listeners(model: Model) -> List[Model]:
    """RETURNS (List[Model]): The nodes of `model` that listen to a `tok2vec`
    or `transformer` component."""
    from spacy.pipeline.tok2vec import Tok2VecListener
    from spacy_transformers.layers import TransformerListener

    return [node for node in model.walk() if isinstance(node, (Tok2VecListener, TransformerListener))]


def _fresh_listener(node: Model) -> Model:
    """A new, unattached listener of the same kind and upstream as `node`."""
    from spacy.pipeline.tok2vec import Tok2VecListener
    from spacy_transformers.layers import TransformerListener

    if isinstance(node, TransformerListener):
        return TransformerListener(upstream_name=node.upstream_name)
    return Tok2VecListener(upstream_name=node.upstream_name, width=node.get_dim("nO"))


def replace_listener(new_model: Model, listener: Model, encoder: Any) -> Model:
    """The fix-up spaCy calls in `nlp.replace_listeners("spanbert", head, paths)`
    (the model attribute `replace_listener`).

    spaCy hands over `encoder.model.copy()`, whose token-vector listeners are
    plain copies that nothing would feed. Each is swapped for a fresh listener
    of the same kind, registered with the component(s) the encoder listens to
    under the head's name: the head then trains the transformer directly.

    new_model (Model): The copy of the encoder's model.
    listener (Model): The head's SpanBertListener being replaced.
    encoder (SpanBert): The `spanbert` component.
    RETURNS (Model): `new_model`, changed in place.
    """
    heads = [name for name, nodes in encoder.listener_map.items() if listener in nodes]
    upstreams = encoder.upstream_components()
    originals = token_vector_listeners(encoder.model)
    if originals and not upstreams:
        raise ValueError(Errors.E016.format(name=encoder.name))
    copies = {id(o): c for o, c in zip(encoder.model.walk(), new_model.walk())}
    for original in originals:
        fresh = _fresh_listener(original)
        replace_model_node(new_model, copies[id(original)], fresh)
        for upstream in upstreams:
            for head in heads:
                upstream.add_listener(fresh, head)
    return new_model
