"""SpanBertListener: how a head receives the span encoder's output."""
from typing import Callable, List, Optional

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Ragged

from ..data_classes import SpanBatch
from ..util import check_positive, group_offsets

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
            raise ValueError(
                "spanbert listener: no output was received from the 'spanbert' "
                "component for this batch. During training, 'spanbert' must be "
                "in the pipeline before its heads and must not be excluded from "
                "the update; use 'frozen_components' plus 'annotating_components' "
                "to freeze it instead."
            )
        batch_id = self.get_batch_id(inputs)
        if batch_id != self._batch_id:
            raise ValueError(
                f"spanbert listener: mismatched batch ({batch_id} vs "
                f"{self._batch_id}): the head was updated on other docs than "
                f"'spanbert'. Update them with the same examples."
            )
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
    ops = model.ops
    key = model.attrs.get("spans_key") or "spanbert"
    width = model.get_dim("nO") if model.has_dim("nO") is True else None
    rows = []
    lengths = []
    vectors = []
    doc_vectors = []
    for doc in docs:
        if key not in doc.spans:
            if len(doc) == 0:
                group = []
            else:
                raise ValueError(
                    f"spanbert listener: doc.spans['{key}'] is missing, so the "
                    f"span encoder has not run on this doc. Add the 'spanbert' "
                    f"component before its heads (nlp.add_pipe('spanbert', "
                    f"before=...)), don't disable it, and put any "
                    f"'spanbert_cleaner' after all heads."
                )
        else:
            group = doc.spans[key]
        attrs = getattr(group, "attrs", {})
        if len(doc) and "vectors" not in attrs:
            raise ValueError(
                f"spanbert listener: doc.spans['{key}'] has no attrs['vectors']. "
                f"Set store_vectors = true on the 'spanbert' component so its "
                f"heads can read the span vectors, and put any 'spanbert_cleaner' "
                f"after all heads."
            )
        if len(doc) and len(attrs["vectors"]) != len(group):
            raise ValueError(
                f"spanbert listener: doc.spans['{key}'] has {len(group)} spans but "
                f"attrs['vectors'] has {len(attrs['vectors'])} rows: the group was "
                f"changed after 'spanbert' ran. Put extra spans in a group of "
                f"their own, or run 'spanbert' again on the doc."
            )
        rows.append(group_offsets(group) if len(group) else numpy.zeros((0, 2), "int32"))
        lengths.append(len(group))
        if len(group):
            vectors.append(numpy.asarray(attrs["vectors"], dtype="float32"))
        if "doc_vector" in attrs:
            doc_vectors.append(numpy.asarray(attrs["doc_vector"], dtype="float32"))
            width = width or doc_vectors[-1].shape[0]
        else:
            doc_vectors.append(None)
    if width is None:
        raise ValueError(
            "spanbert listener: the span vector width is unknown: initialize the "
            "pipeline (nlp.initialize()) before using the heads."
        )
    doc_vectors = [v if v is not None else numpy.zeros((width,), "f") for v in doc_vectors]
    span_array = numpy.concatenate(rows) if rows else numpy.zeros((0, 2), "int32")
    vec_array = join_rows(vectors) if vectors else numpy.zeros((0, width), "f")
    return SpanBatch(
        Ragged(ops.asarray2i(span_array), ops.asarray1i(lengths)),
        ops.asarray2f(vec_array),
        ops.asarray2f(numpy.stack(doc_vectors).reshape((len(docs), width))),
    )


def join_rows(arrays: List[numpy.ndarray]) -> numpy.ndarray:
    """Concatenate 2-D arrays of one dtype and width along the rows.

    `spanbert` stores each doc's span vectors as a slice of one array per
    batch, so when the docs of a batch are read back in the same order their
    arrays are consecutive in memory: then one view over them is returned
    instead of a copy. Anything else is concatenated. The view is writeable
    like the stored arrays themselves (heads only read their input; thinc
    layers never write to it), because a read-only input sends the heads'
    matrix products from torch to numpy's BLAS (`TorchGemmOps`).
    """
    first = arrays[0]
    if len(arrays) == 1:
        return first
    width = first.shape[1]
    address = first.__array_interface__["data"][0]
    contiguous = True
    for array in arrays:
        if (
            array.dtype != first.dtype
            or array.shape[1] != width
            or not array.flags.c_contiguous
            or array.__array_interface__["data"][0] != address
            or array.base is not first.base
            or array.base is None
        ):
            contiguous = False
            break
        address += array.nbytes
    if not contiguous:
        return numpy.concatenate(arrays)
    rows = sum(array.shape[0] for array in arrays)
    return numpy.lib.stride_tricks.as_strided(
        first, shape=(rows, width), strides=(width * first.itemsize, first.itemsize)
    )


def _empty_backprop(d_batch):
    return []
