"""The one reader of text input for `convert`, `annotate` and `pretrain`.

Files are read as bytes and split on b"\\n" only, so U+2028, U+0085 and other
Unicode line separators inside a text do not cut it; each line is decoded on
its own, so a bad byte is reported with its file and line. A UTF-8 byte order
mark on the first line is dropped and a trailing "\\r" (CRLF files) removed.
A `.gz` file is decompressed on the fly (`train.jsonl.gz` reads as a
`.jsonl`). Only encodings in which b"\n" is the line break qualify (UTF-8,
Latin-1 and the other ASCII-compatible codecs; not UTF-16 or UTF-32).
Malformed input raises `InputError`, a ValueError whose message reads
`[E1xx] path:line: ...` (or `path: ...`).
"""

import codecs
import gzip
import json
import zlib
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Tuple, Union

from ..errors import Errors

PathLike = Union[str, Path]
GZIP_SUFFIX = ".gz"
_BOM = b"\xef\xbb\xbf"


class InputError(ValueError):
    """Malformed input. The message reads `[E1xx] path:line: ...` (or `path: ...`)."""


def data_suffix(path: PathLike) -> str:
    """The suffix that says what a file holds: ".jsonl" for "a.jsonl" and for
    "a.jsonl.gz"."""
    path = Path(path)
    if path.suffix == GZIP_SUFFIX:
        return Path(path.stem).suffix
    return path.suffix


def check_encoding(encoding: str) -> str:
    """RETURNS (str): `encoding`, or raise a ValueError if Python has no codec
    of that name or the codec does not write a line break as b"\n"."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(Errors.E102.format(encoding=encoding)) from None
    if "\n".encode(encoding) != b"\n":
        raise ValueError(Errors.E105.format(encoding=encoding))
    return encoding


def open_bytes(path: PathLike) -> IO[bytes]:
    """Open a file for reading bytes, gunzipping a `.gz` file.

    path (PathLike): The file.
    RETURNS (IO[bytes]): The open file.
    """
    try:
        if Path(path).suffix == GZIP_SUFFIX:
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as err:
        raise InputError(Errors.E100.format(path=path, reason=err.strerror or err)) from None


def decode_line(raw: bytes, *, path: PathLike, lineno: int, encoding: str = "utf-8") -> str:
    """One line of a file as text, without its line break (and, on line 1,
    without a UTF-8 byte order mark).

    raw (bytes): The line as read, with or without b"\\n" / b"\\r\\n".
    path (PathLike): The file, for error messages.
    lineno (int): The line number (1-based), for error messages.
    encoding (str): The file's encoding.
    RETURNS (str): The text of the line.
    """
    # A UTF-8 byte order mark is dropped whatever the declared encoding: as
    # Latin-1 text it would be "ï»¿", which no file means to start with.
    if lineno == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        line = raw.decode(encoding)
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 1]
        raise InputError(
            Errors.E101.format(path=path, line=lineno, byte=bad, column=err.start + 1, encoding=encoding)
        ) from None
    except LookupError:
        raise ValueError(Errors.E102.format(encoding=encoding)) from None
    return line[1:] if lineno == 1 and line.startswith("\ufeff") else line


def split_lines(data: bytes) -> Iterator[bytes]:
    """The lines of `data`, split on b"\\n" only; no empty last line for a
    final line break."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return iter(lines)


def iter_lines(path: PathLike, *, encoding: str = "utf-8") -> Iterator[Tuple[int, str]]:
    """Yield (line number, text of the line) for every line of a file.

    path (PathLike): A text file, or a `.gz` of one.
    encoding (str): Its encoding.
    YIELDS (Tuple[int, str]): 1-based line numbers and lines without breaks.
    """
    check_encoding(encoding)
    for lineno, raw in iter_raw_lines(path):
        yield lineno, decode_line(raw, path=path, lineno=lineno, encoding=encoding)


def iter_raw_lines(path: PathLike) -> Iterator[Tuple[int, bytes]]:
    """Yield (line number, bytes of the line) for every line of a file,
    decompressing a `.gz`, for callers that decode line by line themselves
    (to keep a bad line as a per-record error, say).

    path (PathLike): A text file, or a `.gz` of one.
    YIELDS (Tuple[int, bytes]): 1-based line numbers and raw lines.
    """
    gzipped = Path(path).suffix == GZIP_SUFFIX
    with open_bytes(path) as file_:
        try:
            yield from enumerate(file_, 1)
        except (OSError, EOFError, zlib.error) as err:
            if gzipped:
                raise InputError(Errors.E104.format(path=path, reason=err)) from None
            raise InputError(Errors.E106.format(path=path, reason=err.strerror or err)) from None


def parse_json(line: str, *, path: PathLike, lineno: int) -> Any:
    """`json.loads(line)`, with an error that names the file and line."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(Errors.E103.format(path=path, line=lineno, reason=err.msg)) from None


def iter_jsonl(path: PathLike, *, encoding: str = "utf-8") -> Iterator[Tuple[int, Any]]:
    """Yield (line number, parsed value) for every non-blank line of a JSON
    lines file.

    path (PathLike): A `.jsonl` file, or a `.gz` of one.
    encoding (str): Its encoding.
    YIELDS (Tuple[int, Any]): Line numbers and JSON values.
    """
    for lineno, line in iter_lines(path, encoding=encoding):
        if line.strip():
            yield lineno, parse_json(line, path=path, lineno=lineno)


def read_text(path: PathLike, *, encoding: str = "utf-8") -> str:
    """A whole file as text (a JSON document, say), BOM dropped.

    path (PathLike): The file, or a `.gz` of it.
    encoding (str): Its encoding.
    RETURNS (str): The text.
    """
    return "\n".join(line for _, line in iter_lines(path, encoding=encoding))


def read_json(path: PathLike, *, encoding: str = "utf-8") -> Any:
    """A whole file as one JSON document, with an error naming its line and
    column.

    path (PathLike): The file, or a `.gz` of it.
    encoding (str): Its encoding.
    RETURNS (Any): The parsed document.
    """
    try:
        return json.loads(read_text(path, encoding=encoding))
    except json.JSONDecodeError as err:
        reason = f"{err.msg}, column {err.colno}"
        raise InputError(Errors.E103.format(path=path, line=err.lineno, reason=reason)) from None


def non_blank(lines: Iterable[Tuple[int, str]]) -> Iterator[Tuple[int, str]]:
    """The (line number, line) pairs whose line holds more than whitespace."""
    return ((lineno, line) for lineno, line in lines if line.strip())
