"""Small helpers shared by the components."""
from typing import Any, Dict, Optional

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import replace_model_node
from thinc.api import Model, NumpyOps

SPAN_VECTOR_EXTENSION = "spanbert_vector"

# Default `learn_rate_scale` of the components: the optimizer's own rate.
# A scale of 10 gained on WNUT-17 NER (+1.8 ents_f) and, after the text
# classifiers' cross-entropy fix, slightly on TREC (+0.2 accuracy), one seed
# each and untried elsewhere: not enough to change every pipeline's default
# (benchmarks/README.md).
LEARN_RATE_SCALE = 1.0


def span_group_from_rows(doc: Doc, name: str, rows: numpy.ndarray, attrs: Dict) -> SpanGroup:
    """A group of unlabelled spans of `doc`, one per [start, end) token row,
    in row order; the same group as `SpanGroup(doc, spans=[Span(doc, s, e)
    ...])`, about half as costly.

    `Span(doc, s, e)` makes three `Token` objects to find the character
    offsets, and the group keeps only a copy of each span's C struct. Here the
    offsets come from two numpy columns, and one `Span` is set to each row in
    turn and appended (`SpanGroup.append` copies it): 0.26 against 0.46
    microseconds per span for a 25-token doc's 172 candidates, and no Python
    object per span for the cyclic garbage collector to walk on long docs.

    doc (Doc): The doc the spans belong to.
    name (str): The group's name.
    rows (numpy.ndarray): (n, 2) int token offsets, 0 <= start < end <= len(doc).
    attrs (Dict): The group's attrs.
    RETURNS (SpanGroup): The group.
    """
    group = SpanGroup(doc, name=name, attrs=attrs)
    if rows.shape[0] == 0:
        return group
    starts = rows[:, 0].astype("int64")
    ends = rows[:, 1].astype("int64")
    bad = (starts < 0) | (ends <= starts) | (ends > len(doc))
    if bad.any():
        i = int(numpy.flatnonzero(bad)[0])
        raise ValueError(
            f"spanbert: cannot write the span [{starts[i]}, {ends[i]}) to a doc of "
            f"{len(doc)} tokens; candidate spans must satisfy 0 <= start < end <= len(doc)."
        )
    offsets = doc.to_array([IDX, LENGTH]).astype("int64").reshape((-1, 2))
    start_chars = offsets[starts, 0]
    end_chars = offsets[ends - 1, 0] + offsets[ends - 1, 1]
    span = Span(doc, 0, 0)
    append = group.append
    for s, e, sc, ec in zip(starts.tolist(), ends.tolist(), start_chars.tolist(), end_chars.tolist()):
        span.start = s
        span.end = e
        span.start_char = sc
        span.end_char = ec
        append(span)
    return group


def check_positive(where: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise a ValueError naming `where` unless `value` is a positive int."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        bound = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{where}: {name} must be {bound} integer, got {value!r}.")


def check_learn_rate_scale(where: str, value: Any) -> float:
    """The component setting `learn_rate_scale` as a float, or a ValueError
    naming `where` unless it is a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0.0 < float(value) < float("inf")
    ):
        raise ValueError(
            f"{where}: learn_rate_scale must be a positive number (1.0 trains at "
            f"the optimizer's learning rate), got {value!r}."
        )
    return float(value)


class ScaledLearnRate:
    """An optimizer seen through a learning-rate multiplier: every update it
    makes is `lr_scale * scale` times the optimizer's own step (thinc's
    `Optimizer.__call__(..., lr_scale=...)`). Its state (moments, averages,
    schedules) stays the optimizer's."""

    def __init__(self, optimizer: Any, scale: float) -> None:
        self._optimizer = optimizer
        self._scale = scale

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        return self._optimizer(key, weights, gradient, lr_scale=lr_scale * self._scale)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_optimizer":
            raise AttributeError(name)  # no recursion before __init__ ran
        return getattr(self._optimizer, name)


class ScaledLearnRateMixin:
    """For a trainable pipe with `cfg["learn_rate_scale"]`: `finish_update`
    updates its weights at that multiple of the optimizer's learning rate."""

    def finish_update(self, sgd: Any) -> None:
        """Update the weights with their gradients, at `learn_rate_scale`
        times the optimizer's learning rate.

        sgd (thinc.api.Optimizer): The optimizer.
        """
        scale = self.cfg.get("learn_rate_scale", 1.0)  # type: ignore[attr-defined]
        self.model.finish_update(sgd if scale == 1.0 else ScaledLearnRate(sgd, scale))  # type: ignore[attr-defined]


def use_torch_gemm(model: Model) -> Model:
    """On CPU, run the matrix products of `model`'s layers through torch
    instead of thinc's single-threaded BLIS kernel.

    A span head multiplies every candidate span (about 8 per token), so its
    products dominate its cost; torch uses the same thread pool as the
    transformer. (numpy's BLAS was tried too: its worker threads compete with
    torch's and made batch size 1 twice as slow.) Same maths, parameters and
    serialization; only the kernel changes. Other backends (GPU) are left
    alone, and `to_gpu` replaces these ops as usual.

    model (Model): The model whose nodes get the ops.
    RETURNS (Model): `model`.
    """
    if type(model.ops) is NumpyOps:
        ops = TorchGemmOps()
        for node in model.walk():
            if type(node.ops) is NumpyOps:
                node.ops = ops
    return model


class TorchGemmOps(NumpyOps):
    """NumpyOps whose `gemm` is torch.matmul on zero-copy views."""

    def gemm(self, x, y, out=None, trans1=False, trans2=False):
        import torch

        arrays = (x, y) if out is None else (x, y, out)
        if any(a.dtype != numpy.float32 or not a.flags.writeable for a in arrays):
            return super().gemm(x, y, out=out, trans1=trans1, trans2=trans2)
        a = torch.from_numpy(numpy.ascontiguousarray(x))
        b = torch.from_numpy(numpy.ascontiguousarray(y))
        a = a.t() if trans1 else a
        b = b.t() if trans2 else b
        if out is None:
            return torch.matmul(a, b).numpy()
        if not out.flags.c_contiguous:
            out[...] = torch.matmul(a, b).numpy()
            return out
        torch.matmul(a, b, out=torch.from_numpy(out))
        return out


def token_vector_listeners(model: Model):
    """Yield the nodes of `model` that listen to a tok2vec or transformer."""
    from spacy.pipeline.tok2vec import Tok2VecListener
    from spacy_transformers.layers import TransformerListener

    for node in model.walk():
        if isinstance(node, (Tok2VecListener, TransformerListener)):
            yield node


def _fresh_listener(node: Model) -> Model:
    """A new, unattached listener of the same kind and upstream as `node`."""
    from spacy.pipeline.tok2vec import Tok2VecListener
    from spacy_transformers.layers import TransformerListener

    if isinstance(node, TransformerListener):
        return TransformerListener(upstream_name=node.upstream_name)
    fresh = Tok2VecListener(upstream_name=node.upstream_name, width=node.get_dim("nO"))
    return fresh


def replace_listener(new_model: Model, listener: Model, encoder: Any) -> Model:
    """Fix-up called by `nlp.replace_listeners("spanbert", head, paths)`.

    spaCy hands us `encoder.model.copy()`. thinc's copy turns every node into
    a plain `Model`, so the token-vector listeners inside the copy would no
    longer receive anything. Each is swapped for a fresh listener of the same
    kind, which is registered with the component(s) the encoder listens to,
    under the head's name: the head then trains the transformer directly.
    """
    head_names = [name for name, nodes in encoder.listener_map.items() if listener in nodes]
    originals = list(encoder.model.walk())
    copies = list(new_model.walk())
    if len(originals) != len(copies):  # pragma: no cover - thinc guarantees this
        raise ValueError(
            f"{encoder.name}: cannot replace the listener: the copied encoder model "
            f"does not have the same layers as the original."
        )
    listener_types = tuple(type(n) for n in token_vector_listeners(encoder.model))
    for orig, copied in zip(originals, copies):
        if listener_types and isinstance(orig, listener_types):
            fresh = _fresh_listener(orig)
            replace_model_node(new_model, copied, fresh)
            upstreams = (
                encoder.find_upstream_components()
                if hasattr(encoder, "find_upstream_components")
                else getattr(encoder, "upstream_components", [])
            )
            if not upstreams:
                raise ValueError(
                    f"{encoder.name}: cannot replace the listener: no 'transformer' or "
                    f"'tok2vec' component feeds '{encoder.name}'. Add one before it."
                )
            for upstream in upstreams:
                for head in head_names:
                    upstream.add_listener(fresh, head)
    return new_model


def group_offsets(group: SpanGroup) -> numpy.ndarray:
    """The (n, 2) int32 [start, end) token offsets of a group's spans, in
    group order: `attrs["offsets"]` (what `spanbert` writes, so no Python
    `Span` is made per row) when it matches the group's length, else read
    span by span (a hand-made group, or one saved by an earlier version)."""
    offsets = group.attrs.get("offsets")
    if offsets is None or len(offsets) != len(group):
        offsets = [(span.start, span.end) for span in group]
    return numpy.asarray(offsets, dtype="int32").reshape((-1, 2))


def find_span_vector(span: Span) -> Optional[numpy.ndarray]:
    """The stored spanbert vector of `span`, from any span group that has
    `attrs["vectors"]` and contains a span with the same offsets (and label,
    when the span has one). None if there is none. The rows are found with
    vectorized comparisons over the group's offsets, so reading every
    candidate's vector one span at a time is not quadratic in Python."""
    for group in span.doc.spans.values():
        vectors = group.attrs.get("vectors")
        if vectors is None or len(group) == 0:
            continue
        offsets = group_offsets(group)
        rows = numpy.flatnonzero((offsets[:, 0] == span.start) & (offsets[:, 1] == span.end))
        for i in rows.tolist():
            if not span.label or span.label == group[i].label:
                return numpy.asarray(vectors[i])
    return None


def install_extensions() -> None:
    """Register `Span._.spanbert_vector` once (never forced)."""
    if not Span.has_extension(SPAN_VECTOR_EXTENSION):
        Span.set_extension(SPAN_VECTOR_EXTENSION, getter=find_span_vector)


class SpanVectorHooks:
    """`doc.user_span_hooks` entries that make `span.vector` and
    `span.similarity` use the vectors of one span group on a processed doc."""

    def __init__(self, spans_key: str):
        self.spans_key = spans_key
        self._rows: Optional[Dict] = None

    def _lookup(self, span: Span) -> Optional[numpy.ndarray]:
        group = span.doc.spans.get(self.spans_key) if self.spans_key in span.doc.spans else None
        if group is None or "vectors" not in group.attrs:
            return None
        if self._rows is None or len(self._rows) != len(group):
            self._rows = {(s, e): i for i, (s, e) in enumerate(group_offsets(group).tolist())}
        row = self._rows.get((span.start, span.end))
        return None if row is None else numpy.asarray(group.attrs["vectors"][row])

    def vector(self, span: Span) -> numpy.ndarray:
        found = self._lookup(span)
        if found is not None:
            return found
        # Not a candidate span: fall back to spaCy's default (mean token vector).
        if len(span) == 0:
            return numpy.zeros((span.doc.vocab.vectors_length,), dtype="f")
        return numpy.mean([token.vector for token in span], axis=0)

    def similarity(self, span: Span, other: Any) -> float:
        v1 = self.vector(span)
        v2 = self.vector(other) if isinstance(other, Span) else other.vector
        norm = float(numpy.linalg.norm(v1) * numpy.linalg.norm(v2))
        return float(numpy.dot(v1, v2) / norm) if norm else 0.0
