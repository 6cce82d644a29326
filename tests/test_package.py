"""`spacy package` on a trained pipeline gives a wheel that requires
spacy-spanbert and loads with `spacy.load` in a fresh process that never
imports the plugin itself (the factories come from entry points)."""

import json
import subprocess
import sys
import zipfile

import pytest
from conftest import make_nlp
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

TEXTS = ["angela merkel met emmanuel macron in berlin .", "apple is a company in new york ."]
ENTS = [[(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")], [(0, 1, "ORG"), (5, 7, "LOC")]]
CATS = [{"POLITICS": 1.0, "BUSINESS": 0.0}, {"POLITICS": 0.0, "BUSINESS": 1.0}]

LOAD_SCRIPT = """
import json, sys
import spacy
assert "spacy_spanbert" not in sys.modules
nlp = spacy.load("en_tiny_spanbert")
docs = list(nlp.pipe(json.loads(sys.argv[1])))
print(json.dumps({
    "pipe_names": nlp.pipe_names,
    "ents": [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs],
    "cats": [doc.cats for doc in docs],
    "n_spans": [len(doc.spans["spanbert"]) for doc in docs],
}))
"""


@pytest.fixture(scope="module")
def trained_pipeline(tiny_bert, tmp_path_factory):
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_ner")
    nlp.add_pipe("spanbert_textcat", name="textcat")
    examples = []
    for text, ents, cats in zip(TEXTS, ENTS, CATS):
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, s, e, label=label) for s, e, label in ents]
        ref.cats = cats
        examples.append(Example(nlp.make_doc(text), ref))
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.001)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    path = tmp_path_factory.mktemp("pipeline") / "model"
    nlp.meta["name"] = "tiny_spanbert"
    nlp.meta["version"] = "0.0.1"
    nlp.to_disk(path)
    return nlp, path


def test_spacy_package_wheel_requires_plugin_and_loads_in_fresh_process(trained_pipeline, tmp_path):
    nlp, path = trained_pipeline
    out = tmp_path / "packages"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(path), str(out), "--build", "wheel", "--force"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("*/dist/*.whl"))
    assert len(wheels) == 1, result.stdout
    with zipfile.ZipFile(wheels[0]) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [line for line in zf.read(metadata).decode().splitlines() if line.startswith("Requires-Dist")]
    assert any("spacy-spanbert" in line for line in requires), requires
    assert any("spacy-transformers" in line for line in requires), requires

    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheels[0]),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {"PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": ""}
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, json.dumps(TEXTS)], capture_output=True, text=True, env=env
    )
    assert loaded.returncode == 0, loaded.stderr
    got = json.loads(loaded.stdout.strip().splitlines()[-1])
    docs = list(nlp.pipe(TEXTS))
    assert got["pipe_names"] == nlp.pipe_names
    assert got["ents"] == [[[e.start, e.end, e.label_] for e in doc.ents] for doc in docs]
    assert got["n_spans"] == [len(doc.spans["spanbert"]) for doc in docs]
    for cats, doc in zip(got["cats"], docs):
        assert cats == pytest.approx(doc.cats, abs=1e-5)
