"""`spacy spanbert annotate` (commands/annotate/): rows, readers, the
Parquet data set it writes, and both engines.

The pipeline is the tiny random BERT + `spanbert` + `spanbert_ner`, only
initialized: a low NER threshold gives entities and nested spans to compare.
The Ray tests start a local 2-CPU cluster and are skipped without Ray.
"""

import gzip
import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Dict, List

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from typer.testing import CliRunner

from spacy_spanbert.commands.annotate import (
    COLUMNS,
    MANIFEST_FILE,
    annotate,
    find_input_files,
    output_schema,
    plan_shards,
    read_rows,
    read_shard,
    rows,
)
from spacy_spanbert.commands.text_input import InputError
from spacy_spanbert.span_vectors import DEFAULT_SPANS_KEY

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ds = pytest.importorskip("pyarrow.dataset")
pandas = pytest.importorskip("pandas")

BOM = b"\xef\xbb\xbf"
# line separators inside a text (U+2028, U+0085) do not cut it
UNICODE = ["Angela Merkel met Macron .", "caf\u00e9 in K\u00f6ln \u2028 next", "Paris\u0085is big ."]

TRAIN = [
    ("Angela Merkel met Emmanuel Macron in Berlin .", [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]),
    ("Apple is a company in New York .", [(0, 1, "ORG"), (5, 7, "LOC")]),
]
TEXTS = [
    "Angela Merkel met Emmanuel Macron in Berlin .",
    "The German chancellor visited Paris .",
    "Apple is a company in New York .",
    "He said the film was good .",
    "The French president met the German chancellor in London .",
    "Google is a company .",
    "She visited the city of Paris with her band .",
    "Who wrote the book ?",
    "Berlin",
    "The river in the city was good and the people were happy .",
    "They said the song was bad .",
    "Emmanuel Macron visited Google in New York .",
]


@pytest.fixture(scope="module")
def pipeline_path(tiny_bert, tmp_path_factory) -> str:
    from conftest import make_nlp

    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_ner", config={"threshold": 0.3})
    examples = []
    for text, ents in TRAIN:
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, s, e, label=label) for s, e, label in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    nlp.initialize(lambda: examples)
    path = tmp_path_factory.mktemp("annotate_pipeline") / "pipeline"
    nlp.to_disk(path)
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("annotate_corpus") / "docs.jsonl"
    lines = [json.dumps({"id": f"d{i}", "text": text}) for i, text in enumerate(TEXTS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def _reference_rows(model, texts, ids, **kwargs):
    nlp = spacy.load(model)
    out = []
    for doc_id, doc in zip(ids, nlp.pipe(texts)):
        out.extend(rows(doc, doc_id=doc_id, **kwargs))
    return out


def _sort_key(row):
    return (row["doc_id"], row["key"], row["start"] or 0, row["end"] or 0, row["label"] or "")


def assert_same_rows(got, want, atol=1e-5):
    assert len(got) == len(want)
    for a, b in zip(sorted(got, key=_sort_key), sorted(want, key=_sort_key)):
        for column in ("doc_id", "key", "start", "end", "start_char", "end_char", "label", "text"):
            assert a[column] == b[column], (column, a, b)
        assert (a["score"] is None) == (b["score"] is None)
        if a["score"] is not None:
            assert abs(a["score"] - b["score"]) <= atol
        assert (a["vector"] is None) == (b["vector"] is None)
        if a["vector"] is not None:
            assert_allclose(numpy.asarray(a["vector"]), numpy.asarray(b["vector"]), atol=atol)
        assert (a["cats"] is None) == (b["cats"] is None)
        if a["cats"] is not None:
            assert a["cats"].keys() == b["cats"].keys()
            assert_allclose([a["cats"][k] for k in a["cats"]], [b["cats"][k] for k in a["cats"]], atol=atol)


def test_annotate_rows_of_hand_made_doc():
    doc = Doc(spacy.blank("en").vocab, words=["Angela", "Merkel", "met", "Macron", "."])
    vectors = numpy.arange(12, dtype="float32").reshape((3, 4))
    doc.spans["spanbert"] = SpanGroup(
        doc, name="spanbert", attrs={"vectors": vectors}, spans=[doc[0:2], doc[3:4], doc[0:1]]
    )
    nested = [Span(doc, 0, 2, label="PER"), Span(doc, 0, 1, label="PER"), Span(doc, 3, 4, label="PER")]
    doc.spans["spanbert_ner"] = SpanGroup(
        doc, name="spanbert_ner", attrs={"scores": numpy.asarray([0.9, 0.6, 0.8], dtype="f")}, spans=nested
    )
    doc.ents = [Span(doc, 0, 2, label="PER"), Span(doc, 3, 4, label="PER")]
    doc.cats = {"POLITICS": 0.75, "SPORT": 0.25}
    out = rows(doc, doc_id="x", spans_keys=["spanbert_ner"], vectors=True)
    assert [(r["key"], r["start"], r["end"]) for r in out] == [
        ("ents", 0, 2), ("ents", 3, 4),
        ("spanbert_ner", 0, 2), ("spanbert_ner", 0, 1), ("spanbert_ner", 3, 4),
        ("cats", None, None),
    ]  # fmt: skip
    assert [r["score"] for r in out[:5]] == pytest.approx([0.9, 0.8, 0.9, 0.6, 0.8])
    assert out[0]["text"] == "Angela Merkel" and (out[0]["start_char"], out[0]["end_char"]) == (0, 13)
    assert out[1]["vector"].tolist() == vectors[1].tolist()
    assert out[3]["vector"].tolist() == vectors[2].tolist()
    assert out[5]["cats"] == {"POLITICS": 0.75, "SPORT": 0.25} and out[5]["vector"] is None
    assert all(set(r) == set(COLUMNS) for r in out)


def test_annotate_rows_without_vectors_or_scores():
    doc = Doc(spacy.blank("en").vocab, words=["Berlin", "is", "big"])
    doc.ents = [Span(doc, 0, 1, label="LOC")]
    (row,) = rows(doc, doc_id="y", vectors=True)
    assert row["score"] is None and row["vector"] is None and row["label"] == "LOC"


def test_annotate_rows_prefers_the_candidate_group_vector():
    doc = Doc(spacy.blank("en").vocab, words=["Berlin", "is", "big"])
    other = SpanGroup(doc, name="other", attrs={"vectors": numpy.zeros((1, 2), dtype="f")}, spans=[doc[0:1]])
    doc.spans["other"] = other
    doc.spans[DEFAULT_SPANS_KEY] = SpanGroup(
        doc, name=DEFAULT_SPANS_KEY, attrs={"vectors": numpy.ones((1, 2), dtype="f")}, spans=[doc[0:1]]
    )
    doc.ents = [Span(doc, 0, 1, label="LOC")]
    (row,) = rows(doc, doc_id="z", vectors=True)
    assert row["vector"].tolist() == [1.0, 1.0]


def test_annotate_local_matches_nlp_pipe(pipeline_path, corpus, tmp_path):
    out = tmp_path / "out"
    result = annotate(
        pipeline_path, str(corpus), out, spans_keys=["spanbert_ner"], vectors=True,
        batch_size=4, shard_size=5, progress=False,
    )  # fmt: skip
    assert (result["docs"], result["errors"], result["shards"]) == (len(TEXTS), 0, 3)
    parts = [f"part-docs.jsonl-0000{i}.parquet" for i in range(3)]
    # no empty side files: no errors, no _errors.jsonl
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_FILE] + parts
    got = read_rows(out)
    want = _reference_rows(
        pipeline_path, TEXTS, [f"d{i}" for i in range(len(TEXTS))], spans_keys=["spanbert_ner"], vectors=True
    )
    assert any(r["key"] == "ents" for r in want) and any(r["key"] == "spanbert_ner" for r in want)
    assert result["rows"] == len(want)
    assert_same_rows(got, want)


def test_annotate_parquet_schema(pipeline_path, corpus, tmp_path):
    annotate(pipeline_path, str(corpus), tmp_path / "out", vectors=True, progress=False)
    (path,) = (tmp_path / "out").glob("part-*.parquet")
    schema = pq.read_schema(path)
    assert schema.names == list(COLUMNS)
    assert schema.equals(output_schema())
    assert schema.field("vector").type == pa.list_(pa.float32())
    assert schema.field("cats").type == pa.map_(pa.string(), pa.float32())
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert [c["name"] for c in manifest["schema"]] == list(COLUMNS)


MALFORMED_JSONL = [
    json.dumps({"id": "ok1", "text": "Angela Merkel met Macron ."}).encode(),
    b'{"id": "broken", "text": ',  # line 2: not JSON
    json.dumps({"id": "no-text"}).encode(),  # line 3: no text
    b'{"id": "latin1", "text": "caf\xe9"}',  # line 4: not UTF-8
    b"",  # line 5: blank, not a record
    json.dumps({"id": "ok2", "text": "Paris is big ."}).encode(),
    b'["a list"]',  # line 7: not an object
]


@pytest.fixture(scope="module")
def annotated_with_errors(pipeline_path, tmp_path_factory):
    """An output folder with every side file: 4 good records, 5 malformed."""
    data = tmp_path_factory.mktemp("annotate_malformed") / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.jsonl").write_bytes(b"\n".join(MALFORMED_JSONL) + b"\n")
    (data / "sub" / "b.txt").write_bytes(b"Berlin is a city .\n\xff\xfe bad bytes\nThe film was good .")
    out = data.parent / "out"
    result = annotate(pipeline_path, str(data), out, shard_size=3, vectors=True, progress=False)
    return out, result


def test_annotate_malformed_records_are_reported_and_skipped(annotated_with_errors):
    out, result = annotated_with_errors
    assert result["docs"] == 4 and result["errors"] == 5
    errors = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    found = [(e["file"], e["line"], e["error"][: e["error"].index("]") + 1]) for e in errors]
    assert found == [
        ("a.jsonl", 2, "[E103]"),  # not JSON
        ("a.jsonl", 3, "[E221]"),  # no text
        ("a.jsonl", 4, "[E101]"),  # not UTF-8
        ("a.jsonl", 7, "[E220]"),  # not a JSON object
        ("sub/b.txt", 2, "[E101]"),
    ]
    for error in errors:  # the message names the file and line too
        assert f"] {error['file']}:{error['line']}: " in error["error"]
    assert not list(out.glob("_errors-*"))
    manifest = json.loads((out / "_manifest.json").read_text())
    assert sum(f["docs"] for f in manifest["files"]) == 4
    ids = {r["doc_id"] for r in read_rows(out)}
    assert ids <= {"ok1", "ok2", "sub/b.txt:1", "sub/b.txt:3"}


def _read_pandas(out):
    return len(pandas.read_parquet(out))


def _read_pyarrow_table(out):
    return pq.read_table(out).num_rows


def _read_pyarrow_dataset(out):
    return ds.dataset(out).to_table().num_rows


def _read_duckdb(out):
    duckdb = pytest.importorskip("duckdb")
    return len(duckdb.sql(f"SELECT * FROM read_parquet('{out}/*.parquet')").fetchall())


@pytest.mark.parametrize("count_rows", [_read_pandas, _read_pyarrow_table, _read_pyarrow_dataset, _read_duckdb])
def test_annotate_output_folder_is_one_parquet_data_set(annotated_with_errors, count_rows):
    out, result = annotated_with_errors
    assert (out / "_errors.jsonl").exists() and (out / "_manifest.json").exists()
    assert result["rows"] > 0
    assert count_rows(out) == result["rows"]


def _variants(lines: List[bytes]) -> Dict[str, bytes]:
    return {
        "lf": b"\n".join(lines) + b"\n",
        "crlf": b"\r\n".join(lines) + b"\r\n",
        "bom": BOM + b"\n".join(lines),
        "bom-crlf": BOM + b"\r\n".join(lines) + b"\r\n",
    }


@pytest.mark.parametrize("fmt", ["jsonl", "txt"])
@pytest.mark.parametrize("variant", ["lf", "crlf", "bom", "bom-crlf"])
@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("shard_size", [2, 100])
def test_annotate_reads_bom_crlf_and_gzip(tmp_path, fmt, variant, gzipped, shard_size):
    if fmt == "jsonl":
        lines = [json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=False).encode() for i, t in enumerate(UNICODE)]
        want = [{"doc_id": f"d{i}", "text": t} for i, t in enumerate(UNICODE)]
    else:
        lines = [t.encode() for t in UNICODE]
        want = [{"doc_id": f"in.txt{'.gz' if gzipped else ''}:{i + 1}", "text": t} for i, t in enumerate(UNICODE)]
    data = _variants(lines)[variant]
    path = tmp_path / (f"in.{fmt}.gz" if gzipped else f"in.{fmt}")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    root, files = find_input_files(str(tmp_path))
    shards = plan_shards(root, files, shard_size=shard_size)
    # a gzipped file is one shard; a plain one is cut by byte offsets
    assert len(shards) == (1 if gzipped or shard_size == 100 else 2)
    records, errors = [], []
    for shard in shards:
        got, bad = read_shard(shard)
        records += got
        errors += bad
    assert errors == [] and records == want


@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz"])
def test_annotate_bom_crlf_jsonl_end_to_end(pipeline_path, tmp_path, name):
    lines = [json.dumps({"id": f"d{i}", "text": t}).encode() for i, t in enumerate(TEXTS[:3])]
    data = BOM + b"\r\n".join(lines) + b"\r\n"
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    out = tmp_path / "out"
    result = annotate(pipeline_path, str(tmp_path / name), out, shard_size=2, progress=False)
    assert (result["docs"], result["errors"], result["shards"]) == (3, 0, 1 if name.endswith(".gz") else 2)
    assert not (out / "_errors.jsonl").exists()
    assert_same_rows(read_rows(out), _reference_rows(pipeline_path, TEXTS[:3], ["d0", "d1", "d2"]))


def test_annotate_corrupt_gzip_is_refused_before_loading(tmp_path):
    (tmp_path / "in.jsonl.gz").write_bytes(gzip.compress(b'{"text": "a"}\n' * 50)[:-12])
    root, files = find_input_files(str(tmp_path))
    with pytest.raises(InputError, match=r"\[E104\] .*in\.jsonl\.gz: cannot decompress"):
        plan_shards(root, files, shard_size=10)


def test_annotate_parquet_input(pipeline_path, tmp_path):
    table = pa.table({"body": [TEXTS[0], None, TEXTS[2]], "uid": [10, 11, 12]})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=2)
    out = tmp_path / "out"
    result = annotate(
        pipeline_path, str(tmp_path / "in.parquet"), out, text_field="body", id_field="uid",
        spans_keys=["spanbert_ner"], shard_size=2, progress=False,
    )  # fmt: skip
    assert (result["docs"], result["errors"], result["shards"]) == (2, 1, 2)
    (error,) = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    assert (error["file"], error["line"]) == ("in.parquet", 2)
    assert error["error"].startswith("[E223] in.parquet:2: no text: column 'body'")
    want = _reference_rows(pipeline_path, [TEXTS[0], TEXTS[2]], ["10", "12"], spans_keys=["spanbert_ner"])
    assert_same_rows(read_rows(out), want)


def test_annotate_refuses_non_empty_output(pipeline_path, corpus, tmp_path):
    out = tmp_path / "out"
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n' + corpus.read_text(), encoding="utf8")
    annotate(pipeline_path, str(tmp_path / "bad.jsonl"), out, shard_size=5, progress=False)
    assert len(list(out.glob("part-*"))) == 3 and (out / "_errors.jsonl").exists()
    with pytest.raises(ValueError, match=r"\[E206\] .*is not empty.*--overwrite"):
        annotate(pipeline_path, str(corpus), out, progress=False)
    (out / "notes.txt").write_text("kept")
    annotate(pipeline_path, str(corpus), out, overwrite=True, progress=False)
    # the earlier run's files are gone, _errors.jsonl too; other files are kept
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_FILE, "notes.txt", "part-docs.jsonl-00000.parquet"]
    assert (out / "notes.txt").read_text() == "kept"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"engine": "spark"}, r"\[E207\] .*unknown engine 'spark'"),
        ({"spans_keys": ["nope"]}, r"\[E212\] .*writes the span group.*'nope'.*spanbert, spanbert_ner"),
        ({"workers": 0}, r"\[E208\] .*--workers must be a positive integer, got 0"),
        ({"threads_per_worker": 0}, r"\[E209\] .*--threads-per-worker must be a positive integer"),
        ({"workers": 1, "threads_per_worker": 10_000}, r"\[E210\] .*exceed the .* cores"),
        ({"shard_size": 0}, r"\[E203\] .*shard_size must be a positive integer, got 0"),
    ],
)
def test_annotate_bad_options(pipeline_path, corpus, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        annotate(pipeline_path, str(corpus), tmp_path / "out", progress=False, **kwargs)


@pytest.mark.parametrize(
    "name,match",
    [
        ("in.csv", r"\[E201\] .*cannot read .*in\.csv.*\.jsonl, \.txt, \.parquet, \.jsonl\.gz, \.txt\.gz"),
        ("missing/*.jsonl", r"\[E202\] .*no \.jsonl, .* files at .*missing"),
    ],
)
def test_annotate_bad_input(tmp_path, name, match):
    (tmp_path / "in.csv").write_text("text\n")
    with pytest.raises(ValueError, match=match):
        find_input_files(str(tmp_path / name))


def test_annotate_same_output_name(tmp_path):
    for name in ("a b.txt", "a_b.txt"):
        (tmp_path / name).write_text("Berlin\n")
    root, files = find_input_files(str(tmp_path))
    with pytest.raises(ValueError, match=r"\[E204\] .*'a b\.txt' and 'a_b\.txt' give the same output name"):
        plan_shards(root, files, shard_size=10)


def test_annotate_output_is_a_file(pipeline_path, corpus, tmp_path):
    (tmp_path / "out").write_text("")
    with pytest.raises(ValueError, match=r"\[E205\] .*is a file; pass a folder"):
        annotate(pipeline_path, str(corpus), tmp_path / "out", progress=False)


def test_annotate_entry_point_and_spanbert_group():
    from spacy_spanbert.commands.annotate.cli import annotate_cli
    from spacy_spanbert.commands.app import spanbert_cli

    found = {ep.name: ep for ep in entry_points(group="spacy_cli")}
    assert found["spanbert_annotate"].value == "spacy_spanbert.commands.annotate.cli:annotate_cli"
    assert found["spanbert_annotate"].load() is annotate_cli
    commands = {command.name: command.callback for command in spanbert_cli.registered_commands}
    assert commands["annotate"] is annotate_cli


def test_annotate_command_reports_errors_and_skipped_records(pipeline_path, corpus, tmp_path):
    from spacy.cli._util import app

    import spacy_spanbert.commands.annotate.cli  # noqa: F401  (registers the command)

    (tmp_path / "in.jsonl").write_text('{"id": 1}\n' + corpus.read_text(), encoding="utf8")
    args = ["spanbert", "annotate", pipeline_path, str(tmp_path / "in.jsonl"), str(tmp_path / "out")]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    output = " ".join(done.output.split())
    assert f"Annotated {len(TEXTS)} docs" in output
    assert (
        f"[W200] spacy spanbert annotate: skipped 1 malformed records, listed with their file and line in {tmp_path / 'out' / '_errors.jsonl'}"
        in output
    )
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1
    assert "[E206] spacy spanbert annotate: the output folder" in " ".join(again.output.split())


def test_annotate_cli(pipeline_path, corpus, tmp_path):
    # run outside the repository, so that its build folder does not shadow
    # the installed entry points
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    help_ = subprocess.run(
        [sys.executable, "-m", "spacy", "spanbert", "--help"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert help_.returncode == 0, help_.stderr
    assert "annotate" in help_.stdout
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "spacy", "spanbert", "annotate", pipeline_path, str(corpus), str(out)]
    cmd += ["--spans-key", "spanbert_ner", "--batch-size", "4"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert f"Annotated {len(TEXTS)} docs" in done.stdout
    want = _reference_rows(pipeline_path, TEXTS, [f"d{i}" for i in range(len(TEXTS))], spans_keys=["spanbert_ner"])
    assert_same_rows(read_rows(out), want)
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert again.returncode == 1 and "--overwrite" in again.stdout + again.stderr


# -- Ray -----------------------------------------------------------------------

KILL_CODE = """
import os
import signal

from spacy.language import Language


@Language.factory("annotate_test_kill_once", default_config={"flag": "", "after_docs": 1})
def make_kill_once(nlp, name, flag, after_docs):
    seen = [0]

    def kill_once(doc):
        seen[0] += 1
        if seen[0] >= after_docs:
            try:
                os.remove(flag)  # only the first process to get here dies
            except FileNotFoundError:
                return doc
            os.kill(os.getpid(), signal.SIGKILL)
        return doc

    return kill_once
"""


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


def test_annotate_ray_matches_nlp_pipe_after_killed_worker(ray_cluster, pipeline_path, corpus, tmp_path):
    # One Ray run (actor start-up is the cost): rows equal to in-process
    # nlp.pipe, vectors included, although a worker dies mid-run.
    code = tmp_path / "kill_once.py"
    code.write_text(textwrap.dedent(KILL_CODE))
    spacy.util.import_file("kill_once", str(code))
    flag = tmp_path / "kill.flag"
    flag.write_text("armed")
    nlp = spacy.load(pipeline_path)
    # dies in the middle of its second shard, after writing the first one
    nlp.add_pipe("annotate_test_kill_once", config={"flag": str(flag), "after_docs": 5})
    nlp.to_disk(tmp_path / "killing")
    keys = ["spanbert", "spanbert_ner"]
    result = annotate(
        str(tmp_path / "killing"), str(corpus), tmp_path / "out", engine="ray", workers=2,
        threads_per_worker=1, spans_keys=keys, vectors=True, shard_size=3, batch_size=3,
        code_path=code, progress=False,
    )  # fmt: skip
    assert not flag.exists()  # a worker did die
    assert (result["docs"], result["shards"]) == (len(TEXTS), 4)
    got = read_rows(tmp_path / "out")
    ids = [f"d{i}" for i in range(len(TEXTS))]
    want = _reference_rows(pipeline_path, TEXTS, ids, spans_keys=keys, vectors=True)
    # every doc has candidate spans ("spanbert"): each doc is there, each row once
    assert {r["doc_id"] for r in got} == set(ids)
    assert result["rows"] == len(want)
    assert_same_rows(got, want)


def test_annotate_ray_too_many_threads(ray_cluster, pipeline_path, corpus, tmp_path):
    with pytest.raises(ValueError, match="2 workers x 2 threads need 4 CPUs, but the Ray cluster has 2"):
        annotate(
            pipeline_path, str(corpus), tmp_path / "out", engine="ray", workers=2, threads_per_worker=2,
            progress=False,
        )  # fmt: skip
