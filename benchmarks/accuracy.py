"""Accuracy of spacy-spanbert next to spaCy's own component, same encoder,
data and training budget, in the same run.

    python benchmarks/accuracy.py TASK --train T.spacy --dev D.spacy [--test X.spacy]
        --encoder NAME_OR_PATH --output DIR [--steps N] [--seed S]
        [--set SECTION.KEY=VALUE ...] [--baseline-python PATH]

TASK      spacy-spanbert pipeline             spaCy's component
ner       configs/ner.cfg                     ner (TransitionBasedParser)
nested    configs/nested_ner.cfg              spancat (SpanCategorizer, same n-gram sizes)
textcat   configs/textcat.cfg                 textcat (TextCatEnsemble.v2 on the transformer)
multilabel configs/textcat_multilabel.cfg     textcat_multilabel (TextCatEnsemble.v2)
qa        configs/qa.cfg (spanbert_qa)        transformers (AutoModelForQuestionAnswering)
rel       configs/rel.cfg (spanbert_ner +     pairs: ner + the rel_component tutorial's model
          spanbert_rel)                       (benchmarks/rel_baseline.py)
coref     configs/coref.cfg (spanbert_coref)  spacy-experimental 0.6.4's experimental_coref +
                                              experimental_span_resolver (benchmarks/coref_baseline.py)

Both systems are trained by spaCy's own training loop (`spacy train`) from a
config written to DIR/<system>/config.cfg, with the same transformer, steps,
batch size, optimizer, learning-rate schedule, seed and evaluation frequency.
The best checkpoint on dev (spaCy's usual `model-best`) is scored on dev and,
when given, on test. Writes DIR/results.json, DIR/learning_curve.png and a
Markdown table on stdout. Nested data carries its gold spans in a span group:
`doc.spans["spanbert_ner"]` (what `python -m spacy_spanbert.convert litbank`
writes) or, when the training docs have no such group, their only span group
with spans; `--spans-key KEY` names it otherwise. Both systems train on and
are scored against that key (`spans_KEY_f`).

`--set components.spanbert.model.n_layers=0` (repeatable) changes a setting of
the task's config file before anything else, e.g. to measure a speed/accuracy
trade-off. The value is read as JSON when it parses (0, 0.5, true, "x") and as a
string otherwise. Settings of the spacy-spanbert components only reach the
spacy-spanbert system; the budget options above (--steps, --lr, --batch-words,
--seed, --encoder) always win. The settings are recorded in results.json.

The qa task (`--train`/`--dev`/`--test`: SQuAD JSON or .spacy files from
`python -m spacy_spanbert.convert squad`) trains both systems in one loop of
its own on the same batches of `--batch-questions` questions, the same
windows (384 pieces, stride 128), steps, optimizer settings and warmup_linear
schedule: spanbert_qa through `nlp.update` with spaCy's Adam, the standard
Hugging Face recipe (start/end head, n-best 20, answers of at most 30
pieces) in plain torch with AdamW. The final model of each is scored; the
no-answer threshold is chosen on dev (the official "best F1" threshold).
Without `--test`, the dev docs are split in two halves: the threshold is
chosen on the first, and the second is the held-out "test" split.
results.json adds questions_per_second and the always-no-answer baseline.

The rel task (data: `python -m spacy spanbert convert spert train.json
T.spacy`, relations in `doc._.relations`) compares `spanbert` (configs/rel.cfg)
with `pairs`: spaCy's `ner` (as in the ner task) and the tutorial-style
relation component of rel_baseline.py, both listening to the transformer,
pairing entities within rel.cfg's `max_distance` and checkpointed by rel.cfg's
score weights. Both are scored end to end (`dev`, `test`) and with gold
entities (`dev_gold_entities`, `test_gold_entities`): each doc, in the
reference's tokens, gets the reference's `doc.ents` and the pipeline runs
without its NER component, so the relation head alone is measured.

The coref task (data: `python -m spacy spanbert convert conll2012`, clusters
in `doc.spans["coref_clusters_N"]`) compares `spanbert` (configs/coref.cfg)
with `spacy`: spaCy's coref pipeline (a sentencizer, spacy-experimental
0.6.4's word-level `experimental_coref` and its `experimental_span_resolver`)
on the same transformer and budget. spacy-experimental needs spaCy 3.7, so
that system trains and predicts through benchmarks/coref_baseline.py in a
virtualenv of its own (`bash scripts/coref_baseline_venv.sh [DIR]`, then
`--baseline-python DIR/bin/python`; default .venv-coref-baseline/bin/python).
Its components learn from one head word per mention, the last token (no
parser for spaCy 3.7 offline); of the mentions ending on the same token, its
training data keeps the shortest (results.json: systems.spacy.recipe counts
the dropped ones). Both systems choose checkpoints by `coref_f`, and their
predictions are scored here by the project's scorer (coref_f, the mean F1 of
MUC, B3 and CEAF-e; mention F) over all clusters (`dev`, `test`) and without
singleton clusters on either side (`dev_without_singletons`, ...), as
experimental_coref predicts none.

Each training doc is backpropagated in one piece. A training set with docs of
8,000 tokens or more gets a warning before training starts; `--set
corpora.train.max_length=2000` skips such docs in training for both systems.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy
import srsly
from spacy import util
from spacy.scorer import Scorer
from spacy.training import Corpus, Example
from thinc.api import Config

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
SPANS_KEY = "spanbert_ner"

TASKS: Dict[str, Dict[str, Any]] = {
    "ner": {
        "config": "ner.cfg",
        "head": "spanbert_ner",
        "baseline": "ner",
        "main": "ents_f",
        "report": ["ents_f", "ents_p", "ents_r"],
    },
    "nested": {
        "config": "nested_ner.cfg",
        "head": "spanbert_ner",
        "baseline": "spancat",
        "main": f"spans_{SPANS_KEY}_f",
        "report": [f"spans_{SPANS_KEY}_f", f"spans_{SPANS_KEY}_p", f"spans_{SPANS_KEY}_r"],
    },
    "textcat": {
        "config": "textcat.cfg",
        "head": "textcat",
        "baseline": "textcat",
        "main": "accuracy",
        "report": ["accuracy", "cats_score", "cats_macro_f"],
    },
    "multilabel": {
        "config": "textcat_multilabel.cfg",
        "head": "textcat_multilabel",
        "baseline": "textcat_multilabel",
        "main": "cats_macro_f",
        "report": ["cats_macro_f", "cats_micro_f", "cats_macro_auc"],
    },
    "rel": {
        "config": "rel.cfg",
        "head": "spanbert_rel",
        "baseline": "rel_pairs",
        "main": "rel_micro_f",
        "report": ["rel_micro_f", "rel_micro_p", "rel_micro_r", "rel_boundaries_f", "rel_macro_f", "ents_f"],
    },
    "coref": {
        "config": "coref.cfg",
        "head": "spanbert_coref",
        "baseline": "experimental_coref",
        "main": "coref_f",
        "report": ["coref_f", "coref_muc_f", "coref_b3_f", "coref_ceafe_f", "coref_mention_f"],
    },
}

# The Python of the coref task's `spacy` system (scripts/coref_baseline_venv.sh builds it).
COREF_BASELINE_PYTHON = REPO / ".venv-coref-baseline" / "bin" / "python"
COREF_BASELINE_SCRIPT = Path(__file__).resolve().parent / "coref_baseline.py"

# The components that set doc.ents in each rel system, disabled in the
# gold-entity evaluation.
REL_NER = {"spanbert": "spanbert_ner", "pairs": "ner"}

LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "upstream": "transformer",
    "pooling": {"@layers": "reduce_mean.v1"},
}


def task_spec(task: str, spans_key: str = SPANS_KEY) -> Dict[str, Any]:
    """TASKS[task], with the score names of nested data whose gold spans are
    on `doc.spans[spans_key]`."""
    spec = dict(TASKS[task])
    if task == "nested":
        spec["main"] = f"spans_{spans_key}_f"
        spec["report"] = [f"spans_{spans_key}_{m}" for m in ("f", "p", "r")]
    return spec


def read_docs(path: Path):
    """The docs of a .spacy file or a folder of them (as spaCy's corpus
    reader allows), one file at a time; a ValueError names a file that is
    not a DocBin."""
    from spacy.tokens import DocBin
    from spacy.training.corpus import walk_corpus
    from spacy.vocab import Vocab

    for file in walk_corpus(path, ".spacy"):
        try:
            docs = list(DocBin().from_disk(file).get_docs(Vocab()))
        except Exception as err:  # msgpack / zlib errors of a file that is not a DocBin
            raise ValueError(f"cannot read {file} as a spaCy DocBin ({type(err).__name__}: {err})") from None
        yield from docs


def span_keys(path: Path) -> Dict[str, int]:
    """Spans per span-group key over the docs of a .spacy file (or folder)."""
    counts: Dict[str, int] = {}
    for doc in read_docs(path):
        for key, group in doc.spans.items():
            if len(group):
                counts[key] = counts.get(key, 0) + len(group)
    return counts


def check_categories(task: str, paths: Dict[str, Optional[Path]]) -> None:
    """Raise a ValueError, before any training, when the text-classification
    data cannot train the task: training docs without `doc.cats`, or, for the
    exclusive `textcat` task, docs with more than one positive label (which
    spaCy's `textcat` rejects mid-training with E895)."""
    for option, path in paths.items():
        if path is None:
            continue
        n_docs = n_labelled = n_several = 0
        first = None  # the first doc with several positive labels
        for doc in read_docs(path):
            n_docs += 1
            n_labelled += bool(doc.cats)
            if task == "textcat" and sum(1 for v in doc.cats.values() if v >= 0.5) > 1:
                n_several += 1
                if first is None:
                    first = doc
        if option == "--train" and n_docs and not n_labelled:
            raise ValueError(
                f"{task}: none of the {n_docs} docs of --train {path} has doc.cats. Convert labelled "
                f"text with python -m spacy_spanbert.convert (e.g. trec, goemotions, prodigy)."
            )
        if first is not None:
            labels = sorted(k for k, v in first.cats.items() if v >= 0.5)
            raise ValueError(
                f"textcat: {n_several} of the {n_docs} docs of {option} {path} have more than "
                f"one positive label (the first: {first.text[:40]!r}, {', '.join(labels)}); "
                f"the textcat task trains exclusive classes. Use the multilabel task for this data."
            )


def check_relations(train: Path) -> None:
    """Raise a ValueError, before any training, when no doc of the rel
    task's training data has `doc._.relations`."""
    from spacy_spanbert.rel import ensure_relations_extension, get_relations

    ensure_relations_extension()
    n_docs = n_relations = 0
    for doc in read_docs(train):
        n_docs += 1
        n_relations += len(get_relations(doc))
    if not n_relations:
        raise ValueError(
            f"rel: none of the {n_docs} docs of --train {train} has doc._.relations. Convert SpERT JSON "
            f"with python -m spacy spanbert convert spert (or save docs with DocBin(store_user_data=True))."
        )


def gold_spans_key(train: Path, dev: Path, test: Optional[Path], requested: Optional[str]) -> str:
    """The span-group key of the nested gold spans: `requested`, else
    "spanbert_ner" if the training docs use it, else their only key with
    spans. Raises ValueError when there is none or it is ambiguous."""
    found = span_keys(train)
    listing = ", ".join(f"{key!r} ({n} spans)" for key, n in sorted(found.items())) or "none"
    if requested is not None:
        key = requested
        if key not in found:
            raise ValueError(
                f"--spans-key {key!r}: no spans under that key in --train {train} (its span groups: {listing})"
            )
    elif SPANS_KEY in found:
        key = SPANS_KEY
    elif len(found) == 1:
        key = next(iter(found))
    elif not found:
        raise ValueError(
            f"nested: the docs of --train {train} have no span group with spans. Nested gold spans "
            f"go on doc.spans[KEY] (python -m spacy_spanbert.convert litbank writes "
            f"doc.spans[{SPANS_KEY!r}]); for flat entities on doc.ents use the ner task."
        )
    else:
        raise ValueError(
            f"nested: --train {train} has several span groups ({listing}); name the gold one with --spans-key KEY"
        )
    for option, path in (("--dev", dev), ("--test", test)):
        keys = span_keys(path) if path is not None else {}
        if keys and key not in keys:
            raise ValueError(
                f"nested: {option} {path} has no spans under {key!r}, the gold key of --train "
                f"(its span groups: {', '.join(sorted(keys))})"
            )
    return key


def baseline_component(task: str, max_size: int, spans_key: str = SPANS_KEY) -> Dict[str, Any]:
    """spaCy's own component for TASK, as in `spacy init config` for a
    transformer pipeline optimised for accuracy."""
    if task == "ner":
        return {
            "factory": "ner",
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "extra_state_tokens": False,
                "hidden_width": 64,
                "maxout_pieces": 2,
                "use_upper": False,
                "nO": None,
                "tok2vec": dict(LISTENER),
            },
        }
    if task == "nested":
        return {
            "factory": "spancat",
            "spans_key": spans_key,
            "threshold": 0.5,
            "max_positive": None,
            "suggester": {"@misc": "spacy.ngram_suggester.v1", "sizes": list(range(1, max_size + 1))},
            "model": {
                "@architectures": "spacy.SpanCategorizer.v1",
                "reducer": {"@layers": "spacy.mean_max_reducer.v1", "hidden_size": 128},
                "scorer": {"@layers": "spacy.LinearLogistic.v1", "nO": None, "nI": None},
                "tok2vec": dict(LISTENER),
            },
        }
    exclusive = task == "textcat"
    return {
        "factory": "textcat" if exclusive else "textcat_multilabel",
        "threshold": 0.0 if exclusive else 0.5,
        "model": {
            "@architectures": "spacy.TextCatEnsemble.v2",
            "nO": None,
            "tok2vec": dict(LISTENER),
            "linear_model": {
                "@architectures": "spacy.TextCatBOW.v3",
                "exclusive_classes": exclusive,
                "length": 262144,
                "ngram_size": 1,
                "no_output_layer": False,
            },
        },
    }


def rel_pairs_components(config: Config) -> None:
    """Make the loaded rel.cfg the `pairs` system: the transformer, spaCy's
    `ner` (as in the ner task) and the tutorial-style relation component of
    rel_baseline.py (importing it registers its factory), which pairs entities
    like rel.cfg's spanbert_rel and is checkpointed by the same score weights."""
    import rel_baseline

    rel = config["components"]["spanbert_rel"]
    for name in list(config["components"]):
        if name != "transformer":
            del config["components"][name]
    config["components"]["ner"] = baseline_component("ner", 0)
    config["components"][TASKS["rel"]["baseline"]] = {
        "factory": rel_baseline.FACTORY,
        "threshold": rel["threshold"],
        "max_distance": rel["max_distance"],
        "max_pairs": rel["max_pairs"],
        "scorer": {"@scorers": "spacy-spanbert.rel_scorer.v1"},
        "model": {"@architectures": rel_baseline.ARCHITECTURE, "nO": None, "tok2vec": dict(LISTENER)},
    }
    config["nlp"]["pipeline"] = ["transformer", "ner", TASKS["rel"]["baseline"]]
    # rel.cfg's weights on the scores this pipeline has (no spanbert_ner span group)
    weights = config["training"]["score_weights"]
    config["training"]["score_weights"] = {k: v for k, v in weights.items() if not k.startswith("spans_")}


def check_coref_clusters(train: Path) -> None:
    """Raise a ValueError, before any training, when no doc of the coref
    task's training data has clusters (`doc.spans["coref_clusters_N"]`)."""
    from spacy_spanbert.coref.scoring import DEFAULT_CLUSTER_PREFIX, cluster_keys

    n_docs = n_clusters = 0
    for doc in read_docs(train):
        n_docs += 1
        n_clusters += sum(1 for key in cluster_keys(doc, DEFAULT_CLUSTER_PREFIX) if len(doc.spans[key]))
    if not n_clusters:
        raise ValueError(
            f"coref: none of the {n_docs} docs of --train {train} has coreference clusters in "
            f"doc.spans['{DEFAULT_CLUSTER_PREFIX}_N']. Convert CoNLL-2012 data with python -m spacy "
            f"spanbert convert conll2012."
        )


def coref_baseline_components(config: Config) -> None:
    """Make the loaded coref.cfg the coref task's `spacy` system, as spaCy's
    coref pipeline: a sentencizer, the transformer, spacy-experimental's
    experimental_coref (word-level clusters) and experimental_span_resolver
    (each clustered word expanded to its mention), both with their default
    model settings, listening to the transformer. The project's coreference
    scorer and coref.cfg's score weights choose the checkpoints;
    coref_baseline.py registers the scorer, reader and logger in spaCy 3.7."""
    import coref_baseline

    weights = dict(config["training"]["score_weights"])
    for name in list(config["components"]):
        if name != "transformer":
            del config["components"][name]
    components = config["components"]
    components["sentencizer"] = {"factory": "sentencizer"}
    components["coref"] = {
        "factory": "experimental_coref",
        "span_cluster_prefix": coref_baseline.HEAD_PREFIX,
        # scores, once the whole pipeline has run, the span resolver's mention clusters
        "scorer": {"@scorers": "spacy-spanbert.coref_scorer.v1"},
        "model": {
            "@architectures": "spacy-experimental.Coref.v1",
            "distance_embedding_size": 20,
            "hidden_size": 1024,
            "depth": 1,
            "dropout": 0.3,
            "antecedent_limit": 50,
            "antecedent_batch_size": 512,
            "tok2vec": dict(LISTENER),
        },
    }
    components["span_resolver"] = {
        "factory": "experimental_span_resolver",
        "input_prefix": coref_baseline.HEAD_PREFIX,
        "output_prefix": coref_baseline.CLUSTER_PREFIX,
        # its span accuracy pairs gold and predicted clusters by number: for gold heads only
        "scorer": None,
        "model": {
            "@architectures": "spacy-experimental.SpanResolver.v1",
            "hidden_size": 1024,
            "distance_embedding_size": 64,
            "conv_channels": 4,
            "window_size": 1,
            "max_distance": 128,
            "prefix": coref_baseline.HEAD_PREFIX,
            "tok2vec": dict(LISTENER),
        },
    }
    config["nlp"]["pipeline"] = ["sentencizer", "transformer", "coref", "span_resolver"]
    config["training"]["annotating_components"] = ["sentencizer"]
    weights.update(dict.fromkeys(("coref_p", "coref_r", "span_accuracy", "sents_f", "sents_p", "sents_r")))
    config["training"]["score_weights"] = weights
    # spacy-spanbert's callbacks are not registered in spaCy 3.7
    config["initialize"]["before_init"] = None
    for name, copy_heads in (("train", True), ("dev", False)):
        corpus = config["corpora"][name]
        config["corpora"][name] = {
            "@readers": coref_baseline.READER,
            "path": corpus["path"],
            "max_length": corpus["max_length"],
            "limit": corpus["limit"],
            "copy_heads": copy_heads,
        }


def one_doc_batches(train: Path, batch_words: int, max_length: int) -> bool:
    """Whether spaCy's batch_by_padded batcher (`batch_words`) gives each
    training doc a batch of its own: a doc joins a batch only if the batch,
    padded to its longest doc, stays within `batch_words`, so not when every
    doc is longer than half of it (and `max_length` splits none)."""
    return all(2 * len(doc) > batch_words and not 0 < max_length <= len(doc) for doc in read_docs(train))


def coref_baseline_budget(config: Config, args: argparse.Namespace, folder: Path) -> None:
    """The `spacy` coref system's data and batches: the training docs
    with head words (`coref_baseline.py prepare` writes them to
    FOLDER/train_heads.spacy). spacy-experimental's components take one doc
    per batch, so batch_by_padded is kept only when it gives each doc a
    batch of its own (as for both systems on LitBank); else one doc a batch."""
    config["paths"]["train"] = str(folder / "train_heads.spacy")
    max_length = int(config["corpora"]["train"]["max_length"] or 0)
    if not one_doc_batches(args.train, args.batch_words, max_length):
        config["training"]["batcher"] = {"@batchers": "spacy.batch_by_sequence.v1", "size": 1, "get_length": None}


def looks_like_a_path(encoder: str) -> bool:
    """Whether --encoder names a folder rather than a Hugging Face model name
    ("org/name"): it starts like a path or has more than one "/"."""
    return encoder.startswith(("/", ".", "~")) or encoder.count("/") > 1


def encoder_lowercase(encoder: str) -> Optional[bool]:
    """Whether the encoder's tokenizer lowercases: from a local folder's
    tokenizer config, else from the name ('uncased' / 'cased'); None if unknown."""
    folder = Path(encoder)
    config = folder / "tokenizer_config.json"
    if config.exists():
        value = srsly.read_json(config).get("do_lower_case")
        if value is not None:
            return bool(value)
    name = encoder.lower()
    if "uncased" in name:
        return True
    if "cased" in name:
        return False
    return None


def span_score_weights(spans_key: str) -> Dict[str, float]:
    """Checkpoints chosen by the span F of the gold key alone."""
    return {f"spans_{spans_key}_f": 1.0, f"spans_{spans_key}_p": 0.0, f"spans_{spans_key}_r": 0.0}


def build_config(task: str, system: str, args: argparse.Namespace, curve_path: Path) -> Config:
    spec = TASKS[task]
    config = util.load_config(CONFIGS / spec["config"], overrides=args.overrides, interpolate=False)
    max_size = config["components"]["spanbert"]["model"]["suggester"]["max_size"]
    if system == "pairs":
        rel_pairs_components(config)
    elif system == "spacy" and task == "coref":
        coref_baseline_components(config)
    elif system == "spacy":
        component = spec["baseline"]
        for name in list(config["components"]):
            if name != "transformer":
                del config["components"][name]
        config["components"][component] = baseline_component(task, max_size, args.spans_key)
        config["nlp"]["pipeline"] = ["transformer", component]
        if task == "nested":
            weights = {f"spans_sc_{m}": None for m in ("f", "p", "r")}
            # spancat's defaults name its default key "sc"; without these None
            # weights spaCy would average in an always-zero spans_sc_f
            weights.update(span_score_weights(args.spans_key))
            config["training"]["score_weights"] = weights
        elif task == "ner":
            config["training"]["score_weights"] = {
                "ents_f": 1.0,
                "ents_p": 0.0,
                "ents_r": 0.0,
                "ents_per_type": None,
            }
    elif task == "nested" and args.spans_key != SPANS_KEY:
        # gold spans under another key: spanbert_ner trains on, writes and is
        # scored on that key, and the candidates keep out of its way
        config["components"]["spanbert_ner"]["spans_key"] = args.spans_key
        if config["components"]["spanbert"]["spans_key"] == args.spans_key:
            config["components"]["spanbert"]["spans_key"] = "spanbert_candidates"
        weights = dict(config["training"]["score_weights"])
        for m in ("f", "p", "r"):
            weights.pop(f"spans_{SPANS_KEY}_{m}", None)
        weights.update(span_score_weights(args.spans_key))
        config["training"]["score_weights"] = weights
    transformer = config["components"]["transformer"]["model"]
    transformer["name"] = args.encoder
    lowercase = encoder_lowercase(args.encoder)
    if lowercase is None:
        del transformer["tokenizer_config"]["do_lower_case"]
    else:
        transformer["tokenizer_config"]["do_lower_case"] = lowercase
    config["paths"]["train"] = str(args.train)
    config["paths"]["dev"] = str(args.dev)
    config["system"]["seed"] = args.seed
    training = config["training"]
    training["max_steps"] = args.steps
    training["eval_frequency"] = args.eval_frequency or max(1, args.steps // 10)
    training["patience"] = 0
    training["batcher"]["size"] = args.batch_words
    # long docs (e.g. whole LitBank excerpts) get a batch of their own instead of being dropped
    training["batcher"]["discard_oversize"] = False
    schedule = training["optimizer"]["learn_rate"]
    schedule["initial_rate"] = args.lr
    schedule["warmup_steps"] = max(1, args.steps // 10)
    schedule["total_steps"] = args.steps
    training["logger"] = {"@loggers": "spacy-spanbert-bench.curve.v1", "path": str(curve_path)}
    if task == "coref" and system == "spacy":
        coref_baseline_budget(config, args, Path(curve_path).parent)
    return config


@util.registry.loggers("spacy-spanbert-bench.curve.v1")
def curve_logger(path: str):
    """Print one line per evaluation and append it to a JSONL file."""

    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        start = time.perf_counter()
        Path(path).write_text("")

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            if info is None:
                return
            row = {
                "step": info["step"],
                "score": info["score"],
                "losses": {k: float(v) for k, v in info["losses"].items()},
                "seconds": round(time.perf_counter() - start, 1),
                "other_scores": {k: v for k, v in info["other_scores"].items() if isinstance(v, (int, float))},
            }
            with open(path, "a", encoding="utf8") as f:
                f.write(json.dumps(row) + "\n")
            losses = " ".join(f"{k}={v:.2f}" for k, v in row["losses"].items())
            stdout.write(f"  step {row['step']:>5}  score {row['score']:.4f}  {losses}  {row['seconds']}s\n")
            stdout.flush()

        return log_step, lambda: None

    return setup


def accuracy(examples: List[Example]) -> Optional[float]:
    """Share of docs whose best predicted label is the gold label (exclusive
    classes; docs without a positive gold label are skipped)."""
    right = total = 0
    for eg in examples:
        gold = eg.reference.cats
        if not gold or max(gold.values()) < 0.5 or not eg.predicted.cats:
            continue
        total += 1
        right += max(gold, key=gold.get) == max(eg.predicted.cats, key=eg.predicted.cats.get)
    return right / total if total else None


def evaluate(nlp, path: Path, batch_size: int) -> Dict[str, Any]:
    """Score NLP on the corpus at PATH and time its `nlp.pipe` pass."""
    examples = list(Corpus(str(path))(nlp))
    docs = [eg.predicted for eg in examples]
    n_words = sum(len(doc) for doc in docs)
    start = time.perf_counter()
    predicted = list(nlp.pipe(docs, batch_size=batch_size))
    seconds = time.perf_counter() - start
    scored = [Example(doc, eg.reference) for doc, eg in zip(predicted, examples)]
    scores = Scorer(nlp).score(scored)
    scores = {k: v for k, v in scores.items() if not k.startswith(("token_", "speed"))}
    scores["accuracy"] = accuracy(scored)
    scores["words_per_second"] = n_words / seconds if seconds else None
    return scores


def gold_entity_docs(examples: List[Example], vocab) -> List[Example]:
    """The examples with fresh predicted docs in the reference's tokens that
    carry the reference's entities (and nothing else)."""
    from spacy.tokens import Doc, Span

    out = []
    for eg in examples:
        ref = eg.reference
        doc = Doc(vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref])
        doc.ents = [Span(doc, e.start, e.end, label=e.label_) for e in ref.ents]
        out.append(Example(doc, ref))
    return out


def evaluate_gold_entities(nlp, path: Path, batch_size: int, ner: str) -> Dict[str, Any]:
    """Score NLP's relations on the corpus at PATH given the gold entities:
    each doc gets the reference's `doc.ents` and the pipeline runs without
    its NER component `ner`."""
    examples = gold_entity_docs(list(Corpus(str(path))(nlp)), nlp.vocab)
    with nlp.select_pipes(disable=[ner]):
        predicted = list(nlp.pipe([eg.predicted for eg in examples], batch_size=batch_size))
    # scored by the whole pipeline, so ents_f (of the gold entities) is there too
    scored = [Example(doc, eg.reference) for doc, eg in zip(predicted, examples)]
    scores = Scorer(nlp).score(scored)
    return {k: v for k, v in scores.items() if not k.startswith(("token_", "speed"))}


def run_system(task: str, system: str, args: argparse.Namespace) -> Dict[str, Any]:
    from spacy.cli.train import train

    if system == "spanmarker":
        import spanmarker

        return spanmarker.run_system(args)
    if task == "coref" and system == "spacy":
        return run_coref_baseline(args)
    folder = Path(args.output) / system
    folder.mkdir(parents=True, exist_ok=True)
    curve_path = folder / "curve.jsonl"
    config = build_config(task, system, args, curve_path)
    config.to_disk(folder / "config.cfg")
    print(f"\n== {system}: training {args.steps} steps ({folder / 'config.cfg'})", flush=True)
    util.fix_random_seed(args.seed)
    start = time.perf_counter()
    train(folder / "config.cfg", folder / "model")
    train_seconds = time.perf_counter() - start
    nlp = util.load_model(folder / "model" / "model-best")
    result: Dict[str, Any] = {"train_seconds": round(train_seconds, 1)}
    if task == "coref":
        result.update(evaluate_coref(nlp, args))
    else:
        result["dev"] = evaluate(nlp, args.dev, args.eval_batch_size)
        result["words_per_second"] = result["dev"].pop("words_per_second")
        if args.test:
            result["test"] = evaluate(nlp, args.test, args.eval_batch_size)
            result["test"].pop("words_per_second")
    if task == "rel":
        for split, path in (("dev", args.dev), ("test", args.test)):
            if path is not None:
                result[f"{split}_gold_entities"] = evaluate_gold_entities(
                    nlp, path, args.eval_batch_size, REL_NER[system]
                )
    result["curve"] = [json.loads(line) for line in curve_path.read_text().splitlines() if line]
    return result


def without_singletons(doc):
    """A copy of DOC without its clusters of one mention."""
    from spacy_spanbert.coref.scoring import DEFAULT_CLUSTER_PREFIX, cluster_keys

    doc = doc.copy()
    for key in cluster_keys(doc, DEFAULT_CLUSTER_PREFIX):
        if len({(s.start, s.end) for s in doc.spans[key]}) < 2:
            del doc.spans[key]
    return doc


def coref_split_scores(split: str, predicted: List[Any], references: List[Any]) -> Dict[str, Dict[str, Any]]:
    """The project's coreference scores of the predicted docs against the
    gold ones (the same texts, in order), over all clusters (key SPLIT) and
    without the clusters of one mention on either side (SPLIT_without_singletons)."""
    from spacy_spanbert.coref.scoring import DEFAULT_CLUSTER_PREFIX, cluster_keys, score_coref

    if len(predicted) != len(references) or any(p.text != r.text for p, r in zip(predicted, references)):
        raise ValueError(f"coref {split}: the predicted docs are not those of the gold data, in order")
    out = {}
    for name, drop in ((split, False), (f"{split}_without_singletons", True)):
        pairs = [
            (without_singletons(p), without_singletons(r)) if drop else (p, r) for p, r in zip(predicted, references)
        ]
        scores: Dict[str, Any] = score_coref([Example(p, r) for p, r in pairs])
        keys = [(p, key) for p, _ in pairs for key in cluster_keys(p, DEFAULT_CLUSTER_PREFIX)]
        scores["predicted_clusters"] = len(keys)
        scores["predicted_singletons"] = sum(1 for p, key in keys if len(p.spans[key]) == 1)
        out[name] = scores
    return out


def evaluate_coref(nlp, args: argparse.Namespace) -> Dict[str, Any]:
    """Score NLP's clusters on --dev (and --test) and time its `nlp.pipe`
    pass on dev. The docs are made from the gold docs' text, as spaCy's corpus
    reader does."""
    result: Dict[str, Any] = {}
    for split, path in (("dev", args.dev), ("test", args.test)):
        if path is None:
            continue
        references = list(read_docs(path))
        docs = [nlp.make_doc(doc.text) for doc in references]
        start = time.perf_counter()
        predicted = list(nlp.pipe(docs, batch_size=args.eval_batch_size))
        seconds = time.perf_counter() - start
        result.update(coref_split_scores(split, predicted, references))
        if split == "dev":
            result["words_per_second"] = sum(len(doc) for doc in docs) / seconds if seconds else None
    return result


def baseline_call(args: argparse.Namespace, command: List[Any], capture: bool) -> Optional[Dict[str, Any]]:
    """Run `coref_baseline.py COMMAND` with --baseline-python; with `capture`,
    RETURNS its JSON answer (the last line it prints)."""
    import subprocess

    # nothing of this venv's packages may leak into spaCy 3.7's
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    argv = [str(args.baseline_python), str(COREF_BASELINE_SCRIPT), *map(str, command)]
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE if capture else None, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"coref baseline: {' '.join(argv)} failed with exit code {done.returncode} (see above)")
    return json.loads(done.stdout.strip().splitlines()[-1]) if capture else None


def run_coref_baseline(args: argparse.Namespace) -> Dict[str, Any]:
    """The coref task's `spacy` system, in its own virtualenv: head words for
    the training docs, `spacy train`, predictions on dev (and test) written as
    DocBins, scored here by the project's scorer."""
    import coref_baseline

    folder = Path(args.output) / "spacy"
    folder.mkdir(parents=True, exist_ok=True)
    curve_path = folder / "curve.jsonl"
    environment = baseline_call(args, ["versions"], capture=True)
    mentions = baseline_call(args, ["prepare", args.train, folder / "train_heads.spacy"], capture=True)
    config = build_config("coref", "spacy", args, curve_path)
    config.to_disk(folder / "config.cfg")
    print(
        f"\n== spacy: training {args.steps} steps ({folder / 'config.cfg'}; spaCy {environment['spacy']}, "
        f"spacy-experimental {environment['spacy-experimental']}); training mentions: {mentions['kept']} kept, "
        f"{mentions['dropped']} dropped for sharing their last token with a shorter one",
        flush=True,
    )
    start = time.perf_counter()
    baseline_call(args, ["train", folder / "config.cfg", folder / "model", "--seed", args.seed], capture=False)
    result: Dict[str, Any] = {"train_seconds": round(time.perf_counter() - start, 1)}
    for split, path in (("dev", args.dev), ("test", args.test)):
        if path is None:
            continue
        output = folder / f"{split}_predicted.spacy"
        command = ["predict", folder / "model" / "model-best", path, output, "--batch-size", args.eval_batch_size]
        timing = baseline_call(args, command, capture=True)
        result.update(coref_split_scores(split, list(read_docs(output)), list(read_docs(path))))
        if split == "dev":
            result["words_per_second"] = timing["words"] / timing["seconds"] if timing["seconds"] else None
    batcher = config["training"]["batcher"]
    result["recipe"] = {
        "environment": {"python_path": str(args.baseline_python), **environment},
        "pipeline": "sentencizer, transformer, experimental_coref, experimental_span_resolver "
        "(spacy-experimental's default model settings; listeners with grad_factor 1.0, as spacy-spanbert's)",
        "head_words": coref_baseline.HEAD_WORD_NOTE,
        "training_mentions": mentions,
        "batches": "batch_by_padded as spanbert's: one doc each (every training doc is longer than half of --batch-words)"
        if batcher["@batchers"] == "spacy.batch_by_padded.v1"
        else "one doc each (spacy.batch_by_sequence.v1, size 1): spacy-experimental's components take one doc per batch",
        "train_seconds": "the whole `coref_baseline.py train` process, including its start",
    }
    result["curve"] = [json.loads(line) for line in curve_path.read_text().splitlines() if line]
    return result


def encoder_label(encoder: str) -> str:
    """A short name for tables: the folder name (its parent's for a `model` folder)."""
    path = Path(encoder)
    if path.name == "model" and path.parent.name:
        return path.parent.name
    return path.name or encoder


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{100 * value:.2f}" if value <= 1.0 else f"{value:.0f}"
    return "-" if value is None else str(value)


def table(task: str, results: Dict[str, Any]) -> str:
    if task == "rel":
        return rel_table(results)
    if task == "coref":
        return coref_table(results)
    spec = task_spec(task, results.get("spans_key", SPANS_KEY))
    systems = results["systems"]
    splits = [s for s in ("dev", "test") if all(s in r for r in systems.values())]
    head = ["system"] + [f"{split} {key}" for split in splits for key in spec["report"]]
    head += ["train s", "words/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in systems.items():
        row = [name] + [fmt(res[split].get(key)) for split in splits for key in spec["report"]]
        row += [f"{res['train_seconds']:.0f}", f"{res['words_per_second']:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    for other in [name for name in systems if name != "spanbert" and "spanbert" in systems]:
        a, b = systems["spanbert"], systems[other]
        row = [f"spanbert - {other}"]
        for split in splits:
            for key in spec["report"]:
                x, y = a[split].get(key), b[split].get(key)
                row.append(f"{100 * (x - y):+.2f}" if x is not None and y is not None else "-")
        row += [
            f"x{a['train_seconds'] / b['train_seconds']:.2f}",
            f"x{a['words_per_second'] / b['words_per_second']:.2f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def rel_table(results: Dict[str, Any]) -> str:
    """The rel table: per split, the end-to-end rows (predicted entities)
    and the gold-entity rows (the relation head alone), each with the
    differences to spanbert."""
    return variants_table(results, "rel", "entities", [("predicted", ""), ("gold", "_gold_entities")])


def coref_table(results: Dict[str, Any]) -> str:
    """The coref table: per split, the rows over all clusters and those
    without singleton clusters, each with the differences to spanbert."""
    return variants_table(results, "coref", "clusters", [("all", ""), ("no singletons", "_without_singletons")])


def variants_table(results: Dict[str, Any], task: str, column: str, variants: List[Tuple[str, str]]) -> str:
    """Per split and per scoring variant (`column` names it; the scores of
    variant (label, suffix) are under the split's name + suffix), a row per
    system and the differences to spanbert."""
    report = TASKS[task]["report"]
    systems = results["systems"]
    head = ["split", column, "system"] + report + ["train s", "words/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def ratio(x, y):
        return f"x{x / y:.2f}" if x and y else "-"

    for split in ("dev", "test"):
        for label, suffix in variants:
            key = split + suffix
            if not all(key in r for r in systems.values()):
                continue
            for name, res in systems.items():
                row = [split, label, name] + [fmt(res[key].get(m)) for m in report]
                row += [f"{res['train_seconds']:.0f}", fmt(res.get("words_per_second"))]
                lines.append("| " + " | ".join(row) + " |")
            for other in [name for name in systems if name != "spanbert" and "spanbert" in systems]:
                a, b = systems["spanbert"], systems[other]
                row = [split, label, f"spanbert - {other}"]
                for m in report:
                    x, y = a[key].get(m), b[key].get(m)
                    row.append(f"{100 * (x - y):+.2f}" if x is not None and y is not None else "-")
                row += [
                    ratio(a["train_seconds"], b["train_seconds"]),
                    ratio(a["words_per_second"], b["words_per_second"]),
                ]
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(task: str, results: Dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no learning curve plot.")
        return
    main = task_spec(task, results.get("spans_key", SPANS_KEY))["main"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, res in results["systems"].items():
        steps = [row["step"] for row in res["curve"]]
        values = [row["other_scores"].get(main, row["score"]) for row in res["curve"]]
        ax.plot(steps, values, marker="o", label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"dev {main if main != 'accuracy' else 'cats_score'}")
    ax.set_title(f"{task}: {encoder_label(results['encoder'])}, {results['budget']['steps']} steps")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TASKS) + ["qa"])
    parser.add_argument("--train", type=Path, required=True, help="training DocBin (.spacy)")
    parser.add_argument("--dev", type=Path, required=True, help="dev DocBin (.spacy)")
    parser.add_argument("--test", type=Path, default=None, help="optional test DocBin (.spacy)")
    parser.add_argument("--encoder", required=True, help="Hugging Face model name or folder")
    parser.add_argument("--output", type=Path, required=True, help="output folder")
    parser.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (warmup_linear)")
    parser.add_argument("--batch-words", type=int, default=1000, help="padded batch size in words")
    parser.add_argument("--eval-frequency", type=int, default=0, help="default: steps / 10")
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=["spanbert", "spacy", "spanmarker", "transformers", "pairs"],
        default=None,
        help="default: spanbert spacy (qa: spanbert transformers; rel: spanbert pairs); ner also takes "
        "spanmarker (SpanMarker's own trainer; needs the [bench] extra)",
    )
    parser.add_argument(
        "--speed-rounds",
        type=int,
        default=3,
        help="ner with several systems: interleaved rounds of the words/s comparison at batch 16 and 64 (0: none)",
    )
    parser.add_argument("--batch-questions", type=int, default=16, help="qa: questions per training step")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="qa: no training; time the answering of both systems on the eval docs, side by side. "
        "ner: no training; time the systems trained by an earlier run into --output, side by side",
    )
    parser.add_argument(
        "--eval-limit",
        type=int,
        default=0,
        help="qa: score only the first N docs (paragraphs) of --dev and --test (default: all)",
    )
    parser.add_argument(
        "--spans-key",
        default=None,
        metavar="KEY",
        help=f"nested: the span group of the gold spans (default: {SPANS_KEY!r}, else the training docs' only span group)",
    )
    parser.add_argument(
        "--baseline-python",
        type=Path,
        default=None,
        metavar="PATH",
        help="coref: the Python of the spacy system's virtualenv (spaCy 3.7, spacy-experimental 0.6.4; "
        "default: .venv-coref-baseline/bin/python, built by bash scripts/coref_baseline_venv.sh)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="change a setting of the task's config file (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.task == "qa":
        return parse_qa_args(parser, args)
    if args.systems is None:
        args.systems = ["spanbert", "pairs"] if args.task == "rel" else ["spanbert", "spacy"]
    elif "transformers" in args.systems:
        parser.error("--systems transformers is for the qa task only")
    if args.task == "rel" and not set(args.systems) <= {"spanbert", "pairs"}:
        parser.error("rel compares the systems spanbert and pairs")
    if "pairs" in args.systems and args.task != "rel":
        parser.error("--systems pairs is for the rel task only")
    if "spanmarker" in args.systems and args.task != "ner":
        parser.error("--systems spanmarker is for the ner task only")
    args.overrides = {}
    for setting in args.settings:
        key, sep, value = setting.partition("=")
        if not sep or "." not in key or not key.strip():
            parser.error(f"--set {setting!r}: expected SECTION.KEY=VALUE, e.g. components.spanbert.model.n_layers=0")
        try:
            args.overrides[key.strip()] = json.loads(value)
        except ValueError:
            args.overrides[key.strip()] = value
    try:
        util.load_config(CONFIGS / TASKS[args.task]["config"], overrides=args.overrides, interpolate=False)
    except Exception as err:  # thinc's ConfigValidationError names the unknown setting
        parser.error(f"--set: {err}")
    for option in ("train", "dev", "test"):
        path = getattr(args, option)
        if path is not None and not path.exists():
            parser.error(f"--{option} {path} does not exist (convert the data with python -m spacy_spanbert.convert)")
    if args.steps <= 0:
        parser.error("--steps must be positive")
    if args.task in ("textcat", "multilabel"):
        try:
            check_categories(args.task, {"--train": args.train, "--dev": args.dev, "--test": args.test})
        except ValueError as err:
            parser.error(str(err))
    if args.task == "rel":
        try:
            check_relations(args.train)
        except ValueError as err:
            parser.error(str(err))
    if args.task == "coref":
        try:
            check_coref_clusters(args.train)
        except ValueError as err:
            parser.error(str(err))
        if "spacy" in args.systems:
            args.baseline_python = args.baseline_python or COREF_BASELINE_PYTHON
            if not args.baseline_python.exists():
                parser.error(
                    f"coref: the spacy system (spacy-experimental 0.6.4, which needs spaCy 3.7) runs in a "
                    f"virtualenv of its own, and {args.baseline_python} does not exist. Build it with "
                    f"bash scripts/coref_baseline_venv.sh [DIR] (then --baseline-python DIR/bin/python), "
                    f"or run --systems spanbert alone."
                )
    elif args.baseline_python is not None:
        parser.error("--baseline-python is for the coref task only")
    if args.task == "nested":
        try:
            args.spans_key = gold_spans_key(args.train, args.dev, args.test, args.spans_key)
        except ValueError as err:
            parser.error(str(err))
    elif args.spans_key is not None:
        parser.error("--spans-key is for the nested task only")
    else:
        args.spans_key = SPANS_KEY
    if looks_like_a_path(args.encoder) and not Path(args.encoder).expanduser().is_dir():
        parser.error(
            f"--encoder {args.encoder}: no such folder. Give a local model folder (e.g. MiniLM's, "
            "see benchmarks/README.md) or a Hugging Face model name that is in the local cache."
        )
    return args


# Training docs at least this long get a warning before training starts.
LONG_DOC_TOKENS = 8000


def long_docs_warning(train: Path, max_length: int, threshold: int = LONG_DOC_TOKENS) -> Optional[str]:
    """A warning when the training set holds docs of `threshold` tokens or
    more that `corpora.train.max_length` does not skip, else None.

    Training backpropagates through a whole doc at once. Measured with MiniLM
    on a 2-core CPU machine, one update needs about 0.40 GB per 1,000 tokens of
    the doc with spaCy's textcat_multilabel on the transformer, 0.56 GB with
    spanbert (1-4 token candidates) and its text classifier, and 0.82 GB with
    spanbert (1-8 token candidates) and its NER head; a 52,906-token GitHub
    issue in textcat_docs_issues took more than the machine's 24 GB."""
    lengths = [len(doc) for doc in read_docs(train)]
    long = [n for n in lengths if n >= threshold and (max_length <= 0 or n < max_length)]
    if not long:
        return None
    return (
        f"accuracy.py: {train} has {len(long)} training doc(s) of {threshold:,} tokens or "
        f"more (the longest: {max(long):,}). Each is backpropagated in one piece, which "
        f"needs about 0.4-0.8 GB per 1,000 tokens with MiniLM; to skip long docs in "
        f"training for both systems, add --set corpora.train.max_length=2000."
    )


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import spacy_spanbert  # noqa: F401

    if args.task == "qa":
        return main_qa(args)

    # the task config's own corpora.train.max_length, after any --set
    task_config = util.load_config(CONFIGS / TASKS[args.task]["config"], overrides=args.overrides, interpolate=False)
    warning = long_docs_warning(args.train, int(task_config["corpora"]["train"]["max_length"] or 0))
    if warning:
        print(warning, file=sys.stderr)

    if args.speed_only:
        return main_ner_speed(args)
    args.output.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Any] = {
        "task": args.task,
        "encoder": args.encoder,
        "budget": {
            "steps": args.steps,
            "batch_words": args.batch_words,
            "optimizer": "Adam.v1 (spaCy transformer defaults: L2 0.01 as weight decay, grad_clip 1.0)",
            "learn_rate": {
                "schedule": "warmup_linear.v1",
                "initial_rate": args.lr,
                "warmup_steps": max(1, args.steps // 10),
                "total_steps": args.steps,
            },
            "eval_frequency": args.eval_frequency or max(1, args.steps // 10),
            "seed": args.seed,
            "selection": "best dev checkpoint (model-best)"
            + (rel_selection(task_config) if args.task == "rel" else "")
            + (" by coref_f of the project's scorer (both systems)" if args.task == "coref" else ""),
        },
        "settings": args.overrides,
        **({"spans_key": args.spans_key} if args.task == "nested" else {}),
        "data": {"train": str(args.train), "dev": str(args.dev), "test": str(args.test) if args.test else None},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "systems": {},
    }
    for system in args.systems:
        results["systems"][system] = run_system(args.task, system, args)
        srsly.write_json(args.output / "results.json", results)
    if args.task == "ner" and len(args.systems) > 1 and args.speed_rounds > 0:
        results["speed"] = ner_speed_side_by_side(args)
        srsly.write_json(args.output / "results.json", results)
    settings = "".join(f", {key}={value}" for key, value in args.overrides.items())
    print(f"\n### {args.task} ({encoder_label(args.encoder)}, {args.steps} steps{settings})\n")
    print(table(args.task, results))
    if "speed" in results:
        import ner_speed

        print("\n" + ner_speed.speed_table(results["speed"]))
    plot(args.task, results, args.output / "learning_curve.png")
    print(f"\nwrote {args.output / 'results.json'} and {args.output / 'learning_curve.png'}")
    return 0


def rel_selection(config: Config) -> str:
    """How the rel checkpoints are chosen: rel.cfg's non-zero score weights."""
    weights = {k: v for k, v in config["training"]["score_weights"].items() if v}
    return " by the score " + " + ".join(f"{v} {k}" for k, v in weights.items()) + " (both systems)"


def ner_speed_side_by_side(args: argparse.Namespace) -> Dict[str, Any]:
    """Words/s of the trained NER systems in --output, interleaved (ner_speed.py)."""
    import ner_speed

    docs = [eg.reference for eg in Corpus(str(args.dev))(util.get_lang_class("en")())]
    speed = ner_speed.side_by_side(args.output, args.systems, docs, rounds=max(1, args.speed_rounds))
    speed["torch_threads"] = __import__("torch").get_num_threads()
    return speed


def main_ner_speed(args: argparse.Namespace) -> int:
    """`accuracy.py ner --speed-only`: time the systems an earlier run trained
    into --output and add the comparison to its results.json."""
    import ner_speed

    if args.task != "ner":
        raise SystemExit("--speed-only is for the qa and ner tasks")
    path = args.output / "results.json"
    results = srsly.read_json(path) if path.exists() else {"task": "ner", "systems": {}}
    results["speed"] = ner_speed_side_by_side(args)
    srsly.write_json(path, results)
    print(ner_speed.speed_table(results["speed"]))
    return 0


# ---------------------------------------------------------------------------
# qa: spanbert_qa against the standard Hugging Face recipe

QA_REPORT = ["qa_f1", "qa_exact", "qa_has_ans_f1", "qa_no_ans_acc"]
QA_MAX_LENGTH = 384
QA_STRIDE = 128
QA_MAX_ANSWER = 30
QA_N_BEST = 20


def parse_qa_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Check the options of the qa task."""
    if args.systems is None:
        args.systems = ["spanbert", "transformers"]
    elif "spacy" in args.systems:
        parser.error("qa compares the systems spanbert and transformers")
    if args.settings or args.spans_key is not None:
        parser.error("--set and --spans-key are not used by the qa task")
    args.overrides = {}
    args.spans_key = SPANS_KEY
    for option in ("train", "dev", "test"):
        path = getattr(args, option)
        if path is not None and not path.exists():
            parser.error(
                f"--{option} {path} does not exist (SQuAD JSON or a .spacy file from "
                f"python -m spacy_spanbert.convert squad)"
            )
    if args.steps <= 0 or args.batch_questions <= 0:
        parser.error("--steps and --batch-questions must be positive")
    if looks_like_a_path(args.encoder) and not Path(args.encoder).expanduser().is_dir():
        parser.error(f"--encoder {args.encoder}: no such folder")
    return args


def read_qa_docs(path: Path, nlp) -> List[Any]:
    """Docs with doc._.questions and the gold group, from SQuAD JSON or .spacy."""
    from spacy.tokens import DocBin

    from spacy_spanbert.commands.convert import QA_SPANS_KEY, read_squad

    if path.suffix == ".json":
        return read_squad(path, nlp, spans_key=QA_SPANS_KEY)[0]
    return list(DocBin(store_user_data=True).from_disk(path).get_docs(nlp.vocab))


def qa_items(docs) -> List[Dict[str, Any]]:
    """One record per question: doc index, id, question, context, gold
    answer texts and character spans."""
    from spacy_spanbert.commands.convert import QA_SPANS_KEY
    from spacy_spanbert.qa import gold_answer_texts

    items = []
    for d, doc in enumerate(docs):
        texts = gold_answer_texts(doc, QA_SPANS_KEY)
        group = doc.spans[QA_SPANS_KEY] if QA_SPANS_KEY in doc.spans else []
        spans: Dict[str, List[Any]] = {qid: [] for qid in texts}
        raw = group.attrs.get("texts") if len(group) else None
        for i, span in enumerate(group):
            if span.label_ in spans:
                # the original answer characters where the converter kept them
                start = span.start_char
                if raw is not None:
                    found = doc.text.find(raw[i], span.start_char)
                    start = found if found >= 0 and found < span.end_char else start
                    spans[span.label_].append((start, start + len(raw[i])))
                else:
                    spans[span.label_].append((span.start_char, span.end_char))
        for qid, question in doc._.questions.items():
            items.append(
                {
                    "doc": d,
                    "id": qid,
                    "question": question,
                    "context": doc.text,
                    "gold": texts[qid],
                    "spans": spans[qid],
                }
            )
    return items


def qa_batches(n_items: int, batch_size: int, steps: int, seed: int) -> List[List[int]]:
    """The training batches (question indices) both systems see, in order:
    shuffled epochs of the training questions."""
    import random

    rng = random.Random(seed)
    batches: List[List[int]] = []
    order: List[int] = []
    while len(batches) < steps:
        if len(order) < batch_size:
            fresh = list(range(n_items))
            rng.shuffle(fresh)
            order += fresh
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches


def best_threshold(golds, margins, texts) -> float:
    """The no-answer threshold with the best F1 (the official evaluation's
    `find_best_thresh`): answer when margin > threshold."""
    from spacy_spanbert.qa import score_answers

    candidates = sorted({m for m in margins if m != float("-inf")})
    options = [float("-inf")] + candidates
    best, best_f1 = float("inf"), score_answers(golds, [""] * len(golds))["qa_f1"]
    # answering the questions with margin > t for each t in turn
    for t in options:
        preds = [text if m > t else "" for text, m in zip(texts, margins)]
        f1 = score_answers(golds, preds)["qa_f1"]
        if f1 > best_f1:
            best, best_f1 = t, f1
    return best


def qa_scores(items, margins, texts, threshold: float) -> Dict[str, Any]:
    from spacy_spanbert.qa import score_answers

    preds = [text if m > threshold else "" for text, m in zip(texts, margins)]
    scores = score_answers([it["gold"] for it in items], preds)
    # JSON has no infinities: -inf answers every question that has a candidate
    scores["threshold"] = threshold if numpy.isfinite(threshold) else str(threshold)
    scores["questions"] = len(items)
    return scores


def qa_optimizer_settings(args) -> Dict[str, Any]:
    return {"initial_rate": args.lr, "warmup_steps": max(1, args.steps // 10), "total_steps": args.steps}


def run_qa_spanbert(args, train_docs, train_items, batches, eval_sets) -> Dict[str, Any]:
    """Train configs/qa.cfg's spanbert_qa through nlp.update, then answer."""
    from thinc.api import Adam, warmup_linear

    from spacy_spanbert.qa import register_extensions

    register_extensions()
    lower = encoder_lowercase(args.encoder)
    overrides = {
        "components.spanbert_qa.model.name": args.encoder,
        "components.spanbert_qa.model.do_lower_case": lower,
        "components.spanbert_qa.max_length": QA_MAX_LENGTH,
        "components.spanbert_qa.stride": QA_STRIDE,
        "components.spanbert_qa.max_answer_tokens": QA_MAX_ANSWER,
    }
    config = util.load_config(CONFIGS / "qa.cfg", overrides=overrides, interpolate=True)
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    qa = nlp.get_pipe("spanbert_qa")

    def examples(indices):
        by_doc: Dict[int, Dict[str, str]] = {}
        for i in indices:
            item = train_items[i]
            by_doc.setdefault(item["doc"], {})[item["id"]] = item["question"]
        egs = []
        for d, questions in by_doc.items():
            ref = train_docs[d].copy()
            ref._.questions = questions
            egs.append(Example(nlp.make_doc(ref.text), ref))
        return egs

    util.fix_random_seed(args.seed)
    nlp.initialize(lambda: examples(batches[0] if batches else [0]))
    optimizer = Adam(
        learn_rate=warmup_linear(**qa_optimizer_settings(args)),
        L2=0.01,
        L2_is_weight_decay=True,
        grad_clip=1.0,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
    )
    curve = []
    start = time.perf_counter()
    for step, indices in enumerate(batches, 1):
        losses = nlp.update(examples(indices), sgd=optimizer)
        optimizer.step_schedules()
        if step <= 3 or step % max(1, args.steps // 20) == 0 or step == len(batches):
            curve.append(
                {"step": step, "loss": losses["spanbert_qa"], "seconds": round(time.perf_counter() - start, 1)}
            )
            print(f"spanbert step {step}: loss {losses['spanbert_qa']:.3f}", flush=True)
    result: Dict[str, Any] = {"train_seconds": round(time.perf_counter() - start, 1), "curve": curve}
    outputs = {}
    for split, (docs, items) in eval_sets.items():
        qa.cfg["threshold"] = float("-inf")  # keep every best span and its margin
        fresh = []
        for doc in docs:
            new = nlp.make_doc(doc.text)
            new._.questions = dict(doc._.questions)
            fresh.append(new)
        t0 = time.perf_counter()
        answered = list(nlp.pipe(fresh, batch_size=8))
        seconds = time.perf_counter() - t0
        margins, texts = [], []
        for item in items:
            doc = answered[item["doc"]]
            group = doc.spans["spanbert_qa"]
            found = [k for k, span in enumerate(group) if span.label_ == item["id"]]
            margins.append(float(group.attrs["scores"][found[0]]) if found else float("-inf"))
            texts.append(group[found[0]].text if found else "")
        outputs[split] = (margins, texts, seconds, sum(len(d) for d in docs))
    return finish_qa_result(result, outputs, eval_sets)


def run_qa_transformers(args, train_items, batches, eval_sets) -> Dict[str, Any]:
    """The standard Hugging Face recipe in plain torch: AutoModelForQuestionAnswering
    (a start/end head), 384-piece windows with stride 128, CLS for no answer
    in training, n-best 20 starts x 20 ends, answers of at most 30 pieces,
    min no-answer score over windows."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    util.fix_random_seed(args.seed)
    lower = encoder_lowercase(args.encoder)
    kwargs = {} if lower is None else {"do_lower_case": lower}
    tokenizer = AutoTokenizer.from_pretrained(args.encoder, use_fast=True, **kwargs)
    model = AutoModelForQuestionAnswering.from_pretrained(args.encoder)
    settings = qa_optimizer_settings(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, settings["warmup_steps"], settings["total_steps"])

    def features(items):
        enc = tokenizer(
            [it["question"] for it in items],
            [it["context"] for it in items],
            truncation="only_second",
            max_length=QA_MAX_LENGTH,
            stride=QA_STRIDE,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="longest",
            return_tensors="pt",
        )
        return enc

    model.train()
    curve = []
    start = time.perf_counter()
    for step, indices in enumerate(batches, 1):
        items = [train_items[i] for i in indices]
        enc = features(items)
        starts, ends = [], []
        for w, sample in enumerate(enc["overflow_to_sample_mapping"].tolist()):
            seq = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w].tolist()
            ctx = [i for i, s in enumerate(seq) if s == 1]
            s_pos = e_pos = 0
            spans = items[sample]["spans"]
            if spans and ctx:
                a, b = spans[0]
                if offsets[ctx[0]][0] <= a and offsets[ctx[-1]][1] >= b:
                    s_pos = next(i for i in ctx if offsets[i][1] > a)
                    e_pos = [i for i in ctx if offsets[i][0] < b][-1]
            starts.append(s_pos)
            ends.append(e_pos)
        inputs = {k: v for k, v in enc.items() if k not in ("offset_mapping", "overflow_to_sample_mapping")}
        out = model(**inputs, start_positions=torch.tensor(starts), end_positions=torch.tensor(ends))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step <= 3 or step % max(1, args.steps // 20) == 0 or step == len(batches):
            curve.append({"step": step, "loss": out.loss.item(), "seconds": round(time.perf_counter() - start, 1)})
            print(f"transformers step {step}: loss {out.loss.item():.3f}", flush=True)
    result: Dict[str, Any] = {"train_seconds": round(time.perf_counter() - start, 1), "curve": curve}
    model.eval()
    outputs = {}
    for split, (docs, items) in eval_sets.items():
        t0 = time.perf_counter()
        margins = [float("-inf")] * len(items)
        nulls = [float("inf")] * len(items)
        texts = [""] * len(items)
        best = [float("-inf")] * len(items)
        # questions in batches whose windows go through the model together,
        # 16 windows at a time (spanbert_qa's batch_windows)
        for q0 in range(0, len(items), 16):
            chunk = items[q0 : q0 + 16]
            enc = features(chunk)
            inputs = {k: v for k, v in enc.items() if k not in ("offset_mapping", "overflow_to_sample_mapping")}
            with torch.no_grad():
                out_s, out_e = [], []
                for w0 in range(0, inputs["input_ids"].shape[0], 16):
                    out = model(**{k: v[w0 : w0 + 16] for k, v in inputs.items()})
                    out_s.append(out.start_logits)
                    out_e.append(out.end_logits)
                start_logits = torch.cat(out_s).numpy()
                end_logits = torch.cat(out_e).numpy()
            for w, sample in enumerate(enc["overflow_to_sample_mapping"].tolist()):
                q = q0 + sample
                seq = enc.sequence_ids(w)
                offsets = enc["offset_mapping"][w].tolist()
                s_log, e_log = start_logits[w], end_logits[w]
                nulls[q] = min(nulls[q], float(s_log[0] + e_log[0]))
                top_s = numpy.argsort(s_log)[::-1][:QA_N_BEST]
                top_e = numpy.argsort(e_log)[::-1][:QA_N_BEST]
                for i in top_s:
                    if seq[i] != 1:
                        continue
                    for j in top_e:
                        if seq[j] != 1 or j < i or j - i + 1 > QA_MAX_ANSWER:
                            continue
                        score = float(s_log[i] + e_log[j])
                        if score > best[q]:
                            best[q] = score
                            texts[q] = items[q]["context"][offsets[i][0] : offsets[j][1]]
        seconds = time.perf_counter() - t0
        margins = [b - n for b, n in zip(best, nulls)]
        outputs[split] = (margins, texts, seconds, sum(len(d) for d in docs))
    return finish_qa_result(result, outputs, eval_sets)


def finish_qa_result(result, outputs, eval_sets) -> Dict[str, Any]:
    """Choose the threshold on dev, score dev and test with it, and record
    the answering speed on dev."""
    margins, texts, seconds, n_words = outputs["dev"]
    dev_items = eval_sets["dev"][1]
    threshold = best_threshold([it["gold"] for it in dev_items], margins, texts)
    for split, (m, t, _s, _w) in outputs.items():
        result[split] = qa_scores(eval_sets[split][1], m, t, threshold)
        result[split]["f1_at_threshold_0"] = qa_scores(eval_sets[split][1], m, t, 0.0)["qa_f1"]
        # how well the best span matches when every question is answered
        result[split]["has_ans_f1_answering_all"] = qa_scores(eval_sets[split][1], m, t, float("-inf"))["qa_has_ans_f1"]
    n_questions = sum(len(items) for _, items in eval_sets.values())
    total_seconds = sum(o[2] for o in outputs.values())
    result["questions_per_second"] = n_questions / total_seconds if total_seconds else None
    # words of context read per second: each question reads its whole context
    n_words = sum(len(eval_sets[split][0][it["doc"]]) for split in eval_sets for it in eval_sets[split][1])
    result["words_per_second"] = n_words / total_seconds if total_seconds else None
    return result


def qa_table(results: Dict[str, Any]) -> str:
    systems = results["systems"]
    splits = [s for s in ("dev", "test") if all(s in r for r in systems.values())]
    head = ["system"] + [f"{split} {key}" for split in splits for key in QA_REPORT]
    head += ["train s", "questions/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = dict(systems)
    for name, res in rows.items():
        row = [name] + [fmt(res[split].get(key)) for split in splits for key in QA_REPORT]
        row += [f"{res['train_seconds']:.0f}", f"{res['questions_per_second']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    base = results.get("no_answer_baseline", {})
    if base:
        row = ["always no answer"] + [fmt(base[split].get(key)) for split in splits for key in QA_REPORT]
        lines.append("| " + " | ".join(row + ["-", "-"]) + " |")
    if set(systems) == {"spanbert", "transformers"}:
        a, b = systems["spanbert"], systems["transformers"]
        row = ["spanbert - transformers"]
        for split in splits:
            for key in QA_REPORT:
                x, y = a[split].get(key), b[split].get(key)
                row.append(f"{100 * (x - y):+.2f}" if x is not None and y is not None else "-")
        row += [
            f"x{a['train_seconds'] / b['train_seconds']:.2f}" if b["train_seconds"] else "-",
            f"x{a['questions_per_second'] / b['questions_per_second']:.2f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main_qa(args: argparse.Namespace) -> int:
    import spacy

    from spacy_spanbert.qa import register_extensions, score_answers

    register_extensions()
    nlp = spacy.blank("en")
    train_docs = read_qa_docs(args.train, nlp)
    limit = args.eval_limit or None
    dev_docs = read_qa_docs(args.dev, nlp)[:limit]
    if args.test is not None:
        test_docs = read_qa_docs(args.test, nlp)[:limit]
        split_note = "threshold chosen on --dev, scored on --test"
    else:
        half = len(dev_docs) // 2
        dev_docs, test_docs = dev_docs[:half], dev_docs[half:]
        split_note = (
            f"--dev split: its first {half} docs choose the threshold (dev), "
            f"the other {len(test_docs)} are held out (test)"
        )
    train_items = qa_items(train_docs)
    eval_sets = {"dev": (dev_docs, qa_items(dev_docs)), "test": (test_docs, qa_items(test_docs))}
    batches = [] if args.speed_only else qa_batches(len(train_items), args.batch_questions, args.steps, args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Any] = {
        "task": "qa",
        "encoder": args.encoder,
        "budget": {
            "steps": args.steps,
            "batch_questions": args.batch_questions,
            "optimizer": "Adam (spanbert: thinc Adam.v1, transformers: torch AdamW), weight decay 0.01, grad_clip 1.0",
            "learn_rate": {"schedule": "warmup_linear.v1", **qa_optimizer_settings(args)},
            "windows": {"max_length": QA_MAX_LENGTH, "stride": QA_STRIDE, "max_answer_tokens": QA_MAX_ANSWER},
            "seed": args.seed,
            "selection": ("untrained models, speed only; " if args.speed_only else "final model; ") + split_note,
        },
        "settings": {},
        "data": {
            "train": str(args.train),
            "dev": str(args.dev),
            "test": str(args.test) if args.test else None,
            "eval_limit_docs": args.eval_limit or None,
            "questions": {"train": len(train_items), **{k: len(v[1]) for k, v in eval_sets.items()}},
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "systems": {},
        "no_answer_baseline": {
            split: score_answers([it["gold"] for it in items], [""] * len(items))
            for split, (_, items) in eval_sets.items()
        },
    }
    for system in args.systems:
        print(f"\n== {system}: training {args.steps} steps", flush=True)
        if system == "spanbert":
            res = run_qa_spanbert(args, train_docs, train_items, batches, eval_sets)
        else:
            res = run_qa_transformers(args, train_items, batches, eval_sets)
        results["systems"][system] = res
        srsly.write_json(args.output / "results.json", results)
    print(f"\n### qa ({encoder_label(args.encoder)}, {args.steps} steps, batch {args.batch_questions} questions)\n")
    print(qa_table(results))
    print(f"\nwrote {args.output / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
