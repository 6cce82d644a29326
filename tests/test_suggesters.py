import pickle

import numpy
import pytest
import spacy
from spacy.tokens import Doc, SpanGroup
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, NumpyOps
from thinc.types import Ragged

from spacy_spanbert.suggesters import (
    Suggester,
    build_entity_suggester,
    build_merged_suggester,
    build_ngram_suggester,
    build_noun_chunk_suggester,
    build_pattern_suggester,
    build_sentence_suggester,
    normalize_suggestions,
)

OPS = NumpyOps()

MERGED_CONFIG = """
[components]

[components.spanbert]

[components.spanbert.suggester]
@misc = "spacy-spanbert.merged_suggester.v1"

[components.spanbert.suggester.suggesters]

[components.spanbert.suggester.suggesters.*.ngrams]
@misc = "spacy-spanbert.ngram_suggester.v1"
max_size = 3

[components.spanbert.suggester.suggesters.*.ents]
@misc = "spacy-spanbert.entity_suggester.v1"
"""

PATTERN_CONFIG = """
[suggester]
@misc = "spacy-spanbert.pattern_suggester.v1"
patterns = [[{"LOWER": "new"}, {"IS_TITLE": true}], [{"IS_TITLE": true, "OP": "+"}]]
"""


@pytest.fixture(scope="module")
def en_vocab():
    return spacy.blank("en").vocab


def make_doc(vocab, words, **kwargs):
    return Doc(vocab, words=words, spaces=[True] * len(words), **kwargs)


def parsed_doc(vocab):
    """'The big cat saw a dog .' with a hand-made parse: two noun chunks."""
    words = ["The", "big", "cat", "saw", "a", "dog", "."]
    return make_doc(
        vocab,
        words,
        heads=[2, 2, 3, 3, 5, 3, 3],
        deps=["det", "amod", "nsubj", "ROOT", "det", "dobj", "punct"],
        pos=["DET", "ADJ", "NOUN", "VERB", "DET", "NOUN", "PUNCT"],
    )


def entity_doc(vocab):
    words = ["Angela", "Merkel", "visited", "New", "York", "."]
    return make_doc(vocab, words, ents=["B-PER", "I-PER", "O", "B-GPE", "I-GPE", "O"])


def spacy_ngrams(min_size, max_size):
    return registry.misc.get("spacy.ngram_range_suggester.v1")(min_size, max_size)


def spacy_preset(spans_key):
    return registry.misc.get("spacy.preset_spans_suggester.v1")(spans_key)


# Suggesters that accept an unannotated empty doc; built fresh for each test.
ALL_SUGGESTERS = {
    "ngram": lambda: build_ngram_suggester(1, 3),
    "noun_chunk": build_noun_chunk_suggester,
    "sentence": build_sentence_suggester,
    "entity": build_entity_suggester,
    "pattern": lambda: build_pattern_suggester([[{"IS_TITLE": True}]]),
    "merged": lambda: build_merged_suggester([build_ngram_suggester(1, 2), build_entity_suggester()]),
}


def rows(ragged):
    return ragged.dataXd.tolist()


def lengths(ragged):
    return ragged.lengths.tolist()


def assert_canonical(ragged, n_docs):
    assert ragged.dataXd.ndim == 2
    assert ragged.dataXd.shape[1] == 2
    assert ragged.dataXd.dtype == numpy.int32
    assert ragged.lengths.dtype == numpy.int32
    assert ragged.lengths.shape == (n_docs,)
    assert int(ragged.lengths.sum()) == ragged.dataXd.shape[0]


@pytest.mark.parametrize("name", sorted(ALL_SUGGESTERS))
def test_suggesters_empty_doc_shape(en_vocab, name):
    suggester = ALL_SUGGESTERS[name]()
    output = suggester([make_doc(en_vocab, [])], ops=OPS)
    assert_canonical(output, 1)
    assert output.dataXd.shape == (0, 2)
    assert lengths(output) == [0]


@pytest.mark.parametrize("name", sorted(ALL_SUGGESTERS))
def test_suggesters_no_docs_shape(name):
    output = ALL_SUGGESTERS[name]()([], ops=OPS)
    assert output.dataXd.shape == (0, 2)
    assert output.lengths.shape == (0,)


@pytest.mark.parametrize("name", sorted(ALL_SUGGESTERS))
def test_suggesters_satisfy_protocol(name):
    suggester = ALL_SUGGESTERS[name]()
    assert isinstance(suggester, Suggester)
    assert isinstance(suggester.requires, list)


def test_suggesters_default_ops(en_vocab):
    output = build_ngram_suggester(1, 1)([make_doc(en_vocab, ["a", "b"])])
    assert rows(output) == [[0, 1], [1, 2]]


def test_suggesters_accept_generator(en_vocab):
    docs = (make_doc(en_vocab, ["a", "b"]) for _ in range(2))
    output = build_ngram_suggester(1, 1)(docs, ops=OPS)
    assert lengths(output) == [2, 2]


@pytest.mark.parametrize(
    "min_size,max_size,n_words,expected",
    [
        (1, 1, 3, [[0, 1], [1, 2], [2, 3]]),
        (1, 2, 3, [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]),
        (2, 3, 3, [[0, 2], [0, 3], [1, 3]]),
        (1, 8, 1, [[0, 1]]),
        (3, 3, 3, [[0, 3]]),
    ],
)
def test_suggesters_ngram_exact_spans(en_vocab, min_size, max_size, n_words, expected):
    doc = make_doc(en_vocab, ["w"] * n_words)
    output = build_ngram_suggester(min_size, max_size)([doc], ops=OPS)
    assert_canonical(output, 1)
    assert rows(output) == expected


def test_suggesters_ngram_doc_shorter_than_min_size(en_vocab):
    docs = [make_doc(en_vocab, ["a", "b"]), make_doc(en_vocab, ["a", "b", "c"])]
    output = build_ngram_suggester(3, 4)(docs, ops=OPS)
    assert_canonical(output, 2)
    assert lengths(output) == [0, 1]
    assert rows(output) == [[0, 3]]


def test_suggesters_batch_without_candidates(en_vocab):
    docs = [make_doc(en_vocab, []), make_doc(en_vocab, ["a"]), make_doc(en_vocab, ["a", "b"])]
    output = build_ngram_suggester(5, 6)(docs, ops=OPS)
    assert_canonical(output, 3)
    assert output.dataXd.shape == (0, 2)
    assert lengths(output) == [0, 0, 0]


def test_suggesters_ngram_counts_per_doc(en_vocab):
    docs = [make_doc(en_vocab, ["w"] * n) for n in (0, 1, 4, 10)]
    output = build_ngram_suggester(1, 3)(docs, ops=OPS)
    assert_canonical(output, 4)
    assert lengths(output) == [0, 1, 9, 27]


def test_suggesters_ngram_max_size_attribute():
    suggester = build_ngram_suggester(2, 5)
    assert suggester.max_size == 5
    assert suggester.min_size == 2
    assert suggester.requires == []


@pytest.mark.parametrize("min_size,max_size", [(0, 3), (-1, 2), (4, 3), (1.5, 3), (True, 2)])
def test_suggesters_ngram_invalid_sizes(min_size, max_size):
    with pytest.raises(ValueError, match=r"spanbert.*min_size"):
        build_ngram_suggester(min_size, max_size)


def test_suggesters_noun_chunk_exact_spans(en_vocab):
    output = build_noun_chunk_suggester()([parsed_doc(en_vocab)], ops=OPS)
    assert_canonical(output, 1)
    assert rows(output) == [[0, 3], [4, 6]]


def test_suggesters_noun_chunk_requires_parse(en_vocab):
    with pytest.raises(ValueError, match=r"spanbert noun-chunk suggester.*parser.*en_core_web_sm"):
        build_noun_chunk_suggester()([make_doc(en_vocab, ["a", "cat"])], ops=OPS)


def test_suggesters_noun_chunk_language_without_iterator():
    doc = Doc(Vocab(), words=["a", "cat"], heads=[1, 1], deps=["det", "ROOT"])
    with pytest.raises(ValueError, match="spanbert noun-chunk suggester"):
        build_noun_chunk_suggester()([doc], ops=OPS)


def test_suggesters_noun_chunk_requires_attribute():
    assert build_noun_chunk_suggester().requires == ["token.dep"]


@pytest.mark.parametrize(
    "sent_starts,expected",
    [
        ([True, False, True, False, False], [[0, 2], [2, 5]]),
        ([1, -1, -1, 1, 1], [[0, 3], [3, 4], [4, 5]]),
        ([True, False, False, False, False], [[0, 5]]),
    ],
)
def test_suggesters_sentence_exact_spans(en_vocab, sent_starts, expected):
    doc = make_doc(en_vocab, ["w"] * 5, sent_starts=sent_starts)
    output = build_sentence_suggester()([doc], ops=OPS)
    assert_canonical(output, 1)
    assert rows(output) == expected
    assert rows(output) == [[s.start, s.end] for s in doc.sents]


def test_suggesters_sentence_from_parse(en_vocab):
    output = build_sentence_suggester()([parsed_doc(en_vocab)], ops=OPS)
    assert rows(output) == [[0, 7]]


def test_suggesters_sentence_one_token_doc(en_vocab):
    output = build_sentence_suggester()([make_doc(en_vocab, ["Hi"])], ops=OPS)
    assert rows(output) == [[0, 1]]


def test_suggesters_sentence_requires_boundaries(en_vocab):
    with pytest.raises(ValueError, match=r"spanbert sentence suggester.*sentencizer.*senter.*parser"):
        build_sentence_suggester()([make_doc(en_vocab, ["a", "b"])], ops=OPS)


def test_suggesters_sentence_requires_attribute():
    assert build_sentence_suggester().requires == ["token.is_sent_start"]


def test_suggesters_entity_exact_spans(en_vocab):
    output = build_entity_suggester()([entity_doc(en_vocab)], ops=OPS)
    assert_canonical(output, 1)
    assert rows(output) == [[0, 2], [3, 5]]


@pytest.mark.parametrize("labels,expected", [(["GPE"], [[3, 5]]), (["PER", "ORG"], [[0, 2]]), (["ORG"], [])])
def test_suggesters_entity_labels(en_vocab, labels, expected):
    output = build_entity_suggester(labels)([entity_doc(en_vocab)], ops=OPS)
    assert_canonical(output, 1)
    assert rows(output) == expected


def test_suggesters_entity_doc_without_entities(en_vocab):
    docs = [make_doc(en_vocab, ["a", "b"]), entity_doc(en_vocab)]
    output = build_entity_suggester()(docs, ops=OPS)
    assert_canonical(output, 2)
    assert lengths(output) == [0, 2]


@pytest.mark.parametrize("labels", [[], "PER", [1, 2]])
def test_suggesters_entity_invalid_labels(labels):
    with pytest.raises(ValueError, match="spanbert's entity suggester"):
        build_entity_suggester(labels)


def test_suggesters_entity_requires_attribute():
    assert build_entity_suggester().requires == ["doc.ents"]


def test_suggesters_pattern_overlapping_matches(en_vocab):
    doc = make_doc(en_vocab, ["I", "like", "New", "York", "City"])
    suggester = build_pattern_suggester([[{"LOWER": "new"}, {"IS_TITLE": True}], [{"IS_TITLE": True, "OP": "+"}]])
    output = suggester([doc], ops=OPS)
    assert_canonical(output, 1)
    # [2, 4] matches both patterns and appears once.
    assert rows(output) == [[0, 1], [2, 3], [2, 4], [2, 5], [3, 4], [3, 5], [4, 5]]


def test_suggesters_pattern_from_config(en_vocab):
    resolved = registry.resolve(Config().from_str(PATTERN_CONFIG))
    doc = make_doc(en_vocab, ["in", "New", "York"])
    assert rows(resolved["suggester"]([doc], ops=OPS)) == [[1, 2], [1, 3], [2, 3]]


def test_suggesters_pattern_matcher_per_vocab():
    suggester = build_pattern_suggester([[{"ORTH": "b"}]])
    first = make_doc(spacy.blank("en").vocab, ["a", "b"])
    second = make_doc(spacy.blank("en").vocab, ["b", "a", "b"])
    assert rows(suggester([first], ops=OPS)) == [[1, 2]]
    assert rows(suggester([second], ops=OPS)) == [[0, 1], [2, 3]]
    assert len(suggester._matchers) == 2


@pytest.mark.parametrize(
    "patterns,match",
    [
        ([], "non-empty list of token patterns"),
        ({"LOWER": "a"}, "non-empty list of token patterns"),
        ([{"LOWER": "a"}], "pattern 0"),
        ([[{"LOWER": "a"}], []], "pattern 1"),
        ([[{"NOT_AN_ATTR": "a"}]], "spanbert's pattern suggester got an invalid token pattern"),
        ([[{"LOWER": "a", "OP": "%"}]], "spanbert's pattern suggester got an invalid token pattern"),
    ],
)
def test_suggesters_pattern_invalid(patterns, match):
    with pytest.raises(ValueError, match=match):
        build_pattern_suggester(patterns)


def test_suggesters_pattern_missing_annotation(en_vocab):
    suggester = build_pattern_suggester([[{"POS": "PROPN"}]])
    with pytest.raises(ValueError, match="spanbert's pattern suggester.*POS"):
        suggester([make_doc(en_vocab, ["Berlin"])], ops=OPS)


def test_suggesters_merged_dedup_and_sort(en_vocab):
    suggester = build_merged_suggester([build_entity_suggester(), build_ngram_suggester(2, 2)])
    docs = [entity_doc(en_vocab), make_doc(en_vocab, ["x"])]
    output = suggester(docs, ops=OPS)
    assert_canonical(output, 2)
    assert rows(output) == [[0, 2], [1, 3], [2, 4], [3, 5], [4, 6]]
    assert lengths(output) == [5, 0]


def test_suggesters_merged_attributes():
    merged = build_merged_suggester([build_ngram_suggester(1, 3), build_ngram_suggester(2, 5)])
    assert merged.requires == []
    mixed = build_merged_suggester(
        [build_ngram_suggester(1, 3), build_entity_suggester(), build_noun_chunk_suggester(), build_entity_suggester()]
    )
    assert mixed.requires == ["doc.ents", "token.dep"]


@pytest.mark.parametrize("suggesters", [[], {}, None, [1]])
def test_suggesters_merged_invalid(suggesters):
    with pytest.raises(ValueError, match="spanbert's merged suggester"):
        build_merged_suggester(suggesters)


def test_suggesters_merged_spacy_ngram_child(en_vocab):
    doc = make_doc(en_vocab, ["a", "b", "c"])
    spacy_output = spacy_ngrams(1, 2)([doc], ops=OPS)
    # spaCy orders by size first, so its rows are not sorted by start.
    assert rows(spacy_output) != sorted(rows(spacy_output))
    merged = build_merged_suggester([spacy_ngrams(1, 2), build_ngram_suggester(2, 3)])
    assert rows(merged([doc], ops=OPS)) == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


def test_suggesters_merged_spacy_preset_child(en_vocab):
    with_spans = make_doc(en_vocab, ["a", "b", "c"])
    with_spans.spans["sc"] = SpanGroup(with_spans, spans=[with_spans[1:3], with_spans[0:1], with_spans[1:3]])
    without_spans = make_doc(en_vocab, ["d"])
    without_spans.spans["sc"] = []
    merged = build_merged_suggester([spacy_preset("sc"), build_ngram_suggester(1, 1)])
    output = merged([with_spans, without_spans], ops=OPS)
    assert_canonical(output, 2)
    assert rows(output) == [[0, 1], [1, 2], [1, 3], [2, 3], [0, 1]]
    assert lengths(output) == [4, 1]


def test_suggesters_merged_spacy_children_without_spans(en_vocab):
    docs = [make_doc(en_vocab, ["a"]), make_doc(en_vocab, [])]
    for doc in docs:
        doc.spans["sc"] = []  # spaCy's preset suggester needs the key
    merged = build_merged_suggester([spacy_preset("sc"), spacy_ngrams(3, 4)])
    output = merged(docs, ops=OPS)
    assert_canonical(output, 2)
    assert output.dataXd.shape == (0, 2)


def test_suggesters_normalize_spacy_empty_output(en_vocab):
    doc = make_doc(en_vocab, ["a"])
    doc.spans["sc"] = []
    spacy_output = spacy_preset("sc")([doc, doc], ops=OPS)
    assert spacy_output.dataXd.shape == (0, 0)
    output = normalize_suggestions(spacy_output, OPS)
    assert_canonical(output, 2)
    assert output.dataXd.shape == (0, 2)


def test_suggesters_normalize_sorts_and_dedups():
    data = numpy.asarray([[2, 3], [0, 2], [0, 1], [2, 3], [1, 2], [0, 1], [0, 1]], dtype="int64")
    ragged = Ragged(data, numpy.asarray([4, 0, 3], dtype="int64"))
    output = normalize_suggestions(ragged, OPS)
    assert_canonical(output, 3)
    assert rows(output) == [[0, 1], [0, 2], [2, 3], [0, 1], [1, 2]]
    assert lengths(output) == [3, 0, 2]


def test_suggesters_normalize_matches_a_sorted_set_reference():
    """Random rows per doc (sorted or not, with or without duplicates, across
    doc boundaries): the result is each doc's sorted set of rows, whether the
    input took the already-canonical shortcut or the sort."""
    rng = numpy.random.default_rng(0)
    for trial in range(200):
        n_docs = int(rng.integers(1, 4))
        per_doc = []
        for _ in range(n_docs):
            n = int(rng.integers(0, 6))
            starts = rng.integers(0, 4, size=n)
            pairs = [(int(s), int(s + rng.integers(1, 3))) for s in starts]
            if trial % 2:
                pairs = sorted(set(pairs))  # canonical already
            per_doc.append(pairs)
        flat = [pair for pairs in per_doc for pair in pairs]
        data = numpy.asarray(flat, dtype="i").reshape((-1, 2))
        ragged = Ragged(data, numpy.asarray([len(p) for p in per_doc], dtype="i"))
        output = normalize_suggestions(ragged, OPS)
        assert rows(output) == [list(pair) for pairs in per_doc for pair in sorted(set(pairs))]
        assert lengths(output) == [len(set(pairs)) for pairs in per_doc]


def test_suggesters_ngram_cached_rows_are_fresh_arrays(en_vocab):
    """Docs of one length reuse cached rows; the output is never the cache."""
    suggester = build_ngram_suggester(1, 3)
    docs = [Doc(en_vocab, words=["a"] * 5), Doc(en_vocab, words=["b"] * 5)]
    first = suggester(docs[:1], ops=OPS)
    first.dataXd[:] = -1
    again = suggester(docs, ops=OPS)
    assert rows(again)[:12] == rows(again)[12:] == [[s, s + w] for s in range(5) for w in range(1, 4) if s + w <= 5]


def test_suggesters_normalize_bad_shape():
    ragged = Ragged(numpy.zeros((2, 3), dtype="i"), numpy.asarray([2], dtype="i"))
    with pytest.raises(ValueError, match=r"spanbert.*\(n_spans, 2\)"):
        normalize_suggestions(ragged, OPS)


def test_suggesters_normalize_bad_lengths():
    ragged = Ragged(numpy.zeros((2, 2), dtype="i"), numpy.asarray([1, 0], dtype="i"))
    with pytest.raises(ValueError, match="spanbert.*lengths"):
        normalize_suggestions(ragged, OPS)


def make_pickle_case(name, en_vocab):
    """A suggester and docs it can run on."""
    cases = {
        "ngram": (build_ngram_suggester(1, 3), [make_doc(en_vocab, ["a", "b", "c", "d"])]),
        "noun_chunk": (build_noun_chunk_suggester(), [parsed_doc(en_vocab)]),
        "sentence": (build_sentence_suggester(), [parsed_doc(en_vocab)]),
        "entity": (build_entity_suggester(["PER"]), [entity_doc(en_vocab)]),
        "pattern": (build_pattern_suggester([[{"IS_TITLE": True, "OP": "+"}]]), [entity_doc(en_vocab)]),
        "merged": (
            build_merged_suggester(
                [spacy_ngrams(1, 2), build_entity_suggester(), build_pattern_suggester([[{"LOWER": "new"}]])]
            ),
            [entity_doc(en_vocab)],
        ),
    }
    return cases[name]


@pytest.mark.parametrize("name", ["ngram", "noun_chunk", "sentence", "entity", "pattern", "merged"])
def test_suggesters_pickle(en_vocab, name):
    suggester, docs = make_pickle_case(name, en_vocab)
    expected = suggester(docs, ops=OPS)  # also fills the pattern matcher cache
    copy = pickle.loads(pickle.dumps(suggester))
    output = copy(docs, ops=OPS)
    assert rows(output) == rows(expected)
    assert lengths(output) == lengths(expected)
    assert copy.requires == suggester.requires


def test_suggesters_merged_config_resolves(en_vocab):
    resolved = registry.resolve(Config().from_str(MERGED_CONFIG))
    suggester = resolved["components"]["spanbert"]["suggester"]
    assert suggester.requires == ["doc.ents"]
    doc = make_doc(
        en_vocab,
        ["Angela", "Merkel", "visited", "New", "York", "City"],
        ents=["B-PER", "I-PER", "O", "B-GPE", "I-GPE", "I-GPE"],
    )
    output = suggester([doc], ops=OPS)
    assert_canonical(output, 1)
    assert [3, 6] in rows(output)  # a 3-token entity, also the widest n-gram
    assert lengths(output) == [15]  # 6 + 5 + 4 n-grams, every entity already among them


def test_suggesters_config_named_children():
    config = MERGED_CONFIG.replace(".*.", ".")
    suggester = registry.resolve(Config().from_str(config))["components"]["spanbert"]["suggester"]
    assert [type(child).__name__ for child in suggester.suggesters] == ["NgramSuggester", "EntitySuggester"]
