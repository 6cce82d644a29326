"""The output folder of `spacy spanbert annotate`: one Parquet data set.

Each shard gives one data file, `part-<shard>.parquet`, written atomically
(to a hidden temporary file, then renamed), so a retried task overwrites its
own file and no doc is written twice. Side files start with "_", which
pyarrow, pandas, Spark and Hadoop skip when they read the folder as a data
set (DuckDB reads `OUT/*.parquet`): `_errors.jsonl` (the malformed records,
only if there were any) and `_manifest.json` (the run's summary and schema).
"""

import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from ...errors import Errors
from .extras import require
from .rows import output_schema

PART_PREFIX = "part-"
ERRORS_FILE = "_errors.jsonl"
MANIFEST_FILE = "_manifest.json"
_SHARD_ERRORS_PREFIX = "_errors-"


def part_file(name: str) -> str:
    """The output file name of the shard `name`."""
    return f"{PART_PREFIX}{name}.parquet"


def _replace_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def rows_to_table(records: Sequence[Dict[str, Any]]):
    """The rows as an Arrow table with the output schema.

    records (Sequence[Dict[str, Any]]): Rows from `rows`.
    RETURNS (pyarrow.Table): The table.
    """
    pa = require("pyarrow", "writing Parquet")
    schema = output_schema()
    arrays = []
    for field in schema:
        values = [record[field.name] for record in records]
        if field.name == "cats":
            values = [None if v is None else list(v.items()) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_shard(
    output_dir: Path, name: str, records: Sequence[Dict[str, Any]], errors: Sequence[Dict[str, Any]]
) -> None:
    """Write (or overwrite) the output file of one shard, and its errors
    (a `_errors-<shard>.jsonl` that `merge_errors` collects).

    output_dir (Path): The output folder.
    name (str): The shard's name.
    records (Sequence[Dict[str, Any]]): Its rows.
    errors (Sequence[Dict[str, Any]]): Its malformed records.
    """
    pq = require("pyarrow.parquet", "writing Parquet")
    table = rows_to_table(records)
    _replace_atomically(Path(output_dir) / part_file(name), lambda p: pq.write_table(table, p))
    if errors:
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors)
        path = Path(output_dir) / f"{_SHARD_ERRORS_PREFIX}{name}.jsonl"
        _replace_atomically(path, lambda p: p.write_text(text, encoding="utf8"))


def merge_errors(output_dir: Path, shards: Sequence[Dict[str, Any]]) -> int:
    """Collect the shards' errors into `_errors.jsonl` (not written when there
    are none), in shard order.

    output_dir (Path): The output folder.
    shards (Sequence[Dict[str, Any]]): The shards, from `plan_shards`.
    RETURNS (int): The number of malformed records.
    """
    paths = [Path(output_dir) / f"{_SHARD_ERRORS_PREFIX}{shard['name']}.jsonl" for shard in shards]
    text = "".join(path.read_text(encoding="utf8") for path in paths if path.exists())
    if text:
        _replace_atomically(Path(output_dir) / ERRORS_FILE, lambda p: p.write_text(text, encoding="utf8"))
    for path in paths:
        if path.exists():
            path.unlink()
    return text.count("\n")


def write_manifest(output_dir: Path, manifest: Dict[str, Any]) -> None:
    """Write `_manifest.json`, the summary of a finished run."""
    text = json.dumps(manifest, indent=2)
    _replace_atomically(Path(output_dir) / MANIFEST_FILE, lambda p: p.write_text(text, encoding="utf8"))


def read_rows(output_dir: Path) -> List[Dict[str, Any]]:
    """The rows of an output folder, shard by shard in name order.

    output_dir (Path): A folder written by `annotate`.
    RETURNS (List[Dict[str, Any]]): The rows ("vector" a list of floats,
        "cats" a dict).
    """
    pq = require("pyarrow.parquet", "reading Parquet")
    out = []
    for path in sorted(Path(output_dir).glob(part_file("*"))):
        for record in pq.read_table(path).to_pylist():
            if record["cats"] is not None:
                record["cats"] = dict(record["cats"])
            out.append(record)
    return out


def _is_ours(path: Path) -> bool:
    """A file an annotate run writes: data, side or temporary file."""
    name = path.name
    return (
        (name.startswith(PART_PREFIX) and name.endswith(".parquet"))
        or (name.startswith(_SHARD_ERRORS_PREFIX) and name.endswith(".jsonl"))
        or name in (ERRORS_FILE, MANIFEST_FILE)
        or (name.startswith(".") and name.endswith(".tmp"))
    )


def prepare_output_dir(output_dir: Path, *, overwrite: bool) -> None:
    """Create the output folder; refuse a non-empty one unless `overwrite`,
    which deletes the annotation files of an earlier run (and nothing else).

    output_dir (Path): The output folder.
    overwrite (bool): Replace the files of an earlier run.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(Errors.E205.format(path=output_dir))
    existing = list(output_dir.iterdir()) if output_dir.exists() else []
    if existing and not overwrite:
        raise ValueError(Errors.E206.format(path=output_dir, n=len(existing)))
    for path in existing:
        if path.is_file() and _is_ours(path):
            path.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)
