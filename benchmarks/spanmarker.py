"""The `spanmarker` system of `accuracy.py ner`: SpanMarker (Aarsen, span-marker
on PyPI) trained by its own trainer on the same encoder, sentences and budget
as the spaCy systems, its predictions turned into `doc.ents` and scored with
spaCy's `ents_*` metrics on the same docs.

Budget: the spaCy systems see `steps` batches of about `batch_words` words
(`spacy.batch_by_words.v1`); SpanMarker sees `steps` batches of `round(batch_words
/ mean words per training sentence)` sentences, so both see about the same
number of training words. Same peak learning rate, linear warm-up over 10% of
the steps then linear decay to 0, weight decay 0.01 and gradient clipping at
1.0 (spaCy's Adam defaults), and seed. SpanMarker keeps its usual
`entity_max_length` 8 (the project's suggester's width), `marker_max_length`
128 and `model_max_length` 256. A batch whose sentences do not divide by 3
loses up to 2 sentences to the gradient-accumulation slices.

span-marker is an optional dependency: `pip install --use-pep517
"spacy-spanbert[bench]"` (seqeval, which it needs, builds only with PEP 517).
"""

import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence

from spacy.tokens import Doc, Span
from spacy.util import filter_spans

INSTALL = 'pip install --use-pep517 "spacy-spanbert[bench]"'
ENTITY_MAX_LENGTH = 8
# A batch is taken in this many slices (gradient accumulation): the same
# update, in a third of the memory (SpanMarker repeats each sentence once per
# 128 candidate spans, with a marker pair per span).
ACCUMULATION = 3
MARKER_MAX_LENGTH = 128
MODEL_MAX_LENGTH = 256


def require_span_marker():
    """RETURNS (module): span_marker, or SystemExit with the install command."""
    try:
        import span_marker
    except ImportError:
        raise SystemExit(f"the spanmarker system needs span-marker: {INSTALL}") from None
    return span_marker


def iob2_tags(doc: Doc) -> List[str]:
    """The IOB2 tags of a doc's entities."""
    tags = ["O"] * len(doc)
    for ent in doc.ents:
        tags[ent.start] = f"B-{ent.label_}"
        for i in range(ent.start + 1, ent.end):
            tags[i] = f"I-{ent.label_}"
    return tags


def tag_set(docs: Iterable[Doc]) -> List[str]:
    """ "O", then B- and I- of every entity label, sorted."""
    labels = sorted({ent.label_ for doc in docs for ent in doc.ents})
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]


def batch_sentences(docs: Sequence[Doc], batch_words: int) -> int:
    """Sentences per SpanMarker batch that hold about `batch_words` words."""
    words = sum(len(doc) for doc in docs)
    return max(1, round(batch_words * len(docs) / max(words, 1)))


def predictions_to_ents(doc: Doc, predictions: List[Dict[str, Any]]) -> Doc:
    """Set `doc.ents` from SpanMarker's predictions for the doc's words
    (`word_start_index`, `word_end_index` exclusive, `label`, `score`). Overlaps
    (which SpanMarker's decoding already avoids) keep the longest span, as
    `spacy.util.filter_spans` does; spans outside the doc are an error.

    doc (Doc): The doc whose words were given to `SpanMarkerModel.predict`.
    predictions (List[Dict[str, Any]]): Its predictions.
    RETURNS (Doc): The doc, with `doc.ents` replaced.
    """
    spans = []
    for pred in predictions:
        start, end = int(pred["word_start_index"]), int(pred["word_end_index"])
        if not 0 <= start < end <= len(doc):
            raise ValueError(f"spanmarker: a prediction [{start}, {end}) lies outside a doc of {len(doc)} words")
        spans.append(Span(doc, start, end, label=pred["label"]))
    doc.ents = filter_spans(spans)
    return doc


def read_examples(path: Path, vocab) -> List[Any]:
    """The gold docs of a .spacy file as (words doc, reference) examples."""
    from spacy.tokens import DocBin
    from spacy.training import Example

    docs = list(DocBin().from_disk(path).get_docs(vocab))
    return [Example(blank_copy(doc), doc) for doc in docs]


def blank_copy(doc: Doc) -> Doc:
    """A doc with the same words and spaces and no annotation."""
    return Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def score(model: Any, examples: List[Any], batch_size: int) -> Dict[str, Any]:
    """spaCy's `ents_*` scores of SpanMarker's predictions on the examples'
    words, and the words/s of the prediction pass."""
    from spacy.scorer import get_ner_prf
    from spacy.training import Example

    docs = [eg.predicted for eg in examples]
    start = time.perf_counter()
    predicted = predict(model, docs, batch_size)
    seconds = time.perf_counter() - start
    scores = get_ner_prf([Example(doc, eg.reference) for doc, eg in zip(predicted, examples)])
    scores["words_per_second"] = sum(len(doc) for doc in docs) / seconds if seconds else None
    return scores


def train(
    train_docs: List[Doc],
    dev_examples: List[Any],
    *,
    encoder: str,
    folder: Path,
    steps: int,
    batch_words: int,
    lr: float,
    seed: int,
    eval_frequency: int,
    eval_batch_size: int,
) -> Dict[str, Any]:
    """Train SpanMarker on the docs' entities and keep the weights of the
    best dev `ents_f` of the evaluations every `eval_frequency` steps (as
    spaCy's `model-best`).

    RETURNS (Dict[str, Any]): "model" (the trained SpanMarkerModel, best
        weights loaded), its dev "scores" (from `score`), "train_seconds",
        "batch_sentences" and the "curve".
    """
    span_marker = require_span_marker()
    from datasets import Dataset
    from transformers import TrainerCallback, TrainingArguments

    tags = tag_set(train_docs)
    index = {tag: i for i, tag in enumerate(tags)}
    dataset = Dataset.from_dict(
        {
            "tokens": [[t.text for t in doc] for doc in train_docs],
            "ner_tags": [[index[tag] for tag in iob2_tags(doc)] for doc in train_docs],
        }
    )
    model = span_marker.SpanMarkerModel.from_pretrained(
        encoder,
        labels=tags,
        model_max_length=MODEL_MAX_LENGTH,
        marker_max_length=MARKER_MAX_LENGTH,
        entity_max_length=ENTITY_MAX_LENGTH,
    )
    per_batch = batch_sentences(train_docs, batch_words)
    curve: List[Dict[str, Any]] = []
    best: Dict[str, Any] = {"score": -1.0, "state": None}
    start = time.perf_counter()

    class EvaluateOnDev(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % 10 == 0:
                print(f"  step {state.global_step:>5}  {time.perf_counter() - start:.0f}s", flush=True)
            if state.global_step % eval_frequency and state.global_step != steps:
                return
            model.eval()
            scores = score(model, dev_examples, eval_batch_size)
            model.train()
            losses = [row["loss"] for row in state.log_history if "loss" in row]
            curve.append(
                {
                    "step": state.global_step,
                    "score": scores["ents_f"],
                    "other_scores": {key: scores[key] for key in ("ents_f", "ents_p", "ents_r")},
                    "losses": {"spanmarker": losses[-1] if losses else None},
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            print(f"  step {state.global_step:>5}  score {scores['ents_f']:.4f}", flush=True)
            if scores["ents_f"] > best["score"]:
                best["score"] = scores["ents_f"]
                best["scores"] = scores
                best["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    args = TrainingArguments(
        output_dir=str(folder / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=max(1, per_batch // ACCUMULATION),
        gradient_accumulation_steps=ACCUMULATION if per_batch >= ACCUMULATION else 1,
        learning_rate=lr,
        lr_scheduler_type="linear",
        warmup_steps=max(1, steps // 10),
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=seed,
        logging_steps=max(1, eval_frequency),
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = span_marker.Trainer(model=model, args=args, train_dataset=dataset, callbacks=[EvaluateOnDev()])
    trainer.train()
    seconds = time.perf_counter() - start
    model.load_state_dict(best["state"])
    model.eval()
    return {
        "model": model,
        "scores": best["scores"],
        "train_seconds": round(seconds, 1),
        "batch_sentences": per_batch,
        "curve": curve,
    }


def predict(model: Any, docs: List[Doc], batch_size: int) -> List[Doc]:
    """The docs with `doc.ents` from SpanMarker (copies; `docs` are unchanged)."""
    copies = [blank_copy(doc) for doc in docs]
    nonempty = [doc for doc in copies if len(doc)]
    outputs = model.predict([[t.text for t in doc] for doc in nonempty], batch_size=batch_size) if nonempty else []
    for doc, predictions in zip(nonempty, outputs):
        predictions_to_ents(doc, predictions)
    return copies


def run_system(args: Any) -> Dict[str, Any]:
    """`accuracy.py ner --systems spanmarker`: train, keep the best dev
    checkpoint, save it to OUTPUT/spanmarker/model, score dev (and test).

    RETURNS (Dict[str, Any]): The system's result, as the spaCy systems'.
    """
    import spacy
    from spacy.tokens import DocBin

    require_span_marker()
    vocab = spacy.blank("en").vocab
    folder = Path(args.output) / "spanmarker"
    folder.mkdir(parents=True, exist_ok=True)
    train_docs = [doc for doc in DocBin().from_disk(args.train).get_docs(vocab) if len(doc)]
    dev = read_examples(args.dev, vocab)
    print(f"\n== spanmarker: training {args.steps} steps ({folder})", flush=True)
    trained = train(
        train_docs,
        dev,
        encoder=args.encoder,
        folder=folder,
        steps=args.steps,
        batch_words=args.batch_words,
        lr=args.lr,
        seed=args.seed,
        eval_frequency=args.eval_frequency or max(1, args.steps // 10),
        eval_batch_size=args.eval_batch_size,
    )
    trained["model"].save_pretrained(str(folder / "model"))
    result: Dict[str, Any] = {"train_seconds": trained["train_seconds"], "batch_sentences": trained["batch_sentences"]}
    # the best checkpoint's own dev evaluation (scoring dev again would give the same figures)
    result["dev"] = dict(trained["scores"])
    result["words_per_second"] = result["dev"].pop("words_per_second")
    if args.test:
        result["test"] = score(trained["model"], read_examples(args.test, vocab), args.eval_batch_size)
        result["test"].pop("words_per_second")
    result["curve"] = trained["curve"]
    return result


def load(folder: Path) -> Any:
    """A SpanMarker model saved by `run_system`."""
    return require_span_marker().SpanMarkerModel.from_pretrained(str(folder)).eval()
