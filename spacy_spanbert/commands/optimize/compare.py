"""How closely an optimized pipeline follows its original on the same
texts: the share of docs with identical entities and top category, and the
largest differences of the transformer output and of the span vectors."""

from typing import Any, Dict, Iterable, List, Optional

import numpy
from spacy.language import Language
from spacy.tokens import Doc


def compare_pipelines(
    original: Language, optimized: Language, texts: Iterable[str], *, batch_size: int = 16
) -> Dict[str, Any]:
    """Run both pipelines over `texts` and compare their outputs.

    original (Language): The pipeline that was optimized.
    optimized (Language): The optimized pipeline.
    texts (Iterable[str]): The texts to compare on.
    batch_size (int): The `nlp.pipe` batch size of both.
    RETURNS (Dict[str, Any]): n_docs; ents_agreement (share of docs with
        identical entities); top_cat_agreement (share of docs with the same
        top category; None without cats); max_transformer_diff and
        max_span_vector_diff (largest absolute differences; None where the
        pipelines write no such output).
    """
    texts = list(texts)
    same_ents = same_cats = n_cats = 0
    trf_diffs: List[float] = []
    span_diffs: List[float] = []
    pairs = zip(original.pipe(texts, batch_size=batch_size), optimized.pipe(texts, batch_size=batch_size))
    for a, b in pairs:
        same_ents += _ents(a) == _ents(b)
        if a.cats:
            n_cats += 1
            same_cats += max(a.cats, key=a.cats.get) == max(b.cats, key=b.cats.get)
        trf_diffs.extend(_max_diff(x, y) for x, y in [_transformer_outputs(a, b)] if x is not None)
        span_diffs.extend(_max_diff(x, y) for x, y in _span_vectors(a, b))
    return {
        "n_docs": len(texts),
        "ents_agreement": same_ents / len(texts) if texts else None,
        "top_cat_agreement": same_cats / n_cats if n_cats else None,
        "max_transformer_diff": max(trf_diffs, default=None),
        "max_span_vector_diff": max(span_diffs, default=None),
    }


def _ents(doc: Doc) -> List[tuple]:
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


def _max_diff(x: numpy.ndarray, y: numpy.ndarray) -> float:
    if x.size == 0:
        return 0.0
    return float(numpy.abs(numpy.asarray(x, dtype="f") - numpy.asarray(y, dtype="f")).max())


def _transformer_outputs(a: Doc, b: Doc):
    """The last hidden states both docs carry in `doc._.trf_data` at their
    real word pieces (padding positions carry no meaning, and an optimized
    transformer leaves them zero), or (None, None)."""
    if not Doc.has_extension("trf_data") or a._.trf_data is None or b._.trf_data is None:
        return None, None
    x: Optional[Any] = a._.trf_data.model_output.get("last_hidden_state")
    y: Optional[Any] = b._.trf_data.model_output.get("last_hidden_state")
    if x is None or y is None or x.shape != y.shape:
        return None, None
    real = numpy.asarray(a._.trf_data.wordpieces.attention_mask, dtype=bool)
    return numpy.asarray(x)[real], numpy.asarray(y)[real]


def _span_vectors(a: Doc, b: Doc):
    """Pairs of span-vector arrays (`attrs["vectors"]`, `attrs["doc_vector"]`)
    of the span groups both docs have, with the same candidates."""
    for key, group in a.spans.items():
        other = b.spans.get(key)
        if other is None or len(other) != len(group):
            continue
        for attr in ("vectors", "doc_vector"):
            x, y = group.attrs.get(attr), other.attrs.get(attr)
            if x is not None and y is not None and numpy.shape(x) == numpy.shape(y):
                yield numpy.asarray(x), numpy.asarray(y)
