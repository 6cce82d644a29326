"""`spacy spanbert annotate`: run a trained pipeline over a corpus into Parquet.

The core is free of any engine: `rows` turns one processed doc into output
records and `annotate_batch` turns a batch of input records into rows, given a
loaded pipeline. Engines only move records:

- `local`: `nlp.pipe` in this process (`n_process=workers`);
- `ray`: Ray Data with one actor per worker; every actor loads the pipeline
  from its path once (a pipeline is never pickled) and runs torch with the
  threads it was given.

The input is cut into shards (a run of lines of a .jsonl / .txt file, or of
rows of a Parquet file). Each shard gives one output file named after it,
written atomically, so a retried task overwrites its own file and no doc is
written twice. Malformed records are reported with their file and line in
`errors.jsonl` and skipped.

Output schema (one table for every row kind; `OUTPUT_COLUMNS` documents it):

| column | type | value |
|---|---|---|
| doc_id | string | the input's id field, else `"{file}:{line}"` |
| key | string | `"ents"` for `doc.ents`, the span group key, or `"cats"` |
| start, end | int32 | token offsets (null for `cats`) |
| start_char, end_char | int32 | character offsets (null for `cats`) |
| label | string | the span's label (null for `cats`) |
| score | float32 | the component's score for the span, else null |
| text | string | the span's text (null for `cats`) |
| vector | list<float32> | span vector with `vectors=True`, else null |
| cats | map<string, float32> | `doc.cats` on the `cats` row, else null |
"""

import glob
import importlib
import inspect
import json
import os
import re
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
import spacy
import typer
from spacy.language import Language
from spacy.tokens import Doc, Span
from wasabi import msg

from .cli import spanbert_cli
from .span_vectors import group_offsets

NAME = "spacy spanbert annotate"
RAY_EXTRA = 'pip install "spacy-spanbert[ray]"'
ENGINES = ("local", "ray")
INPUT_SUFFIXES = (".jsonl", ".txt", ".parquet")
ENTS_KEY = "ents"
CATS_KEY = "cats"
ERRORS_FILE = "errors.jsonl"
MANIFEST_FILE = "manifest.json"
PART_PREFIX = "part-"

# (column, Arrow type, meaning): the fixed Parquet schema of every output file.
OUTPUT_COLUMNS: Tuple[Tuple[str, str, str], ...] = (
    ("doc_id", "string", "the input's id field, else '{file}:{line}'"),
    ("key", "string", "'ents' (doc.ents), a span group key, or 'cats'"),
    ("start", "int32", "first token of the span (null for cats)"),
    ("end", "int32", "token after the span (null for cats)"),
    ("start_char", "int32", "first character of the span (null for cats)"),
    ("end_char", "int32", "character after the span (null for cats)"),
    ("label", "string", "label of the span (null for cats)"),
    ("score", "float32", "the component's score for the span, if it gives one"),
    ("text", "string", "text of the span (null for cats)"),
    ("vector", "list<float32>", "span vector, only when asked (--vectors)"),
    ("cats", "map<string, float32>", "doc.cats, on the one 'cats' row of a doc"),
)
COLUMNS = tuple(name for name, _, _ in OUTPUT_COLUMNS)


def _require(module: str, what: str):
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{NAME}: {what} needs the package '{module.split('.')[0]}', which is not "
            f"installed. Install the extra: {RAY_EXTRA}"
        ) from err


def output_schema():
    """The Arrow schema of every output file (see `OUTPUT_COLUMNS`).

    RETURNS (pyarrow.Schema): The schema.
    """
    pa = _require("pyarrow", "writing Parquet")
    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "float32": pa.float32(),
        "list<float32>": pa.list_(pa.float32()),
        "map<string, float32>": pa.map_(pa.string(), pa.float32()),
    }
    nullable = {"doc_id": False, "key": False}
    return pa.schema(
        [pa.field(name, types[kind], nullable=nullable.get(name, True)) for name, kind, _ in OUTPUT_COLUMNS]
    )


# -- the engine-free core ------------------------------------------------------


def _per_span_array(group, name: str, ndim: int) -> Optional[numpy.ndarray]:
    """`group.attrs[name]` if it holds one entry per span, else None."""
    value = group.attrs.get(name) if hasattr(group, "attrs") else None
    if value is None:
        return None
    value = numpy.asarray(value)
    if value.ndim != ndim or len(value) != len(group):
        return None
    return value


class _DocLookups:
    """Scores and vectors of the spans of one doc, built on first use."""

    def __init__(self, doc: Doc):
        self.doc = doc
        self._scores: Optional[Dict[Tuple[int, int, str], float]] = None
        self._vectors: Optional[Dict[Tuple[int, int], numpy.ndarray]] = None

    def score(self, span: Span) -> Optional[float]:
        if self._scores is None:
            self._scores = {}
            for group in self.doc.spans.values():
                scores = _per_span_array(group, "scores", 1)
                if scores is None:
                    continue
                for other, score in zip(group, scores.tolist()):
                    key = (other.start, other.end, other.label_)
                    self._scores[key] = max(score, self._scores.get(key, score))
        return self._scores.get((span.start, span.end, span.label_))

    def vector(self, span: Span) -> Optional[numpy.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for group in self.doc.spans.values():
                vectors = _per_span_array(group, "vectors", 2)
                if vectors is None:
                    continue
                for (start, end), row in zip(group_offsets(group).tolist(), vectors):
                    self._vectors.setdefault((start, end), row)
        return self._vectors.get((span.start, span.end))


def _span_row(doc_id: str, key: str, span: Span, score, vector) -> Dict[str, Any]:
    return {
        "doc_id": doc_id,
        "key": key,
        "start": span.start,
        "end": span.end,
        "start_char": span.start_char,
        "end_char": span.end_char,
        "label": span.label_,
        "score": None if score is None else float(score),
        "text": span.text,
        "vector": None if vector is None else numpy.asarray(vector, dtype="float32"),
        "cats": None,
    }


def rows(doc: Doc, *, doc_id: str, spans_keys: Sequence[str] = (), vectors: bool = False) -> List[Dict[str, Any]]:
    """The output records of one processed doc: one per entity (key "ents"),
    one per span of each group in `spans_keys` (key = the group's key, in group
    order), and one for `doc.cats` (key "cats") if the doc has categories.

    A span's score is its group's `attrs["scores"]` entry; an entity's score is
    the score of the same span and label in any scored group (the
    `spanbert_ner` group), else None. With `vectors`, a span's vector is its
    group's `attrs["vectors"]` row, or the row of the same span in any group
    with vectors (the `spanbert` encoder's candidates), else None.

    doc (Doc): A processed doc.
    doc_id (str): The id written to every record.
    spans_keys (Sequence[str]): The span groups to write besides `doc.ents`.
    vectors (bool): Write span vectors (float32).
    RETURNS (List[Dict[str, Any]]): Records with the keys of `COLUMNS`.
    """
    lookups = _DocLookups(doc)
    out = []
    for ent in doc.ents:
        vector = lookups.vector(ent) if vectors else None
        out.append(_span_row(doc_id, ENTS_KEY, ent, lookups.score(ent), vector))
    for key in spans_keys:
        if key not in doc.spans:
            continue
        group = doc.spans[key]
        scores = _per_span_array(group, "scores", 1)
        own_vectors = _per_span_array(group, "vectors", 2) if vectors else None
        for i, span in enumerate(group):
            score = None if scores is None else scores[i]
            if not vectors:
                vector = None
            elif own_vectors is not None:
                vector = own_vectors[i]
            else:
                vector = lookups.vector(span)
            out.append(_span_row(doc_id, key, span, score, vector))
    if doc.cats:
        row = dict.fromkeys(COLUMNS)
        row.update(doc_id=doc_id, key=CATS_KEY, cats={k: float(v) for k, v in doc.cats.items()})
        out.append(row)
    return out


def annotate_batch(
    nlp: Language,
    records: Sequence[Dict[str, str]],
    *,
    spans_keys: Sequence[str] = (),
    vectors: bool = False,
    batch_size: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """Run the pipeline over a batch of input records and return their rows.

    nlp (Language): A loaded pipeline.
    records (Sequence[Dict[str, str]]): Records with "doc_id" and "text".
    spans_keys (Sequence[str]): The span groups to write besides `doc.ents`.
    vectors (bool): Write span vectors.
    batch_size (Optional[int]): The `nlp.pipe` batch size.
    RETURNS (List[Dict[str, Any]]): The rows of every record, in order.
    """
    out: List[Dict[str, Any]] = []
    docs = nlp.pipe((record["text"] for record in records), batch_size=batch_size)
    for record, doc in zip(records, docs):
        out.extend(rows(doc, doc_id=record["doc_id"], spans_keys=spans_keys, vectors=vectors))
    return out


# -- input ---------------------------------------------------------------------


def find_input_files(input_path: str) -> Tuple[Path, List[Path]]:
    """The input files of INPUT: one file, the supported files of a folder
    (recursively), or the files matching a glob, in sorted order.

    input_path (str): A .jsonl, .txt or .parquet file, a folder or a glob.
    RETURNS (Tuple[Path, List[Path]]): The root that file names in ids and
        errors are relative to, and the files.
    """
    path = Path(input_path)
    if path.is_file():
        if path.suffix not in INPUT_SUFFIXES:
            raise ValueError(
                f"{NAME}: cannot read '{path}': the input must be a "
                f"{', '.join(INPUT_SUFFIXES)} file, a folder or a glob of them."
            )
        return path.parent, [path]
    if path.is_dir():
        root, files = path, [p for p in path.rglob("*") if p.is_file() and p.suffix in INPUT_SUFFIXES]
    else:
        matches = [Path(p) for p in glob.glob(input_path, recursive=True)]
        files = [p for p in matches if p.is_file() and p.suffix in INPUT_SUFFIXES]
        fixed = []
        for part in path.parts:
            if glob.has_magic(part):
                break
            fixed.append(part)
        root = Path(*fixed) if fixed else Path(".")
    if not files:
        raise ValueError(
            f"{NAME}: no {', '.join(INPUT_SUFFIXES)} files at '{input_path}'. "
            "Pass a file, a folder or a quoted glob of such files."
        )
    return root, sorted(files)


def _shard_name(relpath: str, index: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", relpath) + f"-{index:05d}"


def _line_shards(path: Path, shard_size: int) -> Tuple[List[Tuple[int, int, int, int]], int]:
    """Cut a text file into runs of `shard_size` lines, by byte offsets.
    RETURNS: [(start byte, stop byte, first line, lines)], total lines."""
    starts = [0]
    lines = 0
    size = 0
    last = b""
    with path.open("rb") as file_:
        while True:
            chunk = file_.read(1 << 20)
            if not chunk:
                break
            count = chunk.count(b"\n")
            if lines + count < shard_size * len(starts):
                lines += count
            else:
                i = -1
                for _ in range(count):
                    i = chunk.index(b"\n", i + 1)
                    lines += 1
                    if lines == shard_size * len(starts):
                        starts.append(size + i + 1)
            size += len(chunk)
            last = chunk[-1:]
    if size and last != b"\n":
        lines += 1  # a last line without a newline
    if starts[-1] >= size and len(starts) > 1:
        starts.pop()
    stops = starts[1:] + [size]
    shards = []
    for k, (start, stop) in enumerate(zip(starts, stops)):
        n = min(shard_size, lines - k * shard_size)
        shards.append((start, stop, k * shard_size + 1, max(n, 0)))
    return shards, lines


def plan_shards(root: Path, files: Sequence[Path], *, shard_size: int) -> List[Dict[str, Any]]:
    """Cut the input files into shards of at most `shard_size` records.

    root (Path): The folder file names are relative to.
    files (Sequence[Path]): The input files.
    shard_size (int): Records (lines, or Parquet rows) per shard.
    RETURNS (List[Dict[str, Any]]): Shards with "name", "path", "file" (the
        name in ids and errors), "fmt", "start", "stop" (bytes for text files,
        rows for Parquet), "first_line" and "records".
    """
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"{NAME}: shard_size must be a positive integer, got {shard_size!r}.")
    shards = []
    for path in files:
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        fmt = path.suffix[1:]
        if fmt == "parquet":
            pq = _require("pyarrow.parquet", "reading Parquet input")
            total = pq.ParquetFile(path).metadata.num_rows
            spans = [
                (s, min(s + shard_size, total), s + 1, min(shard_size, total - s)) for s in range(0, total, shard_size)
            ]
        else:
            spans, _ = _line_shards(path, shard_size)
        for k, (start, stop, first_line, n) in enumerate(spans):
            shards.append(
                {
                    "name": _shard_name(rel, k),
                    "path": str(path.resolve()),  # workers may run elsewhere
                    "file": rel,
                    "fmt": fmt,
                    "start": start,
                    "stop": stop,
                    "first_line": first_line,
                    "records": n,
                }
            )
    names = [shard["name"] for shard in shards]
    if len(set(names)) != len(names):
        raise ValueError(
            f"{NAME}: two input files give the same output name after replacing "
            "unusual characters with '_'; rename one of them."
        )
    return shards


def _error(shard: Dict[str, Any], line: Optional[int], error: str) -> Dict[str, Any]:
    return {"file": shard["file"], "line": line, "error": error}


def _text_records(shard, text_field: str, id_field: str):
    with open(shard["path"], "rb") as file_:
        file_.seek(shard["start"])
        data = file_.read(shard["stop"] - shard["start"])
    records, errors = [], []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    for i, raw in enumerate(lines):
        line = shard["first_line"] + i
        if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue  # blank lines separate nothing and are not records
        try:
            text = raw.decode("utf8")
        except UnicodeDecodeError as err:
            errors.append(_error(shard, line, f"not UTF-8: {err}"))
            continue
        doc_id = f"{shard['file']}:{line}"
        if shard["fmt"] == "jsonl":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                errors.append(_error(shard, line, f"not JSON: {err}"))
                continue
            if not isinstance(obj, dict):
                errors.append(_error(shard, line, f"not a JSON object: {type(obj).__name__}"))
                continue
            text = obj.get(text_field)
            if not isinstance(text, str) or not text:
                errors.append(_error(shard, line, f"no text: field '{text_field}' is missing, empty or not a string"))
                continue
            if obj.get(id_field) is not None:
                doc_id = str(obj[id_field])
        records.append({"doc_id": doc_id, "text": text})
    return records, errors


def _parquet_records(shard, text_field: str, id_field: str):
    pq = _require("pyarrow.parquet", "reading Parquet input")
    parquet = pq.ParquetFile(shard["path"])
    names = parquet.schema_arrow.names
    if text_field not in names:
        return [], [_error(shard, None, f"no text: no column '{text_field}' (columns: {', '.join(names)})")]
    columns = [text_field] + ([id_field] if id_field in names and id_field != text_field else [])
    start, stop = shard["start"], shard["stop"]
    groups, offset, first = [], 0, None
    for g in range(parquet.metadata.num_row_groups):
        n = parquet.metadata.row_group(g).num_rows
        if offset + n > start and offset < stop:
            groups.append(g)
            first = offset if first is None else first
        offset += n
    table = parquet.read_row_groups(groups, columns=columns).slice(start - first, stop - start)
    texts = table.column(text_field).to_pylist()
    ids = table.column(id_field).to_pylist() if id_field in columns else [None] * len(texts)
    records, errors = [], []
    for i, (text, id_) in enumerate(zip(texts, ids)):
        line = shard["first_line"] + i
        if not isinstance(text, str) or not text:
            errors.append(_error(shard, line, f"no text: column '{text_field}' is null, empty or not a string"))
            continue
        records.append({"doc_id": f"{shard['file']}:{line}" if id_ is None else str(id_), "text": text})
    return records, errors


def read_shard(shard: Dict[str, Any], *, text_field: str = "text", id_field: str = "id"):
    """The records of one shard, and the errors of its malformed records.

    shard (Dict[str, Any]): A shard from `plan_shards`.
    text_field (str): The field (column) holding the text.
    id_field (str): The field (column) holding the doc id, if present.
    RETURNS (Tuple[List[Dict[str, str]], List[Dict[str, Any]]]): Records with
        "doc_id" and "text"; errors with "file", "line" (1-based; the row for
        Parquet) and "error".
    """
    if shard["fmt"] == "parquet":
        return _parquet_records(shard, text_field, id_field)
    return _text_records(shard, text_field, id_field)


# -- output --------------------------------------------------------------------


def _replace_atomically(path: Path, write) -> None:
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
    pa = _require("pyarrow", "writing Parquet")
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
    """Write (or overwrite) the output file of one shard, and its errors.

    output_dir (Path): The output folder.
    name (str): The shard's name.
    records (Sequence[Dict[str, Any]]): Its rows.
    errors (Sequence[Dict[str, Any]]): Its malformed records.
    """
    pq = _require("pyarrow.parquet", "writing Parquet")
    table = rows_to_table(records)
    _replace_atomically(output_dir / f"{PART_PREFIX}{name}.parquet", lambda p: pq.write_table(table, p))
    if errors:
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors)
        _replace_atomically(output_dir / f"errors-{name}.jsonl", lambda p: p.write_text(text, encoding="utf8"))


def read_rows(output_dir: Path) -> List[Dict[str, Any]]:
    """The rows of an output folder, shard by shard in name order.

    output_dir (Path): A folder written by `annotate`.
    RETURNS (List[Dict[str, Any]]): The rows ("vector" a list of floats,
        "cats" a dict).
    """
    pq = _require("pyarrow.parquet", "reading Parquet")
    out = []
    for path in sorted(Path(output_dir).glob(f"{PART_PREFIX}*.parquet")):
        for record in pq.read_table(path).to_pylist():
            if record["cats"] is not None:
                record["cats"] = dict(record["cats"])
            out.append(record)
    return out


def _is_ours(path: Path) -> bool:
    name = path.name
    return (
        (name.startswith(PART_PREFIX) and name.endswith(".parquet"))
        or (name.startswith("errors") and name.endswith(".jsonl"))
        or name == MANIFEST_FILE
        or (name.startswith(".") and name.endswith(".tmp"))
    )


def prepare_output_dir(output_dir: Path, *, overwrite: bool) -> None:
    """Create the output folder; refuse a non-empty one unless `overwrite`,
    which deletes the annotation files of an earlier run (and nothing else)."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"{NAME}: the output '{output_dir}' is a file; pass a folder.")
    existing = list(output_dir.iterdir()) if output_dir.exists() else []
    if existing and not overwrite:
        raise ValueError(
            f"{NAME}: the output folder '{output_dir}' is not empty ({len(existing)} "
            "entries). Choose an empty folder, or pass --overwrite to replace the "
            "annotation files of an earlier run."
        )
    for path in existing:
        if path.is_file() and _is_ours(path):
            path.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)


def _merge_errors(output_dir: Path, shards: Sequence[Dict[str, Any]]) -> int:
    count = 0
    with (output_dir / ERRORS_FILE).open("w", encoding="utf8") as out:
        for shard in shards:
            path = output_dir / f"errors-{shard['name']}.jsonl"
            if path.exists():
                text = path.read_text(encoding="utf8")
                count += text.count("\n")
                out.write(text)
                path.unlink()
    return count


# -- engines -------------------------------------------------------------------


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    # disable=None: shown on a terminal, silent in logs
    return tqdm(total=total, unit="doc", desc="annotate", disable=None if enabled else True)


def _set_torch_threads(threads: Optional[int]) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _load(model: str, gpu_id: int, code_path: Optional[Path]) -> Language:
    if code_path is not None:
        spacy.util.import_file("annotate_code", str(code_path))
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def _run_local(model, shards, output_dir, opts, *, workers, threads, gpu_id, code_path, progress):
    start = time.perf_counter()
    _set_torch_threads(threads)
    nlp = _load(model, gpu_id, code_path)
    loaded = time.perf_counter()
    summaries: List[Dict[str, Any]] = [{"name": s["name"], "docs": 0, "rows": 0} for s in shards]
    errors: Dict[int, List[Dict[str, Any]]] = {}

    def stream() -> Iterator[Tuple[str, Tuple[int, str]]]:
        for i, shard in enumerate(shards):
            records, errors[i] = read_shard(shard, text_field=opts["text_field"], id_field=opts["id_field"])
            summaries[i]["docs"] = len(records)
            for record in records:
                yield record["text"], (i, record["doc_id"])

    bar = _progress(sum(s["records"] for s in shards), progress)
    pending: List[Dict[str, Any]] = []
    flushed = 0

    def flush(upto: int) -> None:
        nonlocal flushed, pending
        while flushed < upto:
            write_shard(output_dir, shards[flushed]["name"], pending, errors.pop(flushed))
            summaries[flushed]["rows"] = len(pending)
            bar.update(shards[flushed]["records"] - summaries[flushed]["docs"])
            pending = []
            flushed += 1

    with warnings.catch_warnings():
        # nlp.pipe workers send docs back without their user hooks (W109);
        # `rows` reads vectors from the span groups, not through the hooks
        warnings.filterwarnings("ignore", message=r"\[W109\]")
        docs = nlp.pipe(stream(), as_tuples=True, batch_size=opts["batch_size"], n_process=workers)
        for doc, (i, doc_id) in docs:
            flush(i)
            pending.extend(rows(doc, doc_id=doc_id, spans_keys=opts["spans_keys"], vectors=opts["vectors"]))
            bar.update(1)
    flush(len(shards))
    bar.close()
    return summaries, {"startup_seconds": loaded - start}


class ShardAnnotator:
    """A Ray Data actor: loads the pipeline from its path once, then annotates
    whole shards and writes each shard's output file itself."""

    def __init__(self, model: str, output_dir: str, opts: Dict[str, Any], threads: int, use_gpu: bool, code_path):
        _set_torch_threads(threads)
        self.nlp = _load(model, 0 if use_gpu else -1, code_path)
        self.output_dir = Path(output_dir)
        self.opts = opts
        self.ready_at = time.time()

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        out: Dict[str, List[Any]] = {"name": [], "docs": [], "rows": [], "records": [], "ready_at": []}
        for i in range(len(batch["name"])):
            shard = {
                key: values[i].item() if hasattr(values[i], "item") else values[i] for key, values in batch.items()
            }
            records, errors = read_shard(shard, text_field=self.opts["text_field"], id_field=self.opts["id_field"])
            annotated = annotate_batch(
                self.nlp,
                records,
                spans_keys=self.opts["spans_keys"],
                vectors=self.opts["vectors"],
                batch_size=self.opts["batch_size"],
            )
            write_shard(self.output_dir, shard["name"], annotated, errors)
            out["name"].append(shard["name"])
            out["docs"].append(len(records))
            out["rows"].append(len(annotated))
            out["records"].append(shard["records"])
            out["ready_at"].append(self.ready_at)
        return {key: numpy.asarray(values) for key, values in out.items()}


def _run_ray(model, shards, output_dir, opts, *, workers, threads, gpu_id, address, code_path, progress):
    ray = _require("ray", "the ray engine")
    _require("ray.data", "the ray engine")
    start = time.time()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    init_seconds = time.time() - start
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if threads is None:
            threads = max(1, cpus // workers)
        if workers * threads > cpus:
            raise ValueError(
                f"{NAME}: {workers} workers x {threads} threads need {workers * threads} "
                f"CPUs, but the Ray cluster has {cpus}. Lower --workers or --threads-per-worker."
            )
        context = ray.data.DataContext.get_current()
        bars = context.enable_progress_bars
        context.enable_progress_bars = False
        try:
            # one block per shard, so that a task is a shard (`parallelism`
            # before Ray 2.10)
            params = inspect.signature(ray.data.from_items).parameters
            blocks = "override_num_blocks" if "override_num_blocks" in params else "parallelism"
            dataset = ray.data.from_items(list(shards), **{blocks: len(shards)})
            dataset = dataset.map_batches(
                ShardAnnotator,
                batch_size=1,
                # one shard at a time per actor: an idle actor takes the next
                # shard, and a dead one holds back only the shard it was on
                compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
                num_cpus=threads,
                num_gpus=1 if gpu_id >= 0 else 0,
                fn_constructor_kwargs={
                    # an actor's working directory is not ours
                    "model": str(Path(model).resolve()) if Path(model).exists() else str(model),
                    "output_dir": str(Path(output_dir).resolve()),
                    "opts": opts,
                    "threads": threads,
                    "use_gpu": gpu_id >= 0,
                    "code_path": None if code_path is None else str(Path(code_path).resolve()),
                },
            )
            bar = _progress(sum(s["records"] for s in shards), progress)
            summaries, ready = [], []
            for row in dataset.iter_rows():
                summaries.append({"name": row["name"], "docs": int(row["docs"]), "rows": int(row["rows"])})
                ready.append(float(row["ready_at"]))
                bar.update(int(row["records"]))
            bar.close()
        finally:
            context.enable_progress_bars = bars
    finally:
        if started_here:
            ray.shutdown()
    startup = (max(ready) - start - init_seconds) if ready else 0.0
    return summaries, {"ray_init_seconds": init_seconds, "startup_seconds": startup, "threads": threads}


def _spans_keys_of(model: str) -> List[str]:
    path = Path(model)
    if not (path / "config.cfg").exists():
        return []
    config = spacy.util.load_config(path / "config.cfg", interpolate=False)
    keys = []
    for block in config.get("components", {}).values():
        if isinstance(block, dict) and isinstance(block.get("spans_key"), str):
            keys.append(block["spans_key"])
    return keys


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
    """Annotate a corpus with a trained pipeline into Parquet files, one per
    input shard (`part-<file>-<shard>.parquet`), plus `errors.jsonl` (the
    malformed records, with file and line) and `manifest.json`.

    model (str): The pipeline's folder (or installed package name).
    input_path (str): A .jsonl, .txt or .parquet file, a folder or a glob.
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
    if engine not in ENGINES:
        raise ValueError(f"{NAME}: unknown engine {engine!r}; use one of {', '.join(ENGINES)}.")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"{NAME}: --workers must be a positive integer, got {workers!r}.")
    if threads_per_worker is not None and threads_per_worker < 1:
        raise ValueError(f"{NAME}: --threads-per-worker must be positive, got {threads_per_worker!r}.")
    if engine == "local" and threads_per_worker is not None:
        cores = os.cpu_count() or 1
        if workers * threads_per_worker > cores:
            raise ValueError(
                f"{NAME}: {workers} workers x {threads_per_worker} threads exceed the "
                f"{cores} cores of this machine. Lower --workers or --threads-per-worker."
            )
    spans_keys = list(dict.fromkeys(spans_keys))
    known = _spans_keys_of(model)
    unknown = [key for key in spans_keys if known and key not in known]
    if unknown:
        raise ValueError(
            f"{NAME}: no component of '{model}' writes the span group(s) "
            f"{', '.join(map(repr, unknown))}. Pass --spans-key with one of: {', '.join(known)}."
        )
    _require("pyarrow.parquet", "writing Parquet")
    root, files = find_input_files(str(input_path))
    shards = plan_shards(root, files, shard_size=shard_size)
    output_dir = Path(output_dir)
    prepare_output_dir(output_dir, overwrite=overwrite)
    opts = {
        "spans_keys": spans_keys,
        "vectors": bool(vectors),
        "batch_size": batch_size,
        "text_field": text_field,
        "id_field": id_field,
    }
    start = time.perf_counter()
    if engine == "local":
        summaries, timings = _run_local(
            model,
            shards,
            output_dir,
            opts,
            workers=workers,
            threads=threads_per_worker,
            gpu_id=gpu_id,
            code_path=code_path,
            progress=progress,
        )
    else:
        summaries, timings = _run_ray(
            model,
            shards,
            output_dir,
            opts,
            workers=workers,
            threads=threads_per_worker,
            gpu_id=gpu_id,
            address=address,
            code_path=code_path,
            progress=progress,
        )
    seconds = time.perf_counter() - start
    by_name = {s["name"]: s for s in summaries}
    missing = [s["name"] for s in shards if s["name"] not in by_name]
    if missing:
        raise RuntimeError(f"{NAME}: {len(missing)} shard(s) were not annotated: {', '.join(missing[:5])}.")
    n_errors = _merge_errors(output_dir, shards)
    result = {
        "engine": engine,
        "workers": workers,
        "docs": sum(s["docs"] for s in summaries),
        "rows": sum(s["rows"] for s in summaries),
        "errors": n_errors,
        "shards": len(shards),
        "seconds": seconds,
        **timings,
    }
    manifest = dict(
        result,
        model=str(model),
        input=str(input_path),
        schema=[{"name": n, "type": t, "meaning": m} for n, t, m in OUTPUT_COLUMNS],
        files=[
            {
                "file": f"{PART_PREFIX}{s['name']}.parquet",
                "docs": by_name[s["name"]]["docs"],
                "rows": by_name[s["name"]]["rows"],
            }
            for s in shards
        ],
    )
    (output_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf8")
    return result


# -- command line ----------------------------------------------------------------


@spanbert_cli.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Trained pipeline: folder or package name"),
    input_path: str = typer.Argument(..., help="A .jsonl, .txt or .parquet file, a folder, or a quoted glob of them"),
    output_dir: Path = typer.Argument(..., help="Output folder for the Parquet files (must be empty)"),
    engine: str = typer.Option("local", "--engine", "-e", help="local (nlp.pipe) or ray (Ray Data)"),
    workers: int = typer.Option(1, "--workers", "-w", help="Processes (local) or actors (ray)"),
    threads_per_worker: Optional[int] = typer.Option(
        None, "--threads-per-worker", help="Torch threads per worker (workers x threads <= cores)"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Docs per nlp.pipe batch"),
    vectors: bool = typer.Option(False, "--vectors", help="Write span vectors (float32)"),
    spans_keys: Optional[List[str]] = typer.Option(
        None, "--spans-key", help="Span group to write besides doc.ents (repeatable)"
    ),
    text_field: str = typer.Option("text", "--text-field", help="Field (column) with the text"),
    id_field: str = typer.Option("id", "--id-field", help="Field (column) with the doc id"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU (ray: >= 0 gives each actor a GPU)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join, e.g. auto (ray engine)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the files of an earlier run in OUTPUT_DIR"),
):
    """Annotate a corpus with a trained pipeline into Parquet files: one row per
    entity and per span of the chosen span groups, one per doc for doc.cats.
    Malformed records go to OUTPUT_DIR/errors.jsonl with their file and line."""
    try:
        result = annotate(
            model,
            input_path,
            output_dir,
            engine=engine,
            workers=workers,
            threads_per_worker=threads_per_worker,
            batch_size=batch_size,
            vectors=vectors,
            spans_keys=spans_keys or (),
            text_field=text_field,
            id_field=id_field,
            gpu_id=gpu_id,
            address=address,
            overwrite=overwrite,
        )
    except (ValueError, ImportError) as err:
        msg.fail(str(err), exits=1)
    msg.good(
        f"Annotated {result['docs']} docs into {result['rows']} rows "
        f"({result['shards']} files) in {result['seconds']:.1f}s: {output_dir}"
    )
    if result["errors"]:
        msg.warn(f"Skipped {result['errors']} malformed records: {Path(output_dir) / ERRORS_FILE}")
