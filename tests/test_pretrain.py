"""Tests of `spacy spanbert pretrain`: reading TEXTS, span masking, the SBO
batch, a short run on a tiny random BERT, checkpoints and resuming, errors
and the command line."""

import gzip
import json
import os
import pickle
import random
import subprocess
import sys
from importlib.metadata import entry_points

import numpy
import pytest
import spacy
import torch
from conftest import WORDS
from typer.testing import CliRunner

from spacy_spanbert.commands.pretrain import (
    Masker,
    SpanBertPretrainer,
    load_encoder,
    load_tokenizer,
    loop,
    pack_blocks,
    pretrain,
    read_texts,
    span_length_distribution,
    tokenize_texts,
)
from spacy_spanbert.commands.pretrain.checkpoint import checkpoint_path
from spacy_spanbert.serialize import read_state

# the tiny BERT has no MLM head; one test checks the warning, the others ignore it
pytestmark = pytest.mark.filterwarnings(r"ignore:\[W300\]:UserWarning")


@pytest.fixture(autouse=True)
def one_thread():
    # torch's default threads crawl when other processes share the cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_texts(n: int, seed: int = 0):
    """Sentences of vocabulary words and out-of-vocabulary words (several pieces each)."""
    rng = random.Random(seed)

    def word():
        if rng.random() < 0.6:
            return rng.choice(WORDS)
        return "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(rng.randint(2, 5)))

    return [" ".join(word() for _ in range(rng.randint(5, 30))) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return load_tokenizer(tiny_bert)


@pytest.fixture(scope="module")
def blocks(tokenizer):
    return pack_blocks(tokenize_texts(make_texts(2000), tokenizer), 126)


@pytest.fixture(scope="module")
def span_batches(tokenizer, blocks):
    """Span-masked batches of 32 blocks over ~70,000 pieces, with their blocks."""
    masker = Masker(tokenizer, masking="span")
    rng = numpy.random.default_rng(0)
    return masker, [(blocks[i : i + 32], masker.batch(blocks[i : i + 32], rng)) for i in range(0, len(blocks), 32)]


def spans_of(batch):
    """(row, start, end) of each masked span of a batch, in input positions."""
    spans = set()
    for row, left, right in zip(batch["row"].tolist(), batch["left"].tolist(), batch["right"].tolist()):
        spans.add((row, left + 1, right))
    return sorted(spans)


def test_pretrain_span_length_distribution_mean():
    probs = span_length_distribution(0.2, 10)
    assert probs.sum() == pytest.approx(1.0)
    assert (probs * numpy.arange(1, 11)).sum() == pytest.approx(3.8, abs=0.01)


@pytest.mark.parametrize("masking", ["span", "random"])
def test_pretrain_masked_share(tokenizer, blocks, masking):
    masker = Masker(tokenizer, masking=masking)
    rng = numpy.random.default_rng(1)
    n_pieces = n_masked = 0
    for i in range(0, len(blocks), 32):
        batch = masker.batch(blocks[i : i + 32], rng)
        n_pieces += sum(len(b) for b in blocks[i : i + 32])
        n_masked += len(batch["target"])
    assert n_pieces > 50_000
    assert 0.14 <= n_masked / n_pieces <= 0.16


def test_pretrain_spans_never_split_a_word(span_batches):
    masker, batches = span_batches
    k = len(masker.prefix)
    n_spans = 0
    for chosen, batch in batches:
        for row, start, end in spans_of(batch):
            words = chosen[row].words
            s, e = start - k, end - k
            assert s > 0 and words[s - 1] != words[s]
            assert e < len(words) and words[e - 1] != words[e]
            n_spans += 1
    assert n_spans > 1000


def test_pretrain_mean_span_length_in_words(span_batches):
    masker, batches = span_batches
    k = len(masker.prefix)
    lengths = [
        len(set(chosen[row].words[start - k : end - k].tolist()))
        for chosen, batch in batches
        for row, start, end in spans_of(batch)
    ]
    assert max(lengths) <= 10
    assert numpy.mean(lengths) == pytest.approx(3.8, abs=0.3)


def test_pretrain_80_10_10_per_span(span_batches):
    masker, batches = span_batches
    counts = {"mask": 0, "random": 0, "keep": 0}
    for _, batch in batches:
        original = batch["input_ids"].clone()
        original[batch["row"], batch["position"]] = batch["target"]
        for row, start, end in spans_of(batch):
            seen = batch["input_ids"][row, start:end]
            gold = original[row, start:end]
            is_mask = seen == masker.mask_id
            # one decision per span: all pieces masked or none
            assert bool(is_mask.all()) or not bool(is_mask.any())
            if is_mask.all():
                counts["mask"] += 1
            elif torch.equal(seen, gold):
                counts["keep"] += 1
            else:
                counts["random"] += 1
    total = sum(counts.values())
    assert counts["mask"] / total == pytest.approx(0.8, abs=0.03)
    assert counts["random"] / total == pytest.approx(0.1, abs=0.02)
    assert counts["keep"] / total == pytest.approx(0.1, abs=0.02)


def test_pretrain_boundaries_outside_span_and_on_text(tokenizer, span_batches):
    masker, batches = span_batches
    specials = set(tokenizer.all_special_ids)
    for _, batch in batches:
        rows, left, right, position = batch["row"], batch["left"], batch["right"], batch["position"]
        offset = batch["offset"]
        assert bool((left < position).all()) and bool((position < right).all())
        assert torch.equal(position - offset - 1, left)
        for column in (left, right):
            assert bool(batch["attention_mask"][rows, column].all())
            ids = batch["input_ids"][rows, column].tolist()
            assert not specials.intersection(ids)
        masked = {(r, p) for r, p in zip(rows.tolist(), position.tolist())}
        assert not masked.intersection(zip(rows.tolist(), left.tolist()))
        assert not masked.intersection(zip(rows.tolist(), right.tolist()))


def test_pretrain_sbo_head_reads_boundaries_and_tied_decoder(tiny_bert, tokenizer, blocks):
    model, fresh = load_encoder(tiny_bert)
    assert fresh  # the tiny BERT is saved without an MLM head
    learner = SpanBertPretrainer(model, sbo_weight=1.0, max_offset=128)
    width, vocab = model.config.hidden_size, model.config.vocab_size
    assert learner.sbo.layers[0].in_features == 3 * width
    kinds = [type(layer).__name__ for layer in learner.sbo.layers]
    assert kinds == ["Linear", "GELU", "LayerNorm", "Linear", "GELU", "LayerNorm"]
    assert not [p for p in learner.sbo.parameters() if p.shape == (vocab, width)]
    batch = Masker(tokenizer).batch(blocks[:4], numpy.random.default_rng(0))
    loss, mlm_loss, sbo_loss = learner(batch)
    assert float(loss.detach()) == pytest.approx(float(mlm_loss) + float(sbo_loss), rel=1e-5)
    loss.backward()
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0
    assert learner.sbo.positions.weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("\n".join(make_texts(240, seed=3)) + "\n", encoding="utf8")
    return path


RUN = {"seq_len": 64, "batch_size": 8, "lr": 1e-3, "progress": False}


@pytest.fixture(scope="module")
def trained(tiny_bert, texts_file, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("pretrained") / "out"
    meta = pretrain(texts_file, out, model=tiny_bert, max_steps=30, **RUN)
    return out, meta


def test_pretrain_lowers_heldout_loss(trained):
    out, meta = trained
    assert meta["heldout_loss_after"] < meta["heldout_loss_before"] - 0.2
    assert meta["fresh_mlm_head"] is True
    assert meta["tokens_seen"] > 30 * 8 * 40
    saved = json.loads((out / "pretrain_meta.json").read_text())
    assert saved["settings"]["masking"] == "span" and saved["settings"]["sbo_weight"] == 1.0
    assert {"transformers", "torch", "spacy"} <= set(saved["versions"])


def test_pretrain_output_loads_as_spacy_transformer(trained):
    from transformers import AutoModel

    out, _ = trained
    assert type(AutoModel.from_pretrained(str(out))).__name__ == "BertModel"
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": str(out)}})
    nlp.initialize()
    doc = nlp("Angela Merkel met Emmanuel Macron in Berlin .")
    assert doc._.trf_data.tensors[0].shape[-1] == 32


def test_pretrain_random_masking_has_no_sbo(tiny_bert, texts_file, tmp_path):
    meta = pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=2, masking="random", **RUN)
    assert meta["settings"]["sbo_weight"] == 0.0


def test_pretrain_warns_once_about_a_fresh_mlm_head(tiny_bert, texts_file, tmp_path):
    with pytest.warns(UserWarning, match=r"\[W300\] .* has no masked-LM head") as record:
        pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=1, masking="random", **RUN)
    assert len([w for w in record if "[W300]" in str(w.message)]) == 1


def test_pretrain_resume_matches_an_uninterrupted_run(tiny_bert, texts_file, tmp_path, monkeypatch):
    settings = dict(model=tiny_bert, max_steps=6, save_every=3, **RUN)
    whole = pretrain(texts_file, tmp_path / "whole", **settings)

    write, step = loop.write_checkpoint, loop.train_step

    def interrupted(*args, **kwargs):
        write(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "write_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain(texts_file, tmp_path / "resumed", **settings)
    config, _ = read_state(checkpoint_path(tmp_path / "resumed"), what="the checkpoint")
    assert config["progress"]["step"] == 3
    monkeypatch.setattr(loop, "write_checkpoint", write)
    steps = []

    def counted(run, i):
        steps.append(i)
        return step(run, i)

    monkeypatch.setattr(loop, "train_step", counted)
    resumed = pretrain(texts_file, tmp_path / "resumed", **settings)
    assert steps == [3, 4, 5]  # the run went on from its checkpoint
    assert resumed["tokens_seen"] == whole["tokens_seen"]
    assert resumed["heldout_loss_before"] == whole["heldout_loss_before"]
    assert resumed["heldout_loss_after"] == whole["heldout_loss_after"]
    from safetensors.torch import load_file

    a = load_file(tmp_path / "whole" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_pretrain_resume_with_other_settings(tiny_bert, texts_file, tmp_path):
    pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=2, **RUN)
    with pytest.raises(ValueError, match=r"\[E318\] .*other settings.*masking"):
        pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=2, masking="random", **RUN)


def test_pretrain_checkpoint_is_safetensors_and_msgpack(tiny_bert, texts_file, tmp_path):
    pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=2, **RUN)
    config, tensors = read_state(checkpoint_path(tmp_path / "out"), what="the checkpoint")
    assert config["progress"]["step"] == 2 and config["settings"]["max_steps"] == 2
    # the tied MLM decoder is stored once, as the input embeddings
    assert config["tied"]["mlm_model.cls.predictions.decoder.weight"] == (
        "mlm_model.bert.embeddings.word_embeddings.weight"
    )
    assert "model.mlm_model.bert.embeddings.word_embeddings.weight" in tensors
    assert {"exp_avg", "exp_avg_sq", "step"} == {key.split(".")[2] for key in tensors if key.startswith("optimizer.")}
    assert tensors["rng.torch"].dtype == torch.uint8


def test_pretrain_resume_never_unpickles(tiny_bert, texts_file, tmp_path, monkeypatch, capsys):
    first = pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=2, **RUN)

    def forbidden(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    capsys.readouterr()
    again = pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=2, **RUN)
    assert "resuming from" in capsys.readouterr().out
    assert again["heldout_loss_after"] == first["heldout_loss_after"]


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pretrain_rejects_a_pickled_checkpoint(tiny_bert, texts_file, tmp_path, writer):
    path = checkpoint_path(tmp_path / "out")
    path.parent.mkdir(parents=True)
    payload = {"step": 1, "model": {"weight": torch.zeros(2)}}
    with path.open("wb") as file_:
        torch.save(payload, file_) if writer == "torch.save" else pickle.dump(payload, file_)
    with pytest.raises(
        ValueError, match=r"\[E319\] .*cannot resume from .*state\.msgpack: .*not in the expected format"
    ):
        pretrain(texts_file, tmp_path / "out", model=tiny_bert, max_steps=2, **RUN)


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("empty.txt", b"\n  \n", r"empty\.txt holds no text"),
        ("latin1.txt", "first line\ncaf\u00e9\n".encode("latin-1"), r"latin1\.txt:2: cannot decode byte"),
        ("bad.jsonl", b'{"text": "a b c"}\n{"body": "a b c"}\n', r"bad\.jsonl:2: no text"),
        ("list.jsonl", b'["a b c"]\n', r"list\.jsonl:1: no text"),
        ("broken.jsonl", b'{"text": "a b c"}\n{"text": \n', r"broken\.jsonl:2: not JSON"),
        ("broken.txt.gz", b"not a gzip stream\n", r"broken\.txt\.gz: cannot decompress"),
        ("broken.spacy", b"not a DocBin", r"cannot read .*broken\.spacy as a spaCy DocBin"),
        ("notes.csv", b"a,b\n", r"must end in \.txt, \.jsonl, \.spacy"),
        ("notes.csv.gz", gzip.compress(b"a,b\n"), r"must end in \.txt, \.jsonl, \.spacy"),
    ],
)
def test_pretrain_unreadable_texts(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        list(read_texts(path))


@pytest.mark.parametrize(
    "name,content,lines",
    [
        ("bom_crlf.txt", b"\xef\xbb\xbfone text\r\n\r\ntwo text\r\n", [1, 3]),
        ("bom_crlf.jsonl", b'\xef\xbb\xbf{"text": "one text"}\r\n{"text": "two text"}\r\n', [1, 2]),
        ("gzipped.txt.gz", gzip.compress(b"one text\ntwo text\n"), [1, 2]),
        ("gzipped.jsonl.gz", gzip.compress(b'\xef\xbb\xbf{"text": "one text"}\r\n{"text": "two text"}\r\n'), [1, 2]),
    ],
)
def test_pretrain_reads_bom_crlf_and_gzip(tmp_path, name, content, lines):
    path = tmp_path / name
    path.write_bytes(content)
    found = list(read_texts(path))
    assert [text for text, _ in found] == ["one text", "two text"]
    assert [where for _, where in found] == [f"{path}:{line}" for line in lines]


def test_pretrain_reads_folders_of_every_format(tmp_path):
    from spacy.tokens import DocBin

    (tmp_path / "a.txt").write_text("one text\n\ntwo text\n", encoding="utf8")
    (tmp_path / "b.jsonl").write_text('{"text": "three"}\n', encoding="utf8")
    nlp = spacy.blank("en")
    DocBin(docs=[nlp("four text")]).to_disk(tmp_path / "c.spacy")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.txt.gz").write_bytes(gzip.compress(b"five\n"))
    (tmp_path / "sub" / "e.jsonl.gz").write_bytes(gzip.compress(b'{"text": "six"}\n'))
    (tmp_path / "sub" / "notes.md").write_text("not a text of TEXTS\n", encoding="utf8")
    found = list(read_texts(tmp_path))
    assert [text for text, _ in found] == ["one text", "two text", "three", "four text", "five", "six"]
    assert found[1][1].endswith("a.txt:3")


def test_pretrain_runs_on_a_bom_crlf_jsonl(tiny_bert, tmp_path):
    path = tmp_path / "texts.jsonl"
    lines = [json.dumps({"text": text}) for text in make_texts(240, seed=3)]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf8") + b"\r\n")
    meta = pretrain(path, tmp_path / "out", model=tiny_bert, max_steps=1, masking="random", **RUN)
    assert meta["texts"]["train"] + meta["texts"]["heldout"] == 240


def test_pretrain_too_few_texts(tiny_bert, tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("the city met the president\n", encoding="utf8")
    with pytest.raises(ValueError, match="1 text.*too few to hold out"):
        pretrain(path, tmp_path / "out", model=tiny_bert, max_steps=1, **RUN)


def test_pretrain_encoder_without_word_boundaries(tiny_bert, tmp_path):
    import shutil

    from tokenizers import Tokenizer, pre_tokenizers

    folder = tmp_path / "no_words"
    shutil.copytree(tiny_bert, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([])
    tok.save(str(folder / "tokenizer.json"))
    with pytest.raises(ValueError, match="no usable word boundaries"):
        load_tokenizer(str(folder))


@pytest.mark.parametrize(
    "options,match",
    [
        ({"masking": "whole"}, r"\[E309\] .*--masking 'whole'"),
        ({"max_steps": 0}, r"\[E001\] spanbert pretrain: --max-steps must be a positive integer, got 0"),
        ({"warmup_steps": -1}, r"--warmup-steps must be a non-negative integer"),
        ({"lr": 0.0}, r"\[E310\] .*--lr must be positive"),
        ({"seq_len": 4}, r"\[E311\] .*--seq-len 4: expected 5 to 512"),
        ({"heldout_share": 1.5}, r"\[E312\] .*--heldout-share 1\.5"),
    ],
)
def test_pretrain_bad_options(tiny_bert, texts_file, tmp_path, options, match):
    with pytest.raises(ValueError, match=match):
        pretrain(texts_file, tmp_path / "out", model=tiny_bert, **{"max_steps": 1, **RUN, **options})
    assert not (tmp_path / "out").exists()


def test_pretrain_entry_point():
    found = {ep.name: ep.value for ep in entry_points(group="spacy_cli")}
    assert found.get("spanbert_pretrain") == "spacy_spanbert.commands.pretrain.cli:pretrain_cli"


def test_pretrain_listed_in_spanbert_group():
    from spacy.cli._util import app

    from spacy_spanbert.commands.app import spanbert_cli
    from spacy_spanbert.commands.pretrain.cli import pretrain_cli

    assert any(group.typer_instance is spanbert_cli for group in app.registered_groups)
    commands = {command.name: command.callback for command in spanbert_cli.registered_commands}
    assert commands["pretrain"] is pretrain_cli


def test_pretrain_command_reports_errors(tiny_bert, tmp_path):
    from spacy.cli._util import app

    import spacy_spanbert.commands.pretrain.cli  # noqa: F401  (registers the command)

    missing = tmp_path / "missing.txt"
    result = CliRunner().invoke(
        app, ["spanbert", "pretrain", str(missing), str(tmp_path / "out"), "--model", tiny_bert]
    )
    assert result.exit_code == 1
    assert f"[E300] spanbert pretrain: TEXTS {missing} does not exist" in " ".join(result.output.split())


def test_pretrain_command_line(tiny_bert, texts_file, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "spanbert",
            "pretrain",
            str(texts_file),
            str(out),
            "--model",
            tiny_bert,
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--seq-len",
            "32",
            "--masking",
            "random",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    meta = json.loads((out / "pretrain_meta.json").read_text())
    assert meta["steps"] == 2 and meta["settings"]["masking"] == "random"
    assert (out / "tokenizer.json").exists() and (out / "config.json").exists()
