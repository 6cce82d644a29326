"""Faithfulness of the span-attention evidence of a trained pipeline: the
ERASER metrics (DeYoung et al. 2020) and the sharpness of the attention.

    python benchmarks/evidence.py --model PIPELINE --data D.spacy [--top-k 3]
        [--output FILE.json] [--limit N] [--seed S] [--batch-size B]
        [--fit TRAIN.spacy [--fit-docs N]] [--methods attention occlusion_estimate]

The pipeline's first `spanbert_textcat` or `spanbert_textcat_multilabel`
component is read. For each doc of `--data` (the first `--limit` docs if
given), the label is the predicted label of the full text: the top category
of `doc.cats` (for a multi-label component too: each doc's top-scoring
label). Its evidence is the `--top-k` candidate spans its attention weighted
most (`doc.spans[evidence_key]`), and `p` is the label's probability in
`doc.cats`. With `E` the tokens of the evidence spans:

- comprehensiveness = p(label | full text) - p(label | text without E)
- sufficiency       = p(label | full text) - p(label | only E)
  (higher comprehensiveness and lower sufficiency are better)

each next to the same measures for two references with the same number of
tokens as `E`:

- random: candidate spans drawn at random until they cover that many tokens
  (mean over 5 draws);
- occlusion: the tokens whose leave-one-out removal lowers p the most (single
  tokens are candidate spans of every n-gram suggester from size 1), an upper
  reference that costs one pass per token.

A reduced text is the remaining tokens with their trailing whitespace, run
through the whole pipeline again. sharpness = the label's top evidence weight
over the uniform weight 1 / n_candidates. Docs without candidate spans are
skipped (counted in `n_skipped`). The JSON keeps the means over docs under
`comprehensiveness`, `sufficiency` and `sharpness`, and adds counts, ratios
(to random and to occlusion) and the per-label means.

Each evidence method (`--methods`: the label attention, or the occlusion
estimator that `--fit` fits on training docs first, spacy_spanbert/evidence.py)
is measured on the same docs under `methods`, with the time of prediction with
its evidence over prediction without (`time_ratio_to_prediction`, interleaved
best of `--timing-rounds`); the top-level keys are the method the pipeline uses.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy

SpanT = Tuple[int, int]
# probabilities of the label for each keep-mask (one boolean per token)
ScoreFn = Callable[[List[numpy.ndarray]], Sequence[float]]
REFERENCES = ("evidence", "random", "occlusion")


# -- the metrics: pure functions on token masks and probabilities -------------


def comprehensiveness(p_full: float, p_without: float) -> float:
    """RETURNS (float): the drop of the label's probability when the evidence
    tokens are removed from the text."""
    return float(p_full) - float(p_without)


def sufficiency(p_full: float, p_only: float) -> float:
    """RETURNS (float): the drop of the label's probability when only the
    evidence tokens are kept."""
    return float(p_full) - float(p_only)


def sharpness(top_weight: float, n_candidates: int) -> float:
    """RETURNS (float): the top attention weight over the uniform weight
    1 / n_candidates (1.0 for uniform attention)."""
    if n_candidates <= 0:
        raise ValueError("sharpness: n_candidates must be positive, the doc has no candidate spans")
    return float(top_weight) * n_candidates


def token_mask(n_tokens: int, spans: Sequence[SpanT]) -> numpy.ndarray:
    """RETURNS (numpy.ndarray): a boolean per token, True inside any of `spans`."""
    mask = numpy.zeros((n_tokens,), dtype=bool)
    for start, end in spans:
        mask[start:end] = True
    return mask


def random_spans(candidates: Sequence[SpanT], n_tokens: int, length: int, rng: numpy.random.Generator) -> List[SpanT]:
    """Candidate spans in random order, each kept if the tokens covered so far
    stay within `length`, until they cover exactly `length` tokens (or no
    candidate fits: with the unigrams among the candidates, every length up
    to the doc's token count is reached).

    candidates (Sequence[Tuple[int, int]]): `[start, end)` of the candidates.
    n_tokens (int): Tokens in the doc.
    length (int): Tokens to cover.
    rng (numpy.random.Generator): The random draws.
    RETURNS (List[Tuple[int, int]]): The spans drawn.
    """
    covered = numpy.zeros((n_tokens,), dtype=bool)
    chosen: List[SpanT] = []
    for i in rng.permutation(len(candidates)):
        if covered.sum() >= length:
            break
        start, end = (int(x) for x in candidates[i])
        new = covered.copy()
        new[start:end] = True
        if new.sum() <= length and new.sum() > covered.sum():
            covered = new
            chosen.append((start, end))
    return chosen


def occlusion_tokens(drops: Sequence[float], length: int) -> List[SpanT]:
    """The `length` tokens whose leave-one-out removal lowered the label's
    probability most (ties: the earlier token), as single-token spans.

    drops (Sequence[float]): p(full) - p(without token t), one per token.
    length (int): Tokens to keep.
    RETURNS (List[Tuple[int, int]]): The spans, best first.
    """
    order = numpy.argsort(-numpy.asarray(drops, dtype="float64"), kind="stable")[:length]
    return [(int(t), int(t) + 1) for t in order]


def leave_one_out_masks(n_tokens: int) -> List[numpy.ndarray]:
    """RETURNS (List[numpy.ndarray]): the full doc's keep-mask, then one mask
    per token with that token removed."""
    full = numpy.ones((n_tokens,), dtype=bool)
    masks = [full]
    for t in range(n_tokens):
        mask = full.copy()
        mask[t] = False
        masks.append(mask)
    return masks


def selection_masks(
    n_tokens: int,
    candidates: Sequence[SpanT],
    evidence: Sequence[SpanT],
    p_loo: Sequence[float],
    rng: numpy.random.Generator,
    n_random: int = 5,
) -> Tuple[List[numpy.ndarray], List[str]]:
    """The keep-masks to score for one doc: for the evidence, each random
    draw and the occlusion tokens (all covering as many tokens as the
    evidence), the text without them, then only them.

    p_loo (Sequence[float]): The probabilities of `leave_one_out_masks`.
    RETURNS (Tuple[List[numpy.ndarray], List[str]]): The masks, in pairs
        (without, only), and the reference of each pair.
    """
    p_full, p_each = p_loo[0], p_loo[1:]
    evidence_mask = token_mask(n_tokens, evidence)
    length = int(evidence_mask.sum())
    selections = [("evidence", evidence_mask)]
    for _ in range(n_random):
        selections.append(("random", token_mask(n_tokens, random_spans(candidates, n_tokens, length, rng))))
    drops = [p_full - p for p in p_each]
    selections.append(("occlusion", token_mask(n_tokens, occlusion_tokens(drops, length))))
    masks, refs = [], []
    for ref, mask in selections:
        masks.extend([~mask, mask])
        refs.append(ref)
    return masks, refs


def faithfulness_from_probs(
    p_full: float, probs: Sequence[float], refs: Sequence[str], n_tokens: int, length: int
) -> Dict[str, Dict[str, float]]:
    """Comprehensiveness and sufficiency per reference (means over its
    draws) from the probabilities of `selection_masks`."""
    out: Dict[str, Dict[str, float]] = {"comprehensiveness": {}, "sufficiency": {}}
    for ref in REFERENCES:
        pairs = [i for i, r in enumerate(refs) if r == ref]
        out["comprehensiveness"][ref] = float(numpy.mean([comprehensiveness(p_full, probs[2 * i]) for i in pairs]))
        out["sufficiency"][ref] = float(numpy.mean([sufficiency(p_full, probs[2 * i + 1]) for i in pairs]))
    out["length"] = {"evidence": float(length), "tokens": float(n_tokens)}
    return out


def doc_faithfulness(
    n_tokens: int,
    candidates: Sequence[SpanT],
    evidence: Sequence[SpanT],
    score: ScoreFn,
    rng: numpy.random.Generator,
    n_random: int = 5,
) -> Dict[str, Dict[str, float]]:
    """Comprehensiveness and sufficiency of one doc's evidence, of random
    candidate spans covering as many tokens, and of the tokens leave-one-out
    occlusion ranks highest (as many tokens).

    n_tokens (int): Tokens in the doc.
    candidates (Sequence[Tuple[int, int]]): The candidate spans.
    evidence (Sequence[Tuple[int, int]]): The evidence spans.
    score (Callable[[List[numpy.ndarray]], Sequence[float]]): The label's
        probability for the text reduced to the tokens of each keep-mask.
    rng (numpy.random.Generator): The random draws.
    n_random (int): Random draws to average.
    RETURNS (Dict[str, Dict[str, float]]): {"comprehensiveness": {ref: value},
        "sufficiency": {ref: value}} for ref in evidence, random, occlusion,
        and "length": {"evidence": tokens covered, "tokens": n_tokens}.
    """
    p_loo = list(score(leave_one_out_masks(n_tokens)))
    masks, refs = selection_masks(n_tokens, candidates, evidence, p_loo, rng, n_random)
    length = int(token_mask(n_tokens, evidence).sum())
    return faithfulness_from_probs(p_loo[0], list(score(masks)), refs, n_tokens, length)


def mean_results(rows: List[Dict[str, Dict[str, float]]], sharp: List[float]) -> Dict[str, object]:
    """RETURNS (Dict[str, object]): the means over docs, in the JSON layout."""
    result: Dict[str, object] = {}
    for metric in ("comprehensiveness", "sufficiency"):
        result[metric] = {
            ref: (float(numpy.mean([r[metric][ref] for r in rows])) if rows else None) for ref in REFERENCES
        }
    result["sharpness"] = float(numpy.mean(sharp)) if sharp else None
    return result


# -- the pipeline side -----------------------------------------------------------


def evidence_component(nlp):
    """RETURNS: (name, component) of the first text classifier that writes
    span-attention evidence."""
    for name, pipe in nlp.pipeline:
        if hasattr(pipe, "evidence_key") and hasattr(pipe, "evidence_top_k"):
            return name, pipe
    raise ValueError(
        "evidence.py: the pipeline has no spanbert_textcat or spanbert_textcat_multilabel "
        f"component (it has {nlp.pipe_names}). Train one, e.g. with configs/textcat.cfg."
    )


def reduced_docs(nlp, words: List[str], spaces: List[bool], masks: List[numpy.ndarray]):
    """RETURNS (List[Doc]): the doc reduced to the kept tokens of each mask,
    each kept token with its own trailing whitespace."""
    from spacy.tokens import Doc

    out = []
    for mask in masks:
        kept = [i for i in range(len(words)) if mask[i]]
        out.append(Doc(nlp.vocab, words=[words[i] for i in kept], spaces=[spaces[i] for i in kept]))
    return out


def evaluate(nlp, docs, top_k: int, seed: int = 0, batch_size: int = 64, n_random: int = 5) -> Dict[str, object]:
    """The faithfulness and sharpness of the evidence on `docs` (texts are
    re-run through `nlp`). All reduced texts of all docs go through the
    pipeline in two batched passes (leave-one-out, then the selections).

    RETURNS (Dict[str, object]): the JSON result.
    """
    from spacy_spanbert.textcat import predict_with_evidence

    name, pipe = evidence_component(nlp)
    pipe.cfg["evidence_top_k"] = top_k
    key = pipe.evidence_key
    rng = numpy.random.default_rng(seed)
    sharp, items = [], []
    skipped = 0
    for doc in nlp.pipe([doc.text for doc in docs], batch_size=batch_size):
        group = doc.spans.get(key) if key is not None else None
        if not doc.cats or group is None or not group.attrs.get("n_candidates"):
            skipped += 1
            continue
        label = max(doc.cats, key=lambda k: doc.cats[k])
        positions = [i for i, span in enumerate(group) if span.label_ == label]
        evidence = [(group[i].start, group[i].end) for i in positions]
        if group.attrs.get("method", "attention") == "attention":
            sharp.append(sharpness(group.attrs["weights"][positions[0]], int(group.attrs["n_candidates"])))
        _, indices, _ = predict_with_evidence(pipe.model, [doc])
        rows = pipe.model.ops.to_numpy(indices.dataXd).reshape((-1, 2))
        items.append(
            {
                "label": label,
                "n": len(doc),
                "words": [t.text for t in doc],
                "spaces": [bool(t.whitespace_) for t in doc],
                "candidates": [(int(s), int(e)) for s, e in rows],
                "evidence": evidence,
            }
        )
    key_saved = pipe.cfg["evidence_key"]
    pipe.cfg["evidence_key"] = None  # the reduced texts need no evidence
    try:
        p_loo = _score_all(nlp, items, [leave_one_out_masks(it["n"]) for it in items], batch_size)
        selections = [
            selection_masks(it["n"], it["candidates"], it["evidence"], p, rng, n_random) for it, p in zip(items, p_loo)
        ]
        p_sel = _score_all(nlp, items, [masks for masks, _ in selections], batch_size)
    finally:
        pipe.cfg["evidence_key"] = key_saved
    rows, labels = [], []
    for it, p, (_, refs), probs in zip(items, p_loo, selections, p_sel):
        length = int(token_mask(it["n"], it["evidence"]).sum())
        rows.append(faithfulness_from_probs(p[0], probs, refs, it["n"], length))
        labels.append(it["label"])
    result = mean_results(rows, sharp)
    comp = result["comprehensiveness"]
    suff = result["sufficiency"]
    result["ratios"] = {
        "comprehensiveness_evidence_over_random": _ratio(comp["evidence"], comp["random"]),
        "sufficiency_evidence_minus_random": None if not rows else suff["evidence"] - suff["random"],
        "comprehensiveness_evidence_over_occlusion": _ratio(comp["evidence"], comp["occlusion"]),
        "sufficiency_evidence_minus_occlusion": None if not rows else suff["evidence"] - suff["occlusion"],
    }
    result["per_label"] = {
        label: {
            "n_docs": int(sum(1 for x in labels if x == label)),
            "comprehensiveness": {
                ref: float(numpy.mean([r["comprehensiveness"][ref] for r, x in zip(rows, labels) if x == label]))
                for ref in REFERENCES
            },
            "sufficiency": {
                ref: float(numpy.mean([r["sufficiency"][ref] for r, x in zip(rows, labels) if x == label]))
                for ref in REFERENCES
            },
        }
        for label in sorted(set(labels))
    }
    result["n_docs"] = len(rows)
    result["n_skipped"] = skipped
    result["top_k"] = top_k
    result["component"] = name
    result["multi_label"] = bool(pipe.model.attrs.get("multi_label", False))
    result["label_choice"] = "top predicted label of the full doc"
    result["mean_evidence_tokens"] = float(numpy.mean([r["length"]["evidence"] for r in rows])) if rows else None
    result["mean_doc_tokens"] = float(numpy.mean([r["length"]["tokens"] for r in rows])) if rows else None
    return result


def _score_all(nlp, items, masks_per_doc, batch_size: int) -> List[List[float]]:
    """The label probability of every reduced doc, one list per doc."""
    docs, owners = [], []
    for j, (it, masks) in enumerate(zip(items, masks_per_doc)):
        docs.extend(reduced_docs(nlp, it["words"], it["spaces"], masks))
        owners.extend([j] * len(masks))
    out: List[List[float]] = [[] for _ in items]
    for j, doc in zip(owners, nlp.pipe(docs, batch_size=batch_size)):
        out[j].append(float(doc.cats.get(items[j]["label"], 0.0)))
    return out


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="trained pipeline folder")
    parser.add_argument("--data", type=Path, required=True, help="DocBin (.spacy) of the docs to explain")
    parser.add_argument("--top-k", type=int, default=3, help="evidence spans per doc (default 3)")
    parser.add_argument("--output", type=Path, default=None, help="write the results here (JSON)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N docs (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random spans")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["attention", "occlusion_estimate"],
        default=None,
        help="evidence methods to measure, each on the same docs (default: the pipeline's; with --fit "
        "attention and occlusion_estimate); the top-level keys are the figures of the method the "
        "pipeline uses (the estimate once fitted)",
    )
    parser.add_argument(
        "--fit", type=Path, default=None, help="fit the occlusion estimator on this .spacy file first (training docs)"
    )
    parser.add_argument("--fit-docs", type=int, default=2000, help="docs of --fit to use (default 2000)")
    parser.add_argument("--timing-rounds", type=int, default=3, help="rounds of the prediction-time comparison")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top-k must be a positive integer, got {args.top_k}")
    if args.limit < 0:
        parser.error(f"--limit must be 0 (all) or positive, got {args.limit}")
    return args


def table(result: Dict[str, object]) -> str:
    comp, suff = result["comprehensiveness"], result["sufficiency"]

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    lines = [
        "| spans | comprehensiveness ↑ | sufficiency ↓ |",
        "|---|---|---|",
    ]
    for ref in REFERENCES:
        lines.append(f"| {ref} | {f(comp[ref])} | {f(suff[ref])} |")
    lines.append("")
    lines.append(
        f"sharpness (top weight / uniform): {f(result['sharpness'])}; docs: {result['n_docs']} "
        f"(skipped {result['n_skipped']}); evidence tokens per doc: {f(result['mean_evidence_tokens'])} "
        f"of {f(result['mean_doc_tokens'])}"
    )
    return "\n".join(lines)


def prediction_seconds(nlp, docs, methods: Sequence[str], batch_size: int, rounds: int) -> Dict[str, float]:
    """Seconds of `nlp.pipe` over the docs' texts without evidence ("none")
    and with each method's evidence, interleaved round by round; best round."""
    _, pipe = evidence_component(nlp)
    texts = [doc.text for doc in docs]
    saved = dict(pipe.cfg)
    best: Dict[str, float] = {}
    try:
        for _ in range(rounds):
            for method in ["none", *methods]:
                pipe.cfg["evidence_key"] = None if method == "none" else saved["evidence_key"]
                pipe.cfg["evidence_method"] = saved.get("evidence_method", "auto") if method == "none" else method
                start = time.perf_counter()
                for _ in nlp.pipe(texts, batch_size=batch_size):
                    pass
                best[method] = min(best.get(method, float("inf")), time.perf_counter() - start)
    finally:
        pipe.cfg.update(saved)
    return best


def measure_methods(nlp, docs, args: argparse.Namespace) -> Dict[str, object]:
    """`evaluate` for each method of `args.methods` on the same docs; the
    first method's result, with every method's under "methods"."""
    _, pipe = evidence_component(nlp)
    saved = pipe.cfg.get("evidence_method", "auto")
    results = {}
    try:
        for method in args.methods:
            pipe.cfg["evidence_method"] = method
            results[method] = evaluate(nlp, docs, args.top_k, seed=args.seed, batch_size=args.batch_size)
    finally:
        pipe.cfg["evidence_method"] = saved
    seconds = prediction_seconds(nlp, docs[:500], args.methods, args.batch_size, args.timing_rounds)
    for method, result in results.items():
        result["method"] = method
        result["time_ratio_to_prediction"] = _ratio(seconds[method], seconds["none"])
    in_use = pipe.evidence_method
    result = dict(results[in_use if in_use in results else args.methods[0]])
    result["methods"] = results
    result["prediction_seconds"] = seconds
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import spacy
    from spacy.tokens import DocBin

    import spacy_spanbert  # noqa: F401  (registers the components)

    nlp = spacy.load(args.model)
    docs = list(DocBin().from_disk(args.data).get_docs(nlp.vocab))
    if args.limit:
        docs = docs[: args.limit]
    start = time.time()
    fit = None
    if args.fit is not None:
        fit = spacy_spanbert.fit_occlusion_estimator(
            nlp, DocBin().from_disk(args.fit).get_docs(nlp.vocab), max_docs=args.fit_docs, batch_size=args.batch_size
        )
    _, pipe = evidence_component(nlp)
    if args.methods is None:
        args.methods = ["attention", "occlusion_estimate"] if fit else [pipe.evidence_method]
    result = measure_methods(nlp, docs, args)
    result["fit"] = fit
    result["model"] = str(args.model)
    result["data"] = str(args.data)
    result["limit"] = args.limit
    result["seconds"] = round(time.time() - start, 1)
    for method, one in result["methods"].items():
        print(f"\n{method} (time with evidence / without: {one['time_ratio_to_prediction']:.2f}x)")
        print(table(one))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
