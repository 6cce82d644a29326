"""`annotate`: the engine function of `spacy spanbert annotate` (checks the
options, plans the shards, runs an engine, writes the side files)."""

import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import spacy

from ...errors import Errors
from ...span_vectors import DEFAULT_SPANS_KEY
from .engines import Job, Options, run_local, run_ray
from .extras import require
from .readers import find_input_files, plan_shards
from .rows import OUTPUT_COLUMNS
from .writer import merge_errors, part_file, prepare_output_dir, write_manifest

ENGINES = ("local", "ray")


def _check_workers(engine: str, workers: int, threads_per_worker: Optional[int]) -> None:
    if engine not in ENGINES:
        raise ValueError(Errors.E207.format(engine=engine, engines=", ".join(ENGINES)))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(Errors.E208.format(value=workers))
    if threads_per_worker is not None and (not isinstance(threads_per_worker, int) or threads_per_worker < 1):
        raise ValueError(Errors.E209.format(value=threads_per_worker))
    if engine == "local" and threads_per_worker is not None:
        cores = os.cpu_count() or 1
        if workers * threads_per_worker > cores:
            raise ValueError(Errors.E210.format(workers=workers, threads=threads_per_worker, cores=cores))


def _spans_keys_of(model: str) -> List[str]:
    """The span groups the components of a pipeline folder write (none known
    for a package name)."""
    path = Path(model)
    if not (path / "config.cfg").exists():
        return []
    config = spacy.util.load_config(path / "config.cfg", interpolate=False)
    keys = []
    for block in config.get("components", {}).values():
        if not isinstance(block, dict):
            continue
        key = block.get("spans_key", DEFAULT_SPANS_KEY if block.get("factory") == "spanbert" else None)
        if isinstance(key, str):
            keys.append(key)
    return keys


def _check_spans_keys(model: str, spans_keys: Sequence[str]) -> List[str]:
    spans_keys = list(dict.fromkeys(spans_keys))
    known = _spans_keys_of(model)
    unknown = [key for key in spans_keys if known and key not in known]
    if unknown:
        raise ValueError(Errors.E212.format(model=model, unknown=", ".join(map(repr, unknown)), known=", ".join(known)))
    return spans_keys


def annotate(
    model: str,
    input_path: str,
    output_dir: Path,
    *,
    engine: str = "local",
    workers: int = 1,
    threads_per_worker: Optional[int] = None,
    batch_size: int = 64,
    vectors: bool = False,
    spans_keys: Sequence[str] = (),
    text_field: str = "text",
    id_field: str = "id",
    gpu_id: int = -1,
    address: Optional[str] = None,
    overwrite: bool = False,
    shard_size: int = 1024,
    code_path: Optional[Path] = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Annotate a corpus with a trained pipeline into a Parquet data set: one
    file per input shard (`part-<file>-<shard>.parquet`), plus `_errors.jsonl`
    (the malformed records, with file and line; only if there were any) and
    `_manifest.json`.

    model (str): The pipeline's folder (or installed package name).
    input_path (str): A .jsonl, .txt or .parquet file (or a .jsonl.gz /
        .txt.gz), a folder or a glob.
    output_dir (Path): The output folder; must be empty unless `overwrite`.
    engine (str): "local" (`nlp.pipe`) or "ray" (Ray Data actors).
    workers (int): Processes (local) or actors (ray).
    threads_per_worker (Optional[int]): Torch threads per worker; None for
        torch's default (local, one process) or the cluster's CPUs / workers
        (ray). `nlp.pipe` workers always run one thread each.
    batch_size (int): Docs per `nlp.pipe` batch.
    vectors (bool): Write span vectors.
    spans_keys (Sequence[str]): Span groups to write besides `doc.ents`.
    text_field (str): The field (column) with the text (.jsonl, Parquet).
    id_field (str): The field (column) with the doc id, if present.
    gpu_id (int): GPU to use (local); with ray, any id >= 0 gives each actor
        one GPU. -1 for CPU.
    address (Optional[str]): The Ray cluster to join ("auto", "ray://..."),
        None to start a local one.
    overwrite (bool): Replace the annotation files of an earlier run.
    shard_size (int): Records per shard (and per output file).
    code_path (Optional[Path]): A Python file to import before loading the
        pipeline (custom components), in every worker.
    progress (bool): Show a progress bar (on a terminal).
    RETURNS (Dict[str, Any]): docs, rows, errors, shards, seconds and start-up
        seconds of the run.
    """
    _check_workers(engine, workers, threads_per_worker)
    opts = Options(
        spans_keys=tuple(_check_spans_keys(model, spans_keys)),
        vectors=bool(vectors),
        batch_size=batch_size,
        text_field=text_field,
        id_field=id_field,
    )
    require("pyarrow.parquet", "writing Parquet")
    shards = plan_shards(*find_input_files(str(input_path)), shard_size=shard_size)
    output_dir = Path(output_dir)
    prepare_output_dir(output_dir, overwrite=overwrite)
    job = Job(
        model=model,
        shards=shards,
        output_dir=output_dir,
        opts=opts,
        workers=workers,
        threads=threads_per_worker,
        gpu_id=gpu_id,
        code_path=code_path,
        progress=progress,
    )
    run = run_local if engine == "local" else partial(run_ray, address=address)
    start = time.perf_counter()
    summaries, timings = run(job)
    result = _result(job, engine, summaries, seconds=time.perf_counter() - start, timings=timings)
    write_manifest(output_dir, _manifest(result, model, input_path, shards, summaries))
    return result


def _result(job: Job, engine: str, summaries, *, seconds: float, timings: Dict[str, Any]) -> Dict[str, Any]:
    """What `annotate` returns (and the manifest records) of a finished run."""
    return {
        "engine": engine,
        "workers": job.workers,
        **_totals(job.shards, summaries),
        "errors": merge_errors(job.output_dir, job.shards),
        "shards": len(job.shards),
        "seconds": seconds,
        **timings,
    }


def _totals(shards: Sequence[Dict[str, Any]], summaries: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """The docs and rows of a run; a RuntimeError if a shard was lost."""
    done = {s["name"] for s in summaries}
    missing = [s["name"] for s in shards if s["name"] not in done]
    if missing:
        raise RuntimeError(Errors.E213.format(n=len(missing), names=", ".join(missing[:5])))
    return {"docs": sum(s["docs"] for s in summaries), "rows": sum(s["rows"] for s in summaries)}


def _manifest(
    result: Dict[str, Any],
    model: str,
    input_path: str,
    shards: Sequence[Dict[str, Any]],
    summaries: Sequence[Dict[str, Any]],
) -> Dict[str, Any]:
    """The run's summary, the output schema and the data files."""
    by_name = {s["name"]: s for s in summaries}
    return dict(
        result,
        model=str(model),
        input=str(input_path),
        schema=[{"name": n, "type": t, "meaning": m} for n, t, m in OUTPUT_COLUMNS],
        files=[
            {"file": part_file(s["name"]), "docs": by_name[s["name"]]["docs"], "rows": by_name[s["name"]]["rows"]}
            for s in shards
        ],
    )
