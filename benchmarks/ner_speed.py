"""Words/s of prediction of the trained NER systems of one `accuracy.py ner`
run, side by side: the same dev docs (as words, so no system pays for
tokenization), the same process and threads, batch sizes 16 and 64, the
systems interleaved round by round so that machine noise hits all alike; the
best round of each counts."""

import time
from pathlib import Path
from typing import Any, Callable, Dict, List

BATCH_SIZES = (16, 64)


def _spacy_runner(folder: Path) -> Callable[[List[Any], int], None]:
    from spacy import util
    from spacy.tokens import Doc

    nlp = util.load_model(folder / "model" / "model-best")

    def run(docs, batch_size):
        fresh = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in docs]
        for _ in nlp.pipe(fresh, batch_size=batch_size):
            pass

    return run


def _spanmarker_runner(folder: Path) -> Callable[[List[Any], int], None]:
    import spanmarker

    model = spanmarker.load(folder / "model")
    return lambda docs, batch_size: spanmarker.predict(model, docs, batch_size)


def side_by_side(output: Path, systems: List[str], docs: List[Any], *, rounds: int = 3) -> Dict[str, Any]:
    """RETURNS (Dict[str, Any]): {"batch_sizes", "rounds", "n_docs", "n_words",
    "words_per_second": {system: {batch size: best words/s}}}."""
    runners = {
        name: (_spanmarker_runner if name == "spanmarker" else _spacy_runner)(Path(output) / name) for name in systems
    }
    n_words = sum(len(doc) for doc in docs)
    best: Dict[str, Dict[int, float]] = {name: {} for name in systems}
    for run in runners.values():
        run(docs[:16], 16)  # warm-up: first-call allocations and lazy imports
    for _ in range(rounds):
        for batch_size in BATCH_SIZES:
            for name, run in runners.items():
                start = time.perf_counter()
                run(docs, batch_size)
                rate = n_words / (time.perf_counter() - start)
                best[name][batch_size] = max(best[name].get(batch_size, 0.0), rate)
    return {
        "batch_sizes": list(BATCH_SIZES),
        "rounds": rounds,
        "n_docs": len(docs),
        "n_words": n_words,
        "words_per_second": best,
    }


def speed_table(speed: Dict[str, Any]) -> str:
    """A Markdown table of words/s, with the ratio to spanbert's."""
    rates = speed["words_per_second"]
    head = ["system"] + [f"words/s, batch {b}" for b in speed["batch_sizes"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, by_batch in rates.items():
        cells = []
        for b in speed["batch_sizes"]:
            ratio = f" ({by_batch[b] / rates['spanbert'][b]:.2f}x)" if "spanbert" in rates else ""
            cells.append(f"{by_batch[b]:.0f}{ratio}")
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines)
