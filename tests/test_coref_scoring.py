"""The coreference metrics against scorch (an independent implementation of
the CoNLL-2012 scorer's metrics, a test dependency)."""

import numpy
import pytest
import spacy
from scorch import scores as scorch
from spacy.tokens import Span
from spacy.training import Example

from spacy_spanbert.coref.scoring import b_cubed, ceaf_e, muc, prf, score_coref

METRICS = {"muc": (muc, scorch.muc), "b3": (b_cubed, scorch.b_cubed), "ceafe": (ceaf_e, scorch.ceaf_e)}
# (key, response): clusterings of mention ids
CASES = [
    ([{1, 2, 3}, {4, 5}], [{1, 2}, {3, 4, 5}]),
    ([{1, 2, 3, 4, 5}, {6, 7}, {8, 9, 10, 11, 12}], [{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10, 11, 12}]),
    ([{1, 2}, {3}], [{1, 2, 3}]),
    ([{1, 2, 3}], [{1}, {2}, {3}]),
    ([{1, 2}, {3, 4}], [{5, 6}, {1, 3}]),
    ([{"a", "b", "c"}, {"d"}], [{"a", "b"}, {"c", "d"}, {"e"}]),
]


def _random_case(rng):
    mentions = list(range(int(rng.integers(2, 30))))
    key_ids = rng.integers(0, 6, len(mentions))
    response_ids = rng.integers(0, 8, len(mentions))
    keep = rng.random(len(mentions)) < 0.8  # response misses some mentions
    key = [{m for m, c in zip(mentions, key_ids) if c == i} for i in set(key_ids.tolist())]
    response = [{m for m, c, k in zip(mentions, response_ids, keep) if c == i and k} for i in range(8)]
    response += [{100 + i} for i in range(int(rng.integers(0, 3)))]  # spurious mentions
    return key, [c for c in response if c]


def _check_against_scorch(key, response):
    key = [frozenset(c) for c in key]
    response = [frozenset(c) for c in response]
    for name, (ours, theirs) in METRICS.items():
        p, r, f = prf(*ours(key, response))
        r_ref, p_ref, f_ref = theirs(key, response)
        assert (p, r, f) == pytest.approx((p_ref, r_ref, f_ref), abs=1e-9), name


@pytest.mark.parametrize("key,response", CASES)
def test_coref_scoring_matches_scorch(key, response):
    _check_against_scorch(key, response)


@pytest.mark.parametrize("seed", range(20))
def test_coref_scoring_matches_scorch_random(seed):
    key, response = _random_case(numpy.random.default_rng(seed))
    _check_against_scorch(key, response)


def test_coref_scoring_muc_by_hand():
    # Vilain et al. (1995): key {A B C D}, response {A B} {C D}: R = 2/3, P = 1
    assert prf(*muc([frozenset("ABCD")], [frozenset("AB"), frozenset("CD")])) == pytest.approx((1.0, 2 / 3, 0.8))


def test_coref_scoring_empty():
    for ours, _ in METRICS.values():
        assert prf(*ours([], [])) == (0.0, 0.0, 0.0)
        assert prf(*ours([frozenset({1, 2})], [])) == (0.0, 0.0, 0.0)


def _example(nlp, n_tokens, key, response):
    words = ["w"] * n_tokens
    ref, pred = nlp.make_doc(" ".join(words)), nlp.make_doc(" ".join(words))
    for doc, clusters in ((ref, key), (pred, response)):
        for i, cluster in enumerate(clusters, 1):
            doc.spans[f"coref_clusters_{i}"] = [Span(doc, s, e) for s, e in cluster]
    return Example(pred, ref)


def test_coref_scoring_micro_average_over_docs():
    """Summing counts over docs equals scoring the union of the docs'
    clusterings with doc-tagged mentions (what the reference scorer does)."""
    nlp = spacy.blank("en")
    docs = [
        ([[(0, 1), (2, 3), (4, 6)], [(7, 8)]], [[(0, 1), (2, 3)], [(4, 6), (7, 8)]]),
        ([[(0, 2), (3, 4)]], [[(0, 2), (3, 4)], [(5, 6), (8, 9)]]),
    ]
    scores = score_coref([_example(nlp, 10, key, response) for key, response in docs])
    union_key = [frozenset((d, m) for m in c) for d, (key, _) in enumerate(docs) for c in key]
    union_response = [frozenset((d, m) for m in c) for d, (_, response) in enumerate(docs) for c in response]
    f1s = []
    for name, (_, theirs) in METRICS.items():
        r, p, f = theirs(union_key, union_response)
        assert (scores[f"coref_{name}_p"], scores[f"coref_{name}_r"]) == pytest.approx((p, r))
        f1s.append(f)
    assert scores["coref_f"] == pytest.approx(sum(f1s) / 3)
    assert scores["coref_f"] == pytest.approx(scorch.conll2012(union_key, union_response))
    # mentions: 6 gold, 8 predicted, 6 in common
    assert (scores["coref_mention_p"], scores["coref_mention_r"]) == pytest.approx((6 / 8, 1.0))


def test_coref_scoring_registered():
    assert spacy.registry.scorers.get("spacy-spanbert.coref_scorer.v1")() is score_coref
