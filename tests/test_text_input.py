import gzip

import pytest

from spacy_spanbert.commands.text_input import (
    InputError,
    check_encoding,
    data_suffix,
    iter_jsonl,
    iter_lines,
    iter_raw_lines,
    read_text,
)

LINES = ["first", "second line", "", "fourth\u2028still fourth"]


def _write(path, data: bytes):
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["t.txt", "t.txt.gz"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_text_input_bom_crlf_and_gzip_read_alike(tmp_path, name, bom, newline):
    data = bom + newline.join(line.encode("utf8") for line in LINES) + newline
    path = _write(tmp_path / name, data)
    assert [line for _, line in iter_lines(path)] == LINES
    assert [n for n, _ in iter_lines(path)] == [1, 2, 3, 4]


def test_text_input_jsonl_skips_blank_lines_and_names_the_bad_line(tmp_path):
    path = _write(tmp_path / "t.jsonl", b'\xef\xbb\xbf{"text": "a"}\r\n\r\n{"text": "b"}\n{broken\n')
    rows = iter_jsonl(path)
    assert next(rows) == (1, {"text": "a"})
    assert next(rows) == (3, {"text": "b"})
    with pytest.raises(InputError, match=r"E103\] .*t\.jsonl:4: not JSON"):
        next(rows)


def test_text_input_bad_byte_names_file_line_and_column(tmp_path):
    path = _write(tmp_path / "t.txt", b"ok\nbad \xff byte\n")
    with pytest.raises(InputError, match=r"t\.txt:2: cannot decode byte b'\\xff' \(column 5\) as utf-8"):
        list(iter_lines(path))
    assert [line for _, line in iter_lines(path, encoding="latin-1")][1] == "bad \xff byte"


def test_text_input_bom_dropped_whatever_the_encoding(tmp_path):
    path = _write(tmp_path / "t.txt", b"\xef\xbb\xbfx\n")
    assert [line for _, line in iter_lines(path, encoding="latin-1")] == ["x"]


def test_text_input_rejects_encodings_without_a_newline_byte(tmp_path):
    path = _write(tmp_path / "t.txt", "a\nb\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"E105\] encoding 'utf-16'.*re-encode the file as UTF-8"):
        list(iter_lines(path, encoding="utf-16"))
    with pytest.raises(ValueError, match=r"E102\] unknown encoding 'no-such-codec'"):
        check_encoding("no-such-codec")


def test_text_input_corrupt_gzip_and_missing_file(tmp_path):
    path = tmp_path / "t.txt.gz"
    path.write_bytes(gzip.compress(b"a\nb\n")[:-6])
    with pytest.raises(InputError, match=r"E104\] .*t\.txt\.gz: cannot decompress"):
        list(iter_raw_lines(path))
    with pytest.raises(InputError, match=r"E100\] .*missing\.txt: cannot open"):
        list(iter_lines(tmp_path / "missing.txt"))


def test_text_input_read_text_and_suffix(tmp_path):
    path = _write(tmp_path / "t.json.gz", b'\xef\xbb\xbf{"a":\r\n 1}\r\n')
    assert read_text(path) == '{"a":\n 1}'
    assert data_suffix(path) == ".json" and data_suffix(tmp_path / "t.jsonl") == ".jsonl"
