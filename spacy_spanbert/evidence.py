"""Occlusion estimates: evidence that holds where attention over contextual
span vectors does not.

Leave-one-out occlusion finds the tokens a text classifier's decision rests
on (remove token t, see how much the label's probability drops), at one pass
per token. An occlusion estimator learns that drop from the span vector of
the one-token candidate at t, per label (amortized explanation: Schwab and
Karlen 2019, CXPlain; Jethani et al. 2022, FastSHAP):

    drop_l(t) ~ w_l . v_t + b_l

fitted by ridge regression on real leave-one-out drops of the trained
pipeline on sample docs (`fit_occlusion_estimator`). At prediction time it
costs one small matrix product on vectors the pipeline already has, and the
evidence is the tokens with the largest estimated drops. A label that was the
top label of fewer than `MIN_DOCS_PER_LABEL` sample docs uses the fit over all
docs. The estimator is stored, JSON-safe, in the component's `cfg`.
"""

import time
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from thinc.types import Floats2d, Ragged

from .errors import Errors

MIN_DOCS_PER_LABEL = 30
METHODS = ("auto", "attention", "occlusion_estimate")


def estimate_drops(estimator: Dict[str, Any], indices: Ragged, vectors: Floats2d, ops) -> Floats2d:
    """The estimated drop of each label's probability when a one-token
    candidate's token is removed; -inf for the other candidates.

    estimator (Dict[str, Any]): A fitted estimator (`fit_occlusion_estimator`).
    indices (Ragged): `[start, end)` rows of the candidates.
    vectors (Floats2d): Their span vectors.
    ops (Ops): The ops of the arrays.
    RETURNS (Floats2d): One row per candidate, one column per label.
    """
    offsets = ops.to_numpy(indices.dataXd).reshape((-1, 2))
    X = ops.to_numpy(vectors)
    W = numpy.asarray(estimator["W"], dtype="float32")
    b = numpy.asarray(estimator["b"], dtype="float32")
    out = numpy.full((len(X), len(b)), -numpy.inf, dtype="float32")
    unigram = (offsets[:, 1] - offsets[:, 0]) == 1
    if unigram.any():
        out[unigram] = X[unigram] @ W.T + b
    return ops.asarray2f(out)


def fit_occlusion_estimator(
    nlp: Language,
    docs: Iterable[Doc],
    *,
    component: Optional[str] = None,
    max_docs: int = 2000,
    alpha: float = 10.0,
    batch_size: int = 64,
) -> Dict[str, Any]:
    """Fit the occlusion estimator of a pipeline's text classifier on
    leave-one-out drops of sample docs, store it in the component's `cfg`
    and switch its evidence to the estimates (`evidence_method` "auto").

    nlp (Language): A trained pipeline with a `spanbert_textcat(_multilabel)`
        whose `spanbert` proposes one-token candidates.
    docs (Iterable[Doc]): Sample docs (their texts are used), e.g. the training set.
    component (Optional[str]): The text classifier's name; None for the first one.
    max_docs (int): Use at most this many docs.
    alpha (float): The ridge penalty.
    batch_size (int): Docs per `nlp.pipe` batch.
    RETURNS (Dict[str, Any]): What was fitted: docs, tokens, seconds, and the
        correlation of estimated and real drops on the sample.
    """
    name, pipe = _text_classifier(nlp, component)
    start = time.perf_counter()
    texts = [doc.text for _, doc in zip(range(max_docs), docs)]
    samples = _samples(nlp, pipe, texts, batch_size)
    if not samples:
        raise ValueError(Errors.E081.format(name=name))
    labels = list(pipe.labels)
    X = numpy.concatenate([s["X"] for s in samples])
    y = numpy.concatenate([s["drops"] for s in samples])
    owner = numpy.concatenate([numpy.full(len(s["drops"]), labels.index(s["label"])) for s in samples])
    w_all, b_all = _ridge(X, y, alpha)
    W = numpy.tile(w_all, (len(labels), 1))
    b = numpy.full((len(labels),), b_all, dtype="float64")
    n_docs = numpy.bincount([labels.index(s["label"]) for s in samples], minlength=len(labels))
    for j in numpy.flatnonzero(n_docs >= MIN_DOCS_PER_LABEL):
        W[j], b[j] = _ridge(X[owner == j], y[owner == j], alpha)
    estimate = numpy.einsum("ij,ij->i", X, W[owner]) + b[owner]
    pipe.cfg["occlusion_estimator"] = {
        "W": W.astype("float32").tolist(),
        "b": b.astype("float32").tolist(),
        "labels": labels,
        "alpha": float(alpha),
        "n_docs": len(samples),
        "n_tokens": int(len(y)),
    }
    return {
        "component": name,
        "n_docs": len(samples),
        "n_tokens": int(len(y)),
        "labels_fitted_alone": [labels[j] for j in numpy.flatnonzero(n_docs >= MIN_DOCS_PER_LABEL)],
        "correlation": float(numpy.corrcoef(estimate, y)[0, 1]) if len(y) > 2 else None,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _text_classifier(nlp: Language, component: Optional[str]):
    for name, pipe in nlp.pipeline:
        if hasattr(pipe, "evidence_key") and (component is None or name == component):
            return name, pipe
    raise ValueError(Errors.E080.format(component=component or "spanbert_textcat", pipeline=nlp.pipe_names))


def _ridge(X: numpy.ndarray, y: numpy.ndarray, alpha: float):
    """Ridge regression with an unpenalized intercept: (w, b)."""
    x_mean, y_mean = X.mean(axis=0), y.mean()
    Xc = (X - x_mean).astype("float64")
    w = numpy.linalg.solve(Xc.T @ Xc + alpha * numpy.eye(X.shape[1]), Xc.T @ (y - y_mean))
    return w, float(y_mean - x_mean @ w)


def _samples(nlp: Language, pipe: Any, texts: Sequence[str], batch_size: int) -> List[Dict[str, Any]]:
    """Per doc: its top label, the span vectors of its one-token candidates
    (one per token, in token order) and the real leave-one-out drops of the
    top label's probability."""
    encoder = _encoder_key(nlp)
    docs, labels, vectors = [], [], []
    for doc in nlp.pipe(texts, batch_size=batch_size):
        group = doc.spans.get(encoder)
        if not doc.cats or group is None or len(doc) < 2 or "vectors" not in group.attrs:
            continue
        offsets = numpy.asarray(group.attrs["offsets"]).reshape((-1, 2))
        rows = numpy.flatnonzero((offsets[:, 1] - offsets[:, 0]) == 1)
        if len(rows) != len(doc):
            continue
        order = numpy.argsort(offsets[rows, 0])
        docs.append(doc)
        labels.append(max(doc.cats, key=doc.cats.get))
        vectors.append(numpy.asarray(group.attrs["vectors"])[rows[order]])
    probs = _leave_one_out(nlp, pipe, docs, labels, batch_size)
    return [
        {"label": label, "X": X, "drops": p[0] - numpy.asarray(p[1:])} for label, X, p in zip(labels, vectors, probs)
    ]


def _leave_one_out(nlp: Language, pipe: Any, docs: List[Doc], labels: List[str], batch_size: int):
    """The label's probability in each doc, then without each of its tokens."""
    variants, owners = [], []
    for i, doc in enumerate(docs):
        words = [t.text for t in doc]
        spaces = [bool(t.whitespace_) for t in doc]
        variants.append(Doc(nlp.vocab, words=words, spaces=spaces))
        for t in range(len(doc)):
            variants.append(Doc(nlp.vocab, words=words[:t] + words[t + 1 :], spaces=spaces[:t] + spaces[t + 1 :]))
        owners.extend([i] * (len(doc) + 1))
    key = pipe.cfg["evidence_key"]
    pipe.cfg["evidence_key"] = None  # the variants need no evidence
    try:
        out: List[List[float]] = [[] for _ in docs]
        for owner, doc in zip(owners, nlp.pipe(variants, batch_size=batch_size)):
            out[owner].append(float(doc.cats.get(labels[owner], 0.0)))
    finally:
        pipe.cfg["evidence_key"] = key
    return out


def _encoder_key(nlp: Language) -> str:
    from .encoder import SpanBert

    for _, pipe in nlp.pipeline:
        if isinstance(pipe, SpanBert):
            return pipe.spans_key
    raise ValueError(Errors.E082.format(pipeline=nlp.pipe_names))
