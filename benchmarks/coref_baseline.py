"""The `spacy` system of `accuracy.py coref`: coreference as a spaCy user
trains it today, spacy-experimental 0.6.4's `experimental_coref` (word-level
clusters) and `experimental_span_resolver` (each clustered word expanded to
its mention), both listening to the transformer.

spacy-experimental 0.6.4 needs spaCy 3.7, so this script runs in a virtualenv
of its own (`bash scripts/coref_baseline_venv.sh`) and never imports
spacy_spanbert (spaCy 3.8). accuracy.py calls it in steps:

    python coref_baseline.py versions                        # JSON: the venv's versions
    python coref_baseline.py prepare TRAIN.spacy OUT.spacy   # add head-word clusters
    python coref_baseline.py train CONFIG.cfg OUTPUT [--seed S]
    python coref_baseline.py predict MODEL DOCS.spacy OUT.spacy [--batch-size N]

Head words. Both components learn from one word per mention: the coreference
model clusters words (`doc.spans["coref_head_clusters_N"]` of one-token
spans) and the span resolver learns to expand each word to its mention
(`coref_clusters_N`, paired with the head clusters in order). spaCy's coref
project takes the root of the mention from a dependency parse; no parser for
spaCy 3.7 is available offline here, so `prepare` takes each mention's LAST
token (English noun phrases are mostly head-final: "the old man"; it misses
"the man who ..." and "the King of France"). The coreference model can put a
word in one cluster only and the span resolver learns one mention per word,
so of the mentions that end on the same token (they nest) only the shortest
is kept: its last token is the likelier head ("the reporters of [the
court]": "court" heads "the court", not "the reporters ..."), and it is the
target spaCy's coref project gives a head word (the smallest mention around
it). The longer ones are dropped from the training data, and counted; in
LitBank's 80 training docs, 699 of 23,182 mentions, 675 of them of another
cluster than the kept one, mostly singletons.

Training data. `train` reads each training doc with the reference's own
tokens (as spaCy's coref project does) and copies its head clusters to the
predicted doc, where the span resolver reads them; the coreference model's
own predictions (its head clusters) feed the span resolver at prediction
time only. `predict` runs the trained pipeline on docs made from the text
(spaCy's tokenizer, as spacy-spanbert's evaluation does) and writes them with
their `coref_clusters_N` groups; accuracy.py scores them in the project's
virtualenv.

Checkpoints are chosen by `coref_f` of the project's coreference scorer
(spacy_spanbert/coref/scoring.py, loaded from its file: it needs only numpy,
scipy and spaCy), the score that chooses spacy-spanbert's checkpoints.

Importing this module needs nothing but the standard library: the pure
functions (`head_word_clusters`) are tested in the project's virtualenv.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
SCORING = REPO / "spacy_spanbert" / "coref" / "scoring.py"
CLUSTER_PREFIX = "coref_clusters"
HEAD_PREFIX = "coref_head_clusters"
READER = "spacy-spanbert-bench.coref_gold_words.v1"
# accuracy.py's learning-curve logger (register() imports accuracy.py for it)
LOGGER = "spacy-spanbert-bench.curve.v1"
HEAD_WORD_NOTE = (
    "head word of a mention = its last token (no dependency parser for spaCy 3.7 offline; spaCy's coref "
    "project uses the parse's root); of the mentions ending on the same token, only the shortest is kept "
    "in the training data (its last token is the likelier head); the longer ones are dropped"
)
VERSIONS = ("spacy", "spacy-transformers", "spacy-experimental", "thinc", "torch", "transformers", "numpy", "scipy")

Mention = Tuple[int, int]


def cluster_number(key: str, prefix: str):
    """N for a span-group key `{prefix}_N`, else None."""
    head = prefix + "_"
    if key.startswith(head) and key[len(head) :].isdigit():
        return int(key[len(head) :])
    return None


def head_word_clusters(
    clusters: Sequence[Sequence[Mention]],
) -> Tuple[List[List[Mention]], List[List[int]], List[Tuple[int, Mention, Optional[int]]]]:
    """The training clusters of spacy-experimental's coreference components.

    clusters (Sequence[Sequence[Mention]]): A doc's clusters of (start, end)
        token offsets (end exclusive).
    RETURNS (Tuple[List[List[Mention]], List[List[int]], List[Tuple[int, Mention, Optional[int]]]]):
        The clusters of the kept mentions, their head words (last tokens) in
        the same order, and the dropped mentions as (cluster, mention, the
        cluster of the mention that keeps its head word; None for an empty
        mention), clusters numbered from 0 in `clusters`. Of the mentions
        that end on the same token, in any cluster, the one that starts last
        (the shortest) is kept, in its first cluster; the others, empty
        mentions and repeats of a mention are dropped. Clusters left empty
        are left out.
    """
    winner: Dict[int, Tuple[int, int]] = {}  # head word -> (start, cluster) of the mention that keeps it
    for c, cluster in enumerate(clusters):
        for start, end in cluster:
            if end > start and (end - 1 not in winner or start > winner[end - 1][0]):
                winner[end - 1] = (start, c)
    kept: List[List[Mention]] = []
    heads: List[List[int]] = []
    dropped: List[Tuple[int, Mention, Optional[int]]] = []
    taken = set()
    for c, cluster in enumerate(clusters):
        mentions: List[Mention] = []
        words: List[int] = []
        for start, end in cluster:
            head = end - 1
            if end > start and winner[head] == (start, c) and head not in taken:
                taken.add(head)
                mentions.append((start, end))
                words.append(head)
            else:
                dropped.append((c, (start, end), winner[head][1] if end > start else None))
        if mentions:
            kept.append(mentions)
            heads.append(words)
    return kept, heads, dropped


# ---------------------------------------------------------------------------
# Everything below runs in the baseline virtualenv (spaCy 3.7).


def prepare(source: Path, output: Path) -> Dict[str, Any]:
    """Write the docs of SOURCE to OUTPUT with their `coref_clusters_N`
    groups replaced by the kept mentions and `coref_head_clusters_N` groups
    of their head words. RETURNS (Dict[str, Any]): The counts."""
    from spacy.tokens import DocBin, Span
    from spacy.training.corpus import walk_corpus
    from spacy.vocab import Vocab

    counts = {"docs": 0, "clusters": 0, "mentions": 0, "kept": 0, "dropped": 0, "dropped_other_cluster": 0}
    out = DocBin()
    for file in walk_corpus(source, ".spacy"):
        for doc in DocBin().from_disk(file).get_docs(Vocab()):
            keys = sorted(
                (k for k in doc.spans if cluster_number(k, CLUSTER_PREFIX) is not None),
                key=lambda k: cluster_number(k, CLUSTER_PREFIX),
            )
            clusters = [[(s.start, s.end) for s in doc.spans[k]] for k in keys]
            kept, heads, dropped = head_word_clusters(clusters)
            for key in list(doc.spans):
                if cluster_number(key, CLUSTER_PREFIX) is not None or cluster_number(key, HEAD_PREFIX) is not None:
                    del doc.spans[key]
            for n, (mentions, words) in enumerate(zip(kept, heads), 1):
                doc.spans[f"{CLUSTER_PREFIX}_{n}"] = [Span(doc, s, e) for s, e in mentions]
                doc.spans[f"{HEAD_PREFIX}_{n}"] = [Span(doc, w, w + 1) for w in words]
            counts["docs"] += 1
            counts["clusters"] += len(clusters)
            counts["mentions"] += sum(len(c) for c in clusters)
            counts["kept"] += sum(len(c) for c in kept)
            counts["dropped"] += len(dropped)
            counts["dropped_other_cluster"] += sum(1 for c, _, owner in dropped if owner is not None and owner != c)
            out.add(doc)
    output.parent.mkdir(parents=True, exist_ok=True)
    out.to_disk(output)
    return counts


def load_project_scorer() -> None:
    """Register `spacy-spanbert.coref_scorer.v1` from the project's
    scoring.py, loaded from its file (the package needs spaCy 3.8)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("spacy_spanbert_coref_scoring", SCORING)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


def register() -> None:
    """Register the reader, the logger and the project's coreference scorer
    with spaCy 3.7 (and spacy-experimental's components, by their entry points)."""
    from functools import partial

    from spacy import util
    from spacy.tokens import Doc
    from spacy.training import Corpus, Example

    load_project_scorer()
    # accuracy.py's learning-curve logger, which the config names (the
    # module runs on spaCy 3.7: it imports the package only inside functions)
    import accuracy  # noqa: F401

    def read(corpus, copy_heads: bool, nlp):
        for eg in corpus(nlp):
            ref = eg.reference
            pred = Doc(nlp.vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref])
            if copy_heads:
                for key in list(ref.spans):
                    n = cluster_number(key, CLUSTER_PREFIX)
                    if n is None:
                        continue
                    heads = ref.spans.get(f"{HEAD_PREFIX}_{n}")
                    if heads is None or len(heads) != len(ref.spans[key]):
                        raise ValueError(
                            f"coref_baseline: {key} of a training doc has no matching {HEAD_PREFIX}_{n}; "
                            "the training data must go through `coref_baseline.py prepare` first"
                        )
                    pred.spans[f"{HEAD_PREFIX}_{n}"] = [pred[s.start : s.end] for s in heads]
            yield Example(pred, ref)

    @util.registry.readers(READER)
    def gold_words_corpus(path: Path, max_length: int = 0, limit: int = 0, copy_heads: bool = False):
        """spaCy's Corpus (the same docs), each predicted doc in the
        reference's tokens, with its head clusters if `copy_heads`."""
        return partial(read, Corpus(path, max_length=max_length, limit=limit), copy_heads)


def train(config: Path, output: Path, seed: int) -> None:
    from spacy import util
    from spacy.cli.train import train as spacy_train

    register()
    util.fix_random_seed(seed)
    spacy_train(config, output, use_gpu=-1)


def predict(model: Path, source: Path, output: Path, batch_size: int) -> Dict[str, Any]:
    """Run the pipeline on docs made from the text of SOURCE's docs and write
    them, with their `coref_clusters_N` groups only, to OUTPUT.
    RETURNS (Dict[str, Any]): Docs, words and seconds of the `nlp.pipe` pass."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.training.corpus import walk_corpus

    register()
    nlp = spacy.load(model)
    texts = [doc.text for file in walk_corpus(source, ".spacy") for doc in DocBin().from_disk(file).get_docs(nlp.vocab)]
    docs = [nlp.make_doc(text) for text in texts]
    start = time.perf_counter()
    predicted = list(nlp.pipe(docs, batch_size=batch_size))
    seconds = time.perf_counter() - start
    for doc in predicted:
        for key in list(doc.spans):
            if cluster_number(key, CLUSTER_PREFIX) is None:
                del doc.spans[key]
    output.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=predicted).to_disk(output)
    return {"docs": len(predicted), "words": sum(len(doc) for doc in predicted), "seconds": seconds}


def versions() -> Dict[str, Any]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found: Dict[str, Any] = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("versions", help="print the versions of this virtualenv's packages (JSON)")
    p = commands.add_parser("prepare", help="add head-word clusters to training docs; print the counts (JSON)")
    p.add_argument("source", type=Path)
    p.add_argument("output", type=Path)
    t = commands.add_parser("train", help="spacy train CONFIG into OUTPUT")
    t.add_argument("config", type=Path)
    t.add_argument("output", type=Path)
    t.add_argument("--seed", type=int, default=0)
    r = commands.add_parser("predict", help="write MODEL's predictions on DOCS; print the timing (JSON)")
    r.add_argument("model", type=Path)
    r.add_argument("source", type=Path)
    r.add_argument("output", type=Path)
    r.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    # thinc 8.2's torch shim calls torch.cuda.amp.autocast on every pass, even on CPU
    warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.autocast", category=FutureWarning)
    if args.command == "versions":
        print(json.dumps(versions()))
    elif args.command == "prepare":
        print(json.dumps(prepare(args.source, args.output)))
    elif args.command == "train":
        train(args.config, args.output, args.seed)
    else:
        print(json.dumps(predict(args.model, args.source, args.output, args.batch_size)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
