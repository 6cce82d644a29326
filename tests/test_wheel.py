"""The plugin's wheel on its own: built from the repository, installed in a
fresh virtualenv (dependencies from the package index, torch's CPU build
first), it serves what an installed user calls without the repository:
`python -m spacy_spanbert.convert` and `spacy spanbert ...`. Slow: it
installs spaCy, spacy-transformers and torch."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(args, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def test_wheel_installs_in_a_fresh_venv_and_serves_its_commands(tmp_path):
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(tmp_path / "dist"), str(ROOT)])
    wheel = next((tmp_path / "dist").glob("spacy_spanbert-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run(pip + ["torch==2.13.0"])
    _run(pip + [str(wheel)])
    python = str(venv / "bin" / "python")
    conll = tmp_path / "tiny.conll"
    conll.write_text("Angela\tB-person\nMerkel\tI-person\nspoke\tO\n\n", encoding="utf8")
    # from another folder, so nothing of the repository is importable
    out = _run([python, "-m", "spacy_spanbert.convert", "conll", str(conll), str(tmp_path / "tiny.spacy")], cwd=tmp_path)
    assert "Wrote 1 doc (3 tokens)" in out
    help_text = _run([python, "-m", "spacy", "spanbert", "--help"], cwd=tmp_path)
    assert "annotate" in help_text and "pretrain" in help_text
