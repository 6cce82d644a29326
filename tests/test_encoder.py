import pickle

import numpy
import pytest
import spacy
import toy_head  # noqa: F401  (registers the toy head)
from conftest import TEXTS, check_tampered_weights_rejected
from numpy.testing import assert_allclose
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_spanbert.encoder import SpanBert


def _init(nlp, texts=TEXTS):
    fix_random_seed(0)
    nlp.initialize(lambda: [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in texts])
    return nlp


def _vectors(nlp, texts, **kwargs):
    return [doc.spans["spanbert"].attrs["vectors"] for doc in nlp.pipe(texts, **kwargs)]


def test_encoder_add_pipe(nlp_factory):
    nlp = nlp_factory()
    assert isinstance(nlp.get_pipe("spanbert"), SpanBert)
    assert nlp.get_pipe_meta("spanbert").assigns == ["doc.spans"]


def test_encoder_error_before_initialize(nlp_factory):
    nlp = nlp_factory()
    spanbert = nlp.get_pipe("spanbert")
    with pytest.raises(ValueError, match="spanbert.*initialize"):
        spanbert(nlp.make_doc("Angela Merkel met Emmanuel Macron ."))


def test_encoder_output_contract(nlp_factory):
    nlp = _init(nlp_factory())
    doc = nlp("Angela Merkel met Emmanuel Macron in Berlin .")
    group = doc.spans["spanbert"]
    vectors = group.attrs["vectors"]
    assert isinstance(vectors, numpy.ndarray) and vectors.dtype == numpy.float32
    assert vectors.shape == (len(group), 32)
    # all spans of 1..8 tokens, sorted by (start, end)
    n = len(doc)
    assert len(group) == sum(n - k + 1 for k in range(1, 9))
    offsets = [(s.start, s.end) for s in group]
    assert offsets == sorted(offsets)
    assert group.attrs["doc_vector"].shape == (32,)
    assert numpy.isfinite(vectors).all()
    assert group.attrs["offsets"].dtype == numpy.int32
    assert group.attrs["offsets"].tolist() == [list(o) for o in offsets]


def test_listener_reads_offsets_like_spans(nlp_factory):
    """The listener's fast path (attrs["offsets"]) gives the same batch as
    reading the spans, and a group changed after spanbert ran is refused."""
    from spacy_spanbert.layers.listener import SpanBertListener, read_span_batch

    nlp = _init(nlp_factory())
    docs = list(nlp.pipe(["Angela Merkel met Emmanuel Macron .", "", "Paris ."]))
    listener = SpanBertListener("*", width=32)
    listener.attrs["spans_key"] = "spanbert"
    fast = read_span_batch(listener, docs)
    for doc in docs:
        doc.spans["spanbert"].attrs.pop("offsets", None)
    slow = read_span_batch(listener, docs)
    assert fast.indices.dataXd.tolist() == slow.indices.dataXd.tolist()
    assert fast.indices.lengths.tolist() == slow.indices.lengths.tolist()
    assert len(fast.indices.dataXd) == len(docs[0].spans["spanbert"]) + len(docs[2].spans["spanbert"])
    docs[0].spans["spanbert"].append(docs[0][0:2])
    with pytest.raises(ValueError, match="spanbert listener.*changed after 'spanbert' ran"):
        read_span_batch(listener, docs)


def test_listener_batch_is_the_same_in_any_doc_order(nlp_factory):
    """Docs read back in any order, or from several batches, give their own
    rows."""
    from spacy_spanbert.layers.listener import SpanBertListener, read_span_batch

    nlp = _init(nlp_factory())
    texts = ["Angela Merkel met Emmanuel Macron .", "", "Paris .", "A b c d"]
    docs = list(nlp.pipe(texts, batch_size=4))
    other = list(nlp.pipe(texts[:2], batch_size=1))
    listener = SpanBertListener("*", width=32)
    listener.attrs["spans_key"] = "spanbert"
    by_doc = {id(doc): doc.spans["spanbert"].attrs["vectors"] for doc in docs + other}
    for mix in (docs, docs[::-1], [docs[2], other[0], docs[0]], other):
        batch = read_span_batch(listener, mix)
        want = numpy.concatenate([by_doc[id(doc)] for doc in mix])
        assert batch.vectors.tolist() == want.tolist()


def test_encoder_span_vector_and_similarity(nlp_factory):
    nlp = _init(nlp_factory())
    doc = nlp("Angela Merkel met Emmanuel Macron in Berlin .")
    group = doc.spans["spanbert"]
    vectors = group.attrs["vectors"]
    assert_allclose(group[3].vector, vectors[3])
    expected = vectors[3] @ vectors[5] / (numpy.linalg.norm(vectors[3]) * numpy.linalg.norm(vectors[5]))
    assert group[3].similarity(group[5]) == pytest.approx(float(expected), rel=1e-5)
    assert_allclose(group[3]._.spanbert_vector, vectors[3])


def test_encoder_untrained_is_mean_pooling(nlp_factory):
    nlp = _init(nlp_factory({"model": {"n_layers": 0}}))
    doc = nlp("Angela Merkel met Emmanuel Macron in Berlin .")
    spanbert = nlp.get_pipe("spanbert")
    tokvecs = spanbert.model.layers[0].predict([doc])[0]
    group = doc.spans["spanbert"]
    for i in (0, 9, len(group) - 1):
        span = group[i]
        assert_allclose(group.attrs["vectors"][i], tokvecs[span.start : span.end].mean(0), atol=1e-5)


@pytest.mark.parametrize("text", ["", "Hello", "   ", "\n\t"])
def test_encoder_empty_and_tiny_docs(nlp_factory, text):
    nlp = _init(nlp_factory())
    doc = nlp(text)
    group = doc.spans["spanbert"]
    assert group.attrs["vectors"].shape == (len(group), 32)
    assert len(group) == (len(doc) if len(doc) <= 8 else len(group))
    assert numpy.isfinite(group.attrs["doc_vector"]).all()


def test_encoder_zero_candidates_in_batch(nlp_factory):
    config = {"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 4, "max_size": 4}}}
    nlp = _init(nlp_factory(config))
    docs = list(nlp.pipe(["One two", "Hi", "One two three four five"]))
    assert [len(d.spans["spanbert"]) for d in docs] == [0, 0, 2]
    docs = list(nlp.pipe(["One two", "Hi"]))
    assert all(d.spans["spanbert"].attrs["vectors"].shape == (0, 32) for d in docs)


def test_encoder_spacy_suggester_works(nlp_factory):
    config = {"model": {"suggester": {"@misc": "spacy.ngram_range_suggester.v1", "min_size": 1, "max_size": 2}}}
    nlp = _init(nlp_factory(config))
    doc = nlp("Angela Merkel met Macron")
    assert len(doc.spans["spanbert"]) == 4 + 3


def test_encoder_tok2vec_without_transformer(nlp_factory):
    tok2vec = {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": 16,
            "attrs": ["NORM", "PREFIX"],
            "rows": [500, 100],
            "include_static_vectors": False,
        },
        "encode": {
            "@architectures": "spacy.MaxoutWindowEncoder.v2",
            "width": 16,
            "window_size": 1,
            "maxout_pieces": 2,
            "depth": 1,
        },
    }
    nlp = _init(nlp_factory({"model": {"tok2vec": tok2vec}}, transformer=False))
    doc = nlp("Angela Merkel met Macron")
    assert doc.spans["spanbert"].attrs["vectors"].shape[1] == 16


def test_encoder_missing_transformer(nlp_factory):
    nlp = nlp_factory(transformer=False)
    with pytest.raises(ValueError, match="no 'transformer' or 'tok2vec' component"):
        _init(nlp)


@pytest.mark.parametrize(
    "model_config,match",
    [
        ({"n_heads": 0}, "n_heads must be a positive integer"),
        ({"hidden_width": -4}, "hidden_width must be a positive integer"),
        ({"hidden_width": 30, "n_heads": 4}, "not divisible by n_heads"),
        ({"window": -1}, "window must be a non-negative integer"),
        ({"dropout": 1.5}, "dropout must be in"),
    ],
)
def test_encoder_bad_config(nlp_factory, model_config, match):
    with pytest.raises(ValueError, match=match):
        nlp_factory({"model": model_config})


def test_encoder_heads_must_divide_inferred_width(nlp_factory):
    nlp = nlp_factory({"model": {"n_heads": 5}})
    with pytest.raises(ValueError, match="not divisible by n_heads 5"):
        _init(nlp)


def test_encoder_empty_suggester_result(nlp_factory):
    config = {"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "min_size": 40, "max_size": 50}}}
    with pytest.raises(ValueError, match="found no candidate spans"):
        _init(nlp_factory(config))


def test_encoder_noun_chunks_need_parser(nlp_factory):
    config = {"model": {"suggester": {"@misc": "spacy-spanbert.noun_chunk_suggester.v1"}}}
    with pytest.raises(ValueError, match="parser"):
        _init(nlp_factory(config))


def test_encoder_docbin_round_trip(nlp_factory):
    nlp = _init(nlp_factory())
    doc = nlp("Angela Merkel met Emmanuel Macron .")
    expected = doc.spans["spanbert"].attrs["vectors"]
    docbin = DocBin(docs=[doc], store_user_data=True)
    doc2 = list(DocBin().from_bytes(docbin.to_bytes()).get_docs(nlp.vocab))[0]
    group = doc2.spans["spanbert"]
    assert_allclose(group.attrs["vectors"], expected)
    assert_allclose(group[2]._.spanbert_vector, expected[2])
    # spaCy warns that the span hooks are not saved; attrs and extensions are
    with pytest.warns(UserWarning, match="W109"):
        doc_bytes = doc.to_bytes()
    doc3 = Doc(nlp.vocab).from_bytes(doc_bytes)
    assert_allclose(doc3.spans["spanbert"].attrs["vectors"], expected)
    doc4 = pickle.loads(pickle.dumps(doc))
    assert_allclose(doc4.spans["spanbert"][2].vector, expected[2])


def test_encoder_serialization_round_trips(nlp_factory, tmp_path):
    nlp = _init(nlp_factory())
    text = "Angela Merkel met Emmanuel Macron in Berlin ."
    expected = nlp(text).spans["spanbert"].attrs["vectors"]
    nlp.to_disk(tmp_path / "pipeline")
    nlp2 = spacy.load(tmp_path / "pipeline")
    assert_allclose(nlp2(text).spans["spanbert"].attrs["vectors"], expected, atol=1e-6)
    nlp3 = nlp_factory()
    nlp3.from_bytes(nlp.to_bytes())
    assert_allclose(nlp3(text).spans["spanbert"].attrs["vectors"], expected, atol=1e-6)
    nlp4 = pickle.loads(pickle.dumps(nlp))
    assert_allclose(nlp4(text).spans["spanbert"].attrs["vectors"], expected, atol=1e-6)


def test_encoder_tampered_weights_rejected(nlp_factory, tmp_path):
    nlp = _init(nlp_factory())
    check_tampered_weights_rejected(
        nlp, tmp_path, "spanbert", checksum_error="spanbert.*checksum", format_error="spanbert"
    )


def test_encoder_batch_size_invariance(nlp_factory):
    nlp = _init(nlp_factory())
    texts = TEXTS * 3
    one = _vectors(nlp, texts, batch_size=1)
    many = _vectors(nlp, texts, batch_size=64)
    for a, b in zip(one, many):
        assert_allclose(a, b, atol=1e-4)


def test_encoder_multiprocessing(nlp_factory):
    nlp = _init(nlp_factory())
    texts = TEXTS * 2
    sequential = _vectors(nlp, texts)
    parallel = _vectors(nlp, texts, n_process=2, batch_size=2)
    for a, b in zip(sequential, parallel):
        assert_allclose(a, b, atol=1e-4)


def _ner_examples(nlp):
    data = [
        ("Angela Merkel met Emmanuel Macron in Berlin .", [(0, 2), (3, 5), (6, 7)]),
        ("The German chancellor visited Paris .", [(4, 5)]),
        ("Apple is a company in New York .", [(0, 1), (5, 7)]),
    ]
    examples = []
    for text, ents in data:
        ref = nlp.make_doc(text)
        ref.ents = [ref[s:e].char_span if False else ref[s:e] for s, e in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def _trf_weights(nlp):
    trf = nlp.get_pipe("transformer").model
    return [p.detach().clone() for node in trf.walk() for shim in node.shims for p in shim._model.parameters()]


def test_encoder_trains_through_listener(nlp_factory):
    nlp = nlp_factory()
    nlp.add_pipe("toy_span_head")
    examples = _ner_examples(nlp)
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("spanbert").listening_components == ["toy_span_head"]
    before = _trf_weights(nlp)
    losses_seen = []
    for _ in range(30):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        losses_seen.append(losses["toy_span_head"])
    assert losses_seen[-1] < losses_seen[0] * 0.5
    after = _trf_weights(nlp)
    assert any(not numpy.allclose(a.numpy(), b.numpy()) for a, b in zip(before, after))
    assert losses["spanbert"] > 0


def test_encoder_two_listeners_both_train(nlp_factory):
    nlp = nlp_factory()
    nlp.add_pipe("toy_span_head", name="head_a")
    nlp.add_pipe("toy_span_head", name="head_b")
    examples = _ner_examples(nlp)
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("spanbert").listening_components == ["head_a", "head_b"]
    first = last = None
    for _ in range(30):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        first = first or dict(losses)
        last = losses
    assert last["head_a"] < first["head_a"] * 0.5
    assert last["head_b"] < first["head_b"] * 0.5


def test_encoder_replace_listeners(nlp_factory, tmp_path):
    nlp = nlp_factory()
    nlp.add_pipe("toy_span_head")
    examples = _ner_examples(nlp)
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    nlp.replace_listeners("spanbert", "toy_span_head", ["model.tok2vec"])
    spanbert = nlp.get_pipe("spanbert")
    head = nlp.get_pipe("toy_span_head")
    assert spanbert.listening_components == []
    assert nlp.get_pipe_config("toy_span_head")["model"]["tok2vec"]["@architectures"] == (
        "spacy-spanbert.SpanEncoder.v1"
    )
    assert "toy_span_head" in nlp.get_pipe("transformer").listening_components
    losses_seen = []
    for _ in range(20):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        losses_seen.append(losses["toy_span_head"])
    assert losses_seen[-1] < losses_seen[0]
    nlp.to_disk(tmp_path / "replaced")
    nlp2 = spacy.load(tmp_path / "replaced")
    doc = nlp("Angela Merkel met Emmanuel Macron in Berlin .")
    doc2 = nlp2("Angela Merkel met Emmanuel Macron in Berlin .")
    assert_allclose(
        toy_head.score_spans(nlp2.get_pipe("toy_span_head"), [doc2]),
        toy_head.score_spans(head, [doc]),
        atol=1e-5,
    )


def test_encoder_spacy_preset_suggester(nlp_factory):
    suggester = {"@misc": "spacy.preset_spans_suggester.v1", "spans_key": "cands"}
    nlp = _init(nlp_factory({"model": {"suggester": suggester}}))
    doc = nlp.make_doc("Angela Merkel met Macron")
    doc.spans["cands"] = [doc[3:4], doc[0:2], doc[0:2]]
    doc = nlp(doc)
    group = doc.spans["spanbert"]
    assert [(s.start, s.end) for s in group] == [(0, 2), (3, 4)]
    assert group.attrs["vectors"].shape[0] == 2
    assert len(nlp("no preset spans on this doc").spans["spanbert"]) == 0


@pytest.mark.parametrize(
    "text",
    [
        "Angela Merkel met Macron in Paris .",
        "  leading and   inner  spaces\n\nand a newline ",
        "caf\u00e9 na\u00efve \U0001f600 \u4e2d\u6587 e\u0301 \u200b zero-width",
        "one",
    ],
)
def test_span_group_from_rows_equals_spans_made_one_by_one(text):
    from spacy_spanbert.span_vectors import span_group_from_rows

    doc = spacy.blank("en")(text)
    n = len(doc)
    rows = numpy.array([(s, e) for s in range(n) for e in range(s + 1, min(n, s + 4) + 1)] + [(0, n)], dtype="int32")
    attrs = {"offsets": rows}
    group = span_group_from_rows(doc, "cands", rows, attrs)
    expected = SpanGroup(doc, name="cands", attrs=attrs, spans=[Span(doc, int(s), int(e)) for s, e in rows])
    assert group.name == "cands" and group.attrs is not None
    assert [(s.start, s.end, s.start_char, s.end_char, s.label) for s in group] == [
        (s.start, s.end, s.start_char, s.end_char, s.label) for s in expected
    ]
    assert [s.text for s in group] == [s.text for s in expected]
    assert SpanGroup(doc).from_bytes(group.to_bytes()).to_bytes() == expected.to_bytes()


def test_span_group_from_rows_empty():
    from spacy_spanbert.span_vectors import span_group_from_rows

    doc = spacy.blank("en")("two words")
    assert len(span_group_from_rows(doc, "k", numpy.zeros((0, 2), dtype="int32"), {})) == 0
    empty_doc = spacy.blank("en")("")
    assert len(span_group_from_rows(empty_doc, "k", numpy.zeros((0, 2), dtype="int32"), {})) == 0


def test_span_vector_extension_reads_offsets_or_spans():
    """`Span._.spanbert_vector` finds rows through attrs["offsets"] when the
    group has them, and span by span otherwise (a hand-made group); a label on
    the span must match."""
    import spacy_spanbert  # noqa: F401

    doc = spacy.blank("en")("a b c d")
    vectors = numpy.arange(12, dtype="f").reshape((3, 4))
    rows = numpy.array([[0, 1], [0, 2], [2, 4]], dtype="int32")
    doc.spans["with_offsets"] = SpanGroup(
        doc, attrs={"vectors": vectors, "offsets": rows}, spans=[Span(doc, int(s), int(e)) for s, e in rows]
    )
    assert_allclose(doc[0:2]._.spanbert_vector, vectors[1])
    assert_allclose(doc[2:4]._.spanbert_vector, vectors[2])
    assert doc[1:3]._.spanbert_vector is None
    del doc.spans["with_offsets"]
    labelled = [Span(doc, 0, 1, label="X"), Span(doc, 0, 1, label="Y"), Span(doc, 1, 3, label="Y")]
    doc.spans["by_hand"] = SpanGroup(doc, attrs={"vectors": vectors}, spans=labelled)
    assert_allclose(Span(doc, 0, 1, label="Y")._.spanbert_vector, vectors[1])
    assert_allclose(doc[0:1]._.spanbert_vector, vectors[0])  # no label: the first match
    assert Span(doc, 1, 3, label="X")._.spanbert_vector is None
    # offsets that no longer match the group (it was changed) are not trusted
    doc.spans["by_hand"].attrs["offsets"] = rows[:2]
    assert_allclose(doc[1:3]._.spanbert_vector, vectors[2])


def test_encoder_suggester_span_outside_the_doc_is_an_error(nlp_factory):
    from thinc.types import Ragged

    def bad_suggester(docs, *, ops=None):
        data = ops.asarray2i(numpy.asarray([[0, len(doc) + 1] for doc in docs], dtype="i"))
        return Ragged(data, ops.asarray1i(numpy.ones((len(docs),), dtype="i")))

    nlp = _init(nlp_factory())
    nlp.get_pipe("spanbert").model.attrs["suggester"] = bad_suggester
    with pytest.raises(ValueError, match=r"suggester returned the span \[0, 4\) for a doc of 3 tokens"):
        nlp("Paris is nice")
