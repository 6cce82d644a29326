"""The input of `spacy spanbert annotate`: finding the input files, cutting
them into shards, and reading a shard's records.

A shard is a run of at most `shard_size` records: lines of a `.jsonl` / `.txt`
file, found by byte offsets so that a worker reads only its own bytes, or rows
of a Parquet file. A gzip stream cannot be entered in the middle, so a
`.jsonl.gz` / `.txt.gz` file is read as one shard (one output file), as Spark
reads a gzipped file as one partition: split a large corpus into several files
to spread it over workers.

Lines are read and decoded by the commands' text reader
(`commands/text_input.py`): UTF-8 with or without a byte order mark, LF or
CRLF. A malformed record (bad bytes, not JSON, no text) becomes an error with
its file and line, and is skipped; the other records are read.
"""

import glob
import re
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ...errors import Errors
from ..text_input import (
    GZIP_SUFFIX,
    InputError,
    data_suffix,
    decode_line,
    iter_raw_lines,
    open_bytes,
    parse_json,
    split_lines,
)
from .extras import require

INPUT_SUFFIXES = (".jsonl", ".txt", ".parquet", ".jsonl.gz", ".txt.gz")
Record = Dict[str, str]
RecordError = Dict[str, Any]


def _is_input(path: Path) -> bool:
    return path.is_file() and path.name.endswith(INPUT_SUFFIXES)


def find_input_files(input_path: str) -> Tuple[Path, List[Path]]:
    """The input files of INPUT: one file, the supported files of a folder
    (recursively), or the files matching a glob, in sorted order.

    input_path (str): A .jsonl, .txt or .parquet file (.jsonl.gz, .txt.gz), a
        folder or a glob.
    RETURNS (Tuple[Path, List[Path]]): The root that file names in ids and
        errors are relative to, and the files.
    """
    suffixes = ", ".join(INPUT_SUFFIXES)
    path = Path(input_path)
    if path.is_file():
        if not _is_input(path):
            raise ValueError(Errors.E201.format(path=path, suffixes=suffixes))
        return path.parent, [path]
    if path.is_dir():
        root, files = path, [p for p in path.rglob("*") if _is_input(p)]
    else:
        files = [p for p in map(Path, glob.glob(input_path, recursive=True)) if _is_input(p)]
        fixed = []
        for part in path.parts:
            if glob.has_magic(part):
                break
            fixed.append(part)
        root = Path(*fixed) if fixed else Path(".")
    if not files:
        raise ValueError(Errors.E202.format(input=input_path, suffixes=suffixes))
    return root, sorted(files)


def _shard_name(relpath: str, index: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", relpath) + f"-{index:05d}"


def _line_shards(path: Path, shard_size: int) -> List[Tuple[int, int, int, int]]:
    """Cut a plain text file into runs of `shard_size` lines, by byte offsets.

    RETURNS (List[Tuple[int, int, int, int]]): (start byte, stop byte, first
        line, lines) of every shard.
    """
    starts = [0]
    lines = 0
    size = 0
    last = b""
    with open_bytes(path) as file_:
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
    return [
        (start, stop, k * shard_size + 1, max(min(shard_size, lines - k * shard_size), 0))
        for k, (start, stop) in enumerate(zip(starts, stops))
    ]


def _count_lines(path: Path) -> int:
    """The lines of a gzipped file, after decompression (a corrupt stream
    raises InputError here, before any model is loaded)."""
    return sum(1 for _ in iter_raw_lines(path))


def _file_shards(path: Path, shard_size: int) -> List[Tuple[int, int, int, int]]:
    """(start, stop, first line, records) of every shard of one file."""
    if data_suffix(path) == ".parquet":
        pq = require("pyarrow.parquet", "reading Parquet input")
        total = pq.ParquetFile(path).metadata.num_rows
        return [(s, min(s + shard_size, total), s + 1, min(shard_size, total - s)) for s in range(0, total, shard_size)]
    if path.suffix == GZIP_SUFFIX:
        lines = _count_lines(path)
        return [(0, lines, 1, lines)]
    return _line_shards(path, shard_size)


def plan_shards(root: Path, files: Sequence[Path], *, shard_size: int) -> List[Dict[str, Any]]:
    """Cut the input files into shards of at most `shard_size` records (a
    gzipped file is one shard, whatever its length).

    root (Path): The folder file names are relative to.
    files (Sequence[Path]): The input files.
    shard_size (int): Records (lines, or Parquet rows) per shard.
    RETURNS (List[Dict[str, Any]]): Shards with "name", "path", "file" (the
        name in ids and errors), "fmt" ("jsonl", "txt" or "parquet"), "start",
        "stop" (bytes of a plain text file, lines of a gzipped one, rows of a
        Parquet file), "first_line" and "records".
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(Errors.E203.format(value=shard_size))
    shards = []
    seen: Dict[str, str] = {}
    for path in files:
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        first = seen.setdefault(_shard_name(rel, 0), rel)
        if first != rel:
            raise ValueError(Errors.E204.format(first=first, second=rel))
        for k, (start, stop, first_line, n) in enumerate(_file_shards(path, shard_size)):
            shards.append(
                {
                    "name": _shard_name(rel, k),
                    "path": str(path.resolve()),  # workers may run elsewhere
                    "file": rel,
                    "fmt": data_suffix(path)[1:],
                    "start": start,
                    "stop": stop,
                    "first_line": first_line,
                    "records": n,
                }
            )
    return shards


def _error(shard: Dict[str, Any], line: Optional[int], error: str) -> RecordError:
    return {"file": shard["file"], "line": line, "error": error}


def _raw_lines(shard: Dict[str, Any]) -> Iterator[Tuple[int, bytes]]:
    """(line number, bytes of the line) of every line of a text shard."""
    path = shard["path"]
    if path.endswith(GZIP_SUFFIX):
        yield from iter_raw_lines(path)
        return
    with open_bytes(path) as file_:
        file_.seek(shard["start"])
        data = file_.read(shard["stop"] - shard["start"])
    yield from enumerate(split_lines(data), shard["first_line"])


def _text_record(shard: Dict[str, Any], lineno: int, raw: bytes, text_field: str, id_field: str) -> Optional[Record]:
    """The record of one line, None for a blank line; InputError if malformed."""
    line = decode_line(raw, path=shard["file"], lineno=lineno)
    if not line.strip():
        return None  # blank lines separate nothing and are not records
    doc_id = f"{shard['file']}:{lineno}"
    if shard["fmt"] == "txt":
        return {"doc_id": doc_id, "text": line}
    obj = parse_json(line, path=shard["file"], lineno=lineno)
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        raise InputError(Errors.E220.format(path=shard["file"], line=lineno, kind=kind, field=text_field))
    text = obj.get(text_field)
    if not isinstance(text, str) or not text:
        raise InputError(Errors.E221.format(path=shard["file"], line=lineno, field=text_field))
    if obj.get(id_field) is not None:
        doc_id = str(obj[id_field])
    return {"doc_id": doc_id, "text": text}


def _text_records(
    shard: Dict[str, Any], lines: Iterable[Tuple[int, bytes]], text_field: str, id_field: str
) -> Tuple[List[Record], List[RecordError]]:
    records, errors = [], []
    for lineno, raw in lines:
        try:
            record = _text_record(shard, lineno, raw, text_field, id_field)
        except InputError as err:
            errors.append(_error(shard, lineno, str(err)))
            continue
        if record is not None:
            records.append(record)
    return records, errors


def _parquet_records(shard: Dict[str, Any], text_field: str, id_field: str) -> Tuple[List[Record], List[RecordError]]:
    pq = require("pyarrow.parquet", "reading Parquet input")
    parquet = pq.ParquetFile(shard["path"])
    names = parquet.schema_arrow.names
    if text_field not in names:
        message = Errors.E222.format(path=shard["file"], field=text_field, columns=", ".join(names))
        return [], [_error(shard, None, message)]
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
            errors.append(_error(shard, line, Errors.E223.format(path=shard["file"], line=line, field=text_field)))
            continue
        records.append({"doc_id": f"{shard['file']}:{line}" if id_ is None else str(id_), "text": text})
    return records, errors


def read_shard(
    shard: Dict[str, Any], *, text_field: str = "text", id_field: str = "id"
) -> Tuple[List[Record], List[RecordError]]:
    """The records of one shard, and the errors of its malformed records.

    shard (Dict[str, Any]): A shard from `plan_shards`.
    text_field (str): The field (column) holding the text.
    id_field (str): The field (column) holding the doc id, if present.
    RETURNS (Tuple[List[Dict[str, str]], List[Dict[str, Any]]]): Records with
        "doc_id" and "text"; errors with "file", "line" (1-based; the row for
        Parquet) and "error" (the message, which names the file and line).
    """
    if shard["fmt"] == "parquet":
        return _parquet_records(shard, text_field, id_field)
    return _text_records(shard, _raw_lines(shard), text_field, id_field)
