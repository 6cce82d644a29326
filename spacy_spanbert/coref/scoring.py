"""Coreference scores: MUC, B³ and CEAF-φ4 (each P/R/F), their mean F1 (the
CoNLL-2012 score) and mention P/R/F, over clusters stored as span groups
`{prefix}_1`, `{prefix}_2`, ... (spaCy's coreference convention).

As the reference scorer (Pradhan et al. 2014), numerators and denominators
are summed over the documents before dividing (micro-average), and a metric
whose denominator is zero scores 0.

- MUC (Vilain et al. 1995): R = sum_k (|k| - |p(k, R)|) / sum_k (|k| - 1),
  where p(k, R) splits key cluster k by the response clusters (a mention in
  no response cluster is a part of its own); P swaps key and response.
- B³ (Bagga and Baldwin 1998): R = sum_k sum_r |k ∩ r|² / |k| / sum_k |k|;
  P swaps key and response.
- CEAF-φ4 (Luo 2005): the one-to-one alignment of key and response clusters
  maximising sum φ4(k, r), φ4 = 2 |k ∩ r| / (|k| + |r|);
  R = that sum / |K|, P = that sum / |R|.
"""

from typing import Any, Dict, FrozenSet, Hashable, Iterable, List, Sequence, Tuple

import numpy
from scipy.optimize import linear_sum_assignment
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

Cluster = FrozenSet[Hashable]
# (numerator of P, denominator of P, numerator of R, denominator of R)
Counts = Tuple[float, float, float, float]

DEFAULT_CLUSTER_PREFIX = "coref_clusters"
METRICS = ("muc", "b3", "ceafe")


@registry.scorers("spacy-spanbert.coref_scorer.v1")
def make_coref_scorer():
    """RETURNS (Callable): `score_coref`."""
    return score_coref


def score_coref(
    examples: Iterable[Example], *, span_cluster_prefix: str = DEFAULT_CLUSTER_PREFIX, **kwargs: Any
) -> Dict[str, float]:
    """Score predicted against reference clusters.

    examples (Iterable[Example]): The examples; clusters are the span groups
        `{span_cluster_prefix}_N` of each doc.
    span_cluster_prefix (str): The prefix of the cluster span groups.
    RETURNS (Dict[str, float]): `coref_{muc,b3,ceafe}_{p,r,f}`, `coref_f` (the
        mean of the three F1) and `coref_mention_{p,r,f}`.
    """
    totals = {name: numpy.zeros(4) for name in METRICS + ("mention",)}
    for eg in examples:
        key = reference_clusters(eg, span_cluster_prefix)
        response = doc_clusters(eg.predicted, span_cluster_prefix)
        for name, counts in cluster_counts(key, response).items():
            totals[name] += counts
    scores: Dict[str, float] = {}
    for name, (p_num, p_den, r_num, r_den) in totals.items():
        p, r, f = prf(p_num, p_den, r_num, r_den)
        scores.update({f"coref_{name}_p": p, f"coref_{name}_r": r, f"coref_{name}_f": f})
    scores["coref_f"] = sum(scores[f"coref_{name}_f"] for name in METRICS) / len(METRICS)
    return scores


def cluster_keys(doc: Doc, prefix: str) -> List[str]:
    """The keys `{prefix}_N` of `doc.spans` (N an integer), in order of N."""
    head = prefix + "_"
    keys = [key for key in doc.spans if key.startswith(head) and key[len(head) :].isdigit()]
    return sorted(keys, key=lambda key: int(key[len(head) :]))


def doc_clusters(doc: Doc, prefix: str) -> List[Cluster]:
    """The clusters of a doc as sets of (start, end) token offsets."""
    return [frozenset((s.start, s.end) for s in doc.spans[key]) for key in cluster_keys(doc, prefix)]


def reference_clusters(example: Example, prefix: str) -> List[Cluster]:
    """The reference clusters in the predicted doc's tokens (mentions that do
    not align to its tokens are dropped)."""
    clusters = []
    for key in cluster_keys(example.reference, prefix):
        spans = example.get_aligned_spans_y2x(list(example.reference.spans[key]), allow_overlap=True)
        if spans:
            clusters.append(frozenset((s.start, s.end) for s in spans))
    return clusters


def cluster_counts(key: Sequence[Cluster], response: Sequence[Cluster]) -> Dict[str, Counts]:
    """The counts of every metric for one document.

    key (Sequence[Cluster]): The gold clusters.
    response (Sequence[Cluster]): The predicted clusters.
    RETURNS (Dict[str, Counts]): Per metric ("muc", "b3", "ceafe",
        "mention"): (P numerator, P denominator, R numerator, R denominator).
    """
    key_mentions = set().union(*key) if key else set()
    response_mentions = set().union(*response) if response else set()
    n_common = len(key_mentions & response_mentions)
    return {
        "muc": muc(key, response),
        "b3": b_cubed(key, response),
        "ceafe": ceaf_e(key, response),
        "mention": (n_common, len(response_mentions), n_common, len(key_mentions)),
    }


def _muc_recall(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    where = {mention: i for i, cluster in enumerate(response) for mention in cluster}
    num = den = 0.0
    for cluster in key:
        # mentions missing from the response each form a part of their own
        parts = {where.get(mention, ("missing", mention)) for mention in cluster}
        num += len(cluster) - len(parts)
        den += len(cluster) - 1
    return num, den


def muc(key: Sequence[Cluster], response: Sequence[Cluster]) -> Counts:
    """MUC counts: (P num, P den, R num, R den)."""
    r_num, r_den = _muc_recall(key, response)
    p_num, p_den = _muc_recall(response, key)
    return p_num, p_den, r_num, r_den


def _b_cubed_recall(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    where = {mention: i for i, cluster in enumerate(response) for mention in cluster}
    num = den = 0.0
    for cluster in key:
        overlaps: Dict[int, int] = {}
        for mention in cluster:
            if mention in where:
                overlaps[where[mention]] = overlaps.get(where[mention], 0) + 1
        num += sum(n * n for n in overlaps.values()) / len(cluster)
        den += len(cluster)
    return num, den


def b_cubed(key: Sequence[Cluster], response: Sequence[Cluster]) -> Counts:
    """B³ counts: (P num, P den, R num, R den)."""
    r_num, r_den = _b_cubed_recall(key, response)
    p_num, p_den = _b_cubed_recall(response, key)
    return p_num, p_den, r_num, r_den


def ceaf_e(key: Sequence[Cluster], response: Sequence[Cluster]) -> Counts:
    """CEAF-φ4 counts: (P num, P den, R num, R den)."""
    key = [c for c in key if c]
    response = [c for c in response if c]
    if not key or not response:
        return 0.0, float(len(response)), 0.0, float(len(key))
    similarity = numpy.zeros((len(key), len(response)))
    where = {mention: j for j, cluster in enumerate(response) for mention in cluster}
    for i, cluster in enumerate(key):
        for mention in cluster:
            if mention in where:
                similarity[i, where[mention]] += 1.0
    sizes_k = numpy.asarray([len(c) for c in key], dtype="float64")[:, None]
    sizes_r = numpy.asarray([len(c) for c in response], dtype="float64")[None, :]
    similarity = 2.0 * similarity / (sizes_k + sizes_r)
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    total = float(similarity[rows, cols].sum())
    return total, float(len(response)), total, float(len(key))


def prf(p_num: float, p_den: float, r_num: float, r_den: float) -> Tuple[float, float, float]:
    """RETURNS (Tuple[float, float, float]): P, R and F1 (0 where undefined)."""
    p = p_num / p_den if p_den else 0.0
    r = r_num / r_den if r_den else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return float(p), float(r), float(f)
