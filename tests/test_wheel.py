"""Wheels in a fresh virtualenv (dependencies from the package index, torch's
CPU build first), with nothing of the repository importable:

- the plugin's own wheel serves what an installed user calls:
  `python -m spacy_spanbert.convert` and `spacy spanbert ...`;
- a pipeline packaged by the project's `package` command (its commands are
  read from project.yml) installs with the README's one command,
  `pip install packages/*.whl`, and loads by name.

Slow: it installs spaCy, spacy-transformers and torch."""

import subprocess
import sys
from pathlib import Path

import pytest
import srsly
from conftest import make_nlp

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(args, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "torch==2.13.0"])
    return venv


def test_plugin_wheel_installs_in_a_fresh_venv_and_serves_its_commands(tmp_path, fresh_venv):
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(ROOT),
        ]
    )
    wheel = next((tmp_path / "dist").glob("spacy_spanbert-*.whl"))
    python = str(fresh_venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", str(wheel)])
    conll = tmp_path / "tiny.conll"
    conll.write_text("Angela\tB-person\nMerkel\tI-person\nspoke\tO\n\n", encoding="utf8")
    # from another folder, so nothing of the repository is importable
    out = _run(
        [python, "-m", "spacy_spanbert.convert", "conll", str(conll), str(tmp_path / "tiny.spacy")], cwd=tmp_path
    )
    assert "Wrote 1 doc (3 tokens)" in out
    help_text = _run([python, "-m", "spacy", "spanbert", "--help"], cwd=tmp_path)
    assert "annotate" in help_text and "pretrain" in help_text


def test_packaged_pipeline_installs_with_one_command_and_loads(tiny_bert, tmp_path, fresh_venv):
    nlp = make_nlp(tiny_bert)
    nlp.add_pipe("spanbert_ner", config={"labels": ["PER", "LOC"]})
    nlp.initialize()
    model = tmp_path / "training" / "ner" / "model-best"
    model.parent.mkdir(parents=True)
    nlp.to_disk(model)
    (tmp_path / "packages").mkdir()  # one of the project's `directories`
    # The project's package commands, with its variables filled in.
    project = srsly.read_yaml(ROOT / "project.yml")
    command = next(c for c in project["commands"] if c["name"] == "package")
    variables = dict(project["vars"], config="ner")
    for script in command["script"]:
        for key, value in variables.items():
            script = script.replace(f"${{vars.{key}}}", str(value))
        assert "${" not in script, script
        if script.endswith(" ."):  # the plugin's own wheel, built from the repository
            script = script[:-1] + str(ROOT)
        assert script.startswith("python ")  # as `spacy project run` does: this interpreter
        _run(["bash", "-c", sys.executable + script[len("python") :]], cwd=tmp_path)
    wheels = sorted(p.name for p in (tmp_path / "packages").glob("*.whl"))
    assert len(wheels) == 2 and any(w.startswith("spacy_spanbert-") for w in wheels), wheels
    python = str(fresh_venv / "bin" / "python")
    # the README's command: pip install packages/*.whl
    _run(["bash", "-c", f"{python} -m pip install -q packages/*.whl"], cwd=tmp_path)
    name = f"en_{variables['package_name']}"
    code = (
        f"import spacy; nlp = spacy.load({name!r}); doc = nlp('Angela Merkel met Emmanuel Macron in Berlin.');"
        "print(nlp.pipe_names, len(doc.spans['spanbert']), doc.spans['spanbert'].attrs['vectors'].shape[0])"
    )
    out = _run([python, "-c", code], cwd=tmp_path)
    assert "'transformer', 'spanbert', 'spanbert_ner'" in out
    n_spans, n_vectors = out.split("]")[-1].split()
    assert int(n_spans) == int(n_vectors) > 0
