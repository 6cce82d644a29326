"""The engines of `spacy spanbert annotate`: they only move records between
the readers, `rows` and the writer.

- `run_local`: `nlp.pipe` in this process (`n_process=workers`);
- `run_ray`: Ray Data with one actor per worker; every actor loads the
  pipeline from its path once (a pipeline is never pickled) and runs torch
  with the threads it was given (actors x threads <= the cluster's CPUs).

Both take a `Job` and return one summary per shard ("name", "docs", "rows")
and their timings.
"""

import inspect
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.language import Language

from ...errors import Errors
from .extras import require
from .readers import read_shard
from .rows import annotate_batch, rows
from .writer import write_shard

Shard = Dict[str, Any]
Summary = Dict[str, Any]


@dataclass(frozen=True)
class Options:
    """What every engine does with a shard (JSON-safe, sent to Ray actors)."""

    spans_keys: Tuple[str, ...] = ()
    vectors: bool = False
    batch_size: int = 64
    text_field: str = "text"
    id_field: str = "id"

    def read(self, shard: Shard):
        return read_shard(shard, text_field=self.text_field, id_field=self.id_field)


@dataclass(frozen=True)
class Job:
    """What an engine is given: the pipeline `model` (a folder or a package
    name) annotates `shards` into `output_dir` as `opts` says, on `workers`
    processes or actors with `threads` torch threads each (None: the engine's
    default), on GPU `gpu_id` (-1: the CPU), every worker importing
    `code_path` first; `progress` shows a progress bar."""

    model: str
    shards: Sequence[Shard]
    output_dir: Path
    opts: Options
    workers: int
    threads: Optional[int]
    gpu_id: int
    code_path: Optional[Path]
    progress: bool


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    # disable=None: shown on a terminal, silent in logs
    return tqdm(total=total, unit="doc", desc="annotate", disable=None if enabled else True)


def _set_torch_threads(threads: Optional[int]) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _load(model: str, gpu_id: int, code_path: Optional[str]) -> Language:
    if code_path is not None:
        spacy.util.import_file("annotate_code", str(code_path))
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def run_local(job: Job) -> Tuple[List[Summary], Dict[str, float]]:
    """Annotate the shards with `nlp.pipe` (`n_process=workers`), writing each
    shard's file as soon as its last doc is back.

    job (Job): What to annotate, and how.
    RETURNS (Tuple[List[Dict[str, Any]], Dict[str, float]]): The shards'
        summaries, and the start-up seconds (loading the pipeline).
    """
    start = time.perf_counter()
    _set_torch_threads(job.threads)
    nlp = _load(job.model, job.gpu_id, job.code_path)
    loaded = time.perf_counter()
    shards, opts = job.shards, job.opts
    summaries: List[Summary] = [{"name": s["name"], "docs": 0, "rows": 0} for s in shards]
    errors: Dict[int, List[Dict[str, Any]]] = {}

    def stream() -> Iterator[Tuple[str, Tuple[int, str]]]:
        for i, shard in enumerate(shards):
            records, errors[i] = opts.read(shard)
            summaries[i]["docs"] = len(records)
            for record in records:
                yield record["text"], (i, record["doc_id"])

    bar = _progress(sum(s["records"] for s in shards), job.progress)
    pending: List[Dict[str, Any]] = []
    flushed = 0

    def flush(upto: int) -> None:
        nonlocal flushed, pending
        while flushed < upto:
            write_shard(job.output_dir, shards[flushed]["name"], pending, errors.pop(flushed))
            summaries[flushed]["rows"] = len(pending)
            bar.update(shards[flushed]["records"] - summaries[flushed]["docs"])
            pending = []
            flushed += 1

    with warnings.catch_warnings():
        # nlp.pipe workers send docs back without their user hooks (W109);
        # `rows` reads vectors from the span groups, not through the hooks
        warnings.filterwarnings("ignore", message=r"\[W109\]")
        docs = nlp.pipe(stream(), as_tuples=True, batch_size=opts.batch_size, n_process=job.workers)
        for doc, (i, doc_id) in docs:
            flush(i)
            pending.extend(rows(doc, doc_id=doc_id, spans_keys=opts.spans_keys, vectors=opts.vectors))
            bar.update(1)
    flush(len(shards))
    bar.close()
    return summaries, {"startup_seconds": loaded - start}


class ShardAnnotator:
    """A Ray Data actor: loads the pipeline from its path once, then annotates
    whole shards and writes each shard's output file itself."""

    def __init__(
        self, model: str, output_dir: str, opts: Dict[str, Any], threads: int, use_gpu: bool, code_path: Optional[str]
    ):
        _set_torch_threads(threads)
        self.nlp = _load(model, 0 if use_gpu else -1, code_path)
        self.output_dir = Path(output_dir)
        self.opts = Options(**opts)
        self.ready_at = time.time()

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        out: Dict[str, List[Any]] = {"name": [], "docs": [], "rows": [], "records": [], "ready_at": []}
        for i in range(len(batch["name"])):
            shard = {
                key: values[i].item() if hasattr(values[i], "item") else values[i] for key, values in batch.items()
            }
            records, errors = self.opts.read(shard)
            annotated = annotate_batch(
                self.nlp,
                records,
                spans_keys=self.opts.spans_keys,
                vectors=self.opts.vectors,
                batch_size=self.opts.batch_size,
            )
            write_shard(self.output_dir, shard["name"], annotated, errors)
            out["name"].append(shard["name"])
            out["docs"].append(len(records))
            out["rows"].append(len(annotated))
            out["records"].append(shard["records"])
            out["ready_at"].append(self.ready_at)
        return {key: numpy.asarray(values) for key, values in out.items()}


def _shard_dataset(ray, shards: Sequence[Shard], actor_kwargs: Dict[str, Any], *, workers: int, threads: int):
    """A Ray dataset of the shards, one block (one task) per shard, mapped by
    a pool of `workers` ShardAnnotator actors."""
    # `parallelism` before Ray 2.10
    params = inspect.signature(ray.data.from_items).parameters
    blocks = "override_num_blocks" if "override_num_blocks" in params else "parallelism"
    dataset = ray.data.from_items(list(shards), **{blocks: len(shards)})
    return dataset.map_batches(
        ShardAnnotator,
        batch_size=1,
        # one shard at a time per actor: an idle actor takes the next shard,
        # and a dead one holds back only the shard it was on
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
        num_cpus=threads,
        num_gpus=1 if actor_kwargs["use_gpu"] else 0,
        fn_constructor_kwargs=actor_kwargs,
    )


def _collect(ray, dataset, total: int, progress: bool) -> Tuple[List[Summary], List[float]]:
    """Run the dataset; the shards' summaries and the actors' ready times."""
    context = ray.data.DataContext.get_current()
    bars = context.enable_progress_bars
    context.enable_progress_bars = False
    try:
        bar = _progress(total, progress)
        summaries, ready = [], []
        for row in dataset.iter_rows():
            summaries.append({"name": row["name"], "docs": int(row["docs"]), "rows": int(row["rows"])})
            ready.append(float(row["ready_at"]))
            bar.update(int(row["records"]))
        bar.close()
    finally:
        context.enable_progress_bars = bars
    return summaries, ready


def run_ray(job: Job, *, address: Optional[str]) -> Tuple[List[Summary], Dict[str, float]]:
    """Annotate the shards with a pool of Ray Data actors, each writing the
    files of the shards it annotates. Joins the cluster at `address`, or uses
    the running one, or starts (and stops) a local one.

    job (Job): What to annotate, and how.
    address (Optional[str]): The Ray cluster to join; None for the running
        one or a new local one.
    RETURNS (Tuple[List[Dict[str, Any]], Dict[str, float]]): The shards'
        summaries, and the seconds of `ray.init` and of the actors' start-up.
    """
    ray = require("ray", "the ray engine")
    require("ray.data", "the ray engine")
    start = time.time()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    init_seconds = time.time() - start
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        workers, threads = job.workers, job.threads
        if threads is None:
            threads = max(1, cpus // workers)
        if workers * threads > cpus:
            raise ValueError(Errors.E211.format(workers=workers, threads=threads, need=workers * threads, cpus=cpus))
        actor_kwargs = {
            # an actor's working directory is not ours
            "model": str(Path(job.model).resolve()) if Path(job.model).exists() else str(job.model),
            "output_dir": str(Path(job.output_dir).resolve()),
            "opts": asdict(job.opts),
            "threads": threads,
            "use_gpu": job.gpu_id >= 0,
            "code_path": None if job.code_path is None else str(Path(job.code_path).resolve()),
        }
        dataset = _shard_dataset(ray, job.shards, actor_kwargs, workers=workers, threads=threads)
        summaries, ready = _collect(ray, dataset, sum(s["records"] for s in job.shards), job.progress)
    finally:
        if started_here:
            ray.shutdown()
    startup = (max(ready) - start - init_seconds) if ready else 0.0
    return summaries, {"ray_init_seconds": init_seconds, "startup_seconds": startup, "threads": threads}
