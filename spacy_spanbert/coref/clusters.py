"""From antecedent scores to clusters, and from reference docs to gold mentions."""

from typing import Dict, List, Tuple

import numpy
from spacy.training import Example

from .scoring import cluster_keys


def follow_antecedents(
    antecedents: numpy.ndarray, scores: numpy.ndarray, mention_scores: numpy.ndarray, *, keep_singletons: bool
) -> List[List[int]]:
    """Clusters of one doc: each kept mention joins the cluster of its best
    antecedent (the dummy, column 0 of `scores`, starts none).

    antecedents (numpy.ndarray): [M, K] candidate antecedents of each kept
        mention, as positions in the doc's kept list (-1: an empty slot).
    scores (numpy.ndarray): [M, 1 + K] scores; column 0 the dummy (0).
    mention_scores (numpy.ndarray): [M] mention scores of the kept mentions.
    keep_singletons (bool): Also return a one-mention cluster for each
        mention with a positive mention score that is in no other cluster.
    RETURNS (List[List[int]]): Positions in the kept list, clusters ordered
        by their first mention, mentions in order.
    """
    n = len(scores)
    # Scores within float noise of each other (batching changes the last
    # digits) are ties, and ties go to the dummy, then to the first column.
    best = numpy.argmax(numpy.round(scores, 4), axis=1) if n else numpy.zeros((0,), dtype="int64")
    cluster_of = [-1] * n
    clusters: List[List[int]] = []
    for i, col in enumerate(best.tolist()):
        antecedent = int(antecedents[i, col - 1]) if col > 0 else -1
        if antecedent < 0:
            continue
        if cluster_of[antecedent] < 0:
            cluster_of[antecedent] = len(clusters)
            clusters.append([antecedent])
        cluster_of[i] = cluster_of[antecedent]
        clusters[cluster_of[i]].append(i)
    if keep_singletons:
        clusters.extend([i] for i in range(n) if cluster_of[i] < 0 and mention_scores[i] > 0)
    return sorted((sorted(cluster) for cluster in clusters), key=lambda cluster: cluster[0])


def gold_mentions(example: Example, prefix: str) -> Dict[Tuple[int, int], int]:
    """The gold mentions of an example in the predicted doc's tokens, each
    with the number of its cluster (its span group `{prefix}_N`); a mention
    in two clusters keeps the first."""
    mentions: Dict[Tuple[int, int], int] = {}
    reference = example.reference
    for n, key in enumerate(cluster_keys(reference, prefix)):
        for span in example.get_aligned_spans_y2x(list(reference.spans[key]), allow_overlap=True):
            mentions.setdefault((span.start, span.end), n)
    return mentions
