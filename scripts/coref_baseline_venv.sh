#!/usr/bin/env bash
# Build the virtualenv of the `spacy` system of `benchmarks/accuracy.py coref`:
# spacy-experimental 0.6.4's experimental_coref + experimental_span_resolver,
# which need spaCy 3.7 (spacy-spanbert needs 3.8, so they cannot share a venv).
#
#   bash scripts/coref_baseline_venv.sh [DIR]    # DIR: default .venv-coref-baseline at the repo root
#   python benchmarks/accuracy.py coref ... [--baseline-python DIR/bin/python]
#
# The same torch as the project's venv, the CPU build first (as .ci/run does:
# an unpinned torch pulls a CUDA build), then the versions that resolved
# together, pinned. click: spaCy 3.7's CLI imports it, and the typer that
# resolves today no longer brings it (`import spacy` fails without it). scipy is for the project's coreference scorer, which
# benchmarks/coref_baseline.py loads from spacy_spanbert/coref/scoring.py to
# choose checkpoints by the same score as spacy-spanbert's (spacy_spanbert
# itself is not installed here). PYTHON (default python3.11) picks the
# interpreter. About 1.5 GB.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${1:-$REPO/.venv-coref-baseline}"
PYTHON="${PYTHON:-python3.11}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

"$PYTHON" -m venv "$DIR"
"$DIR/bin/pip" install -q torch==2.13.0
"$DIR/bin/pip" install -q \
    spacy==3.7.5 \
    spacy-transformers==1.3.9 \
    spacy-experimental==0.6.4 \
    thinc==8.2.5 \
    transformers==4.49.0 \
    tokenizers==0.21.4 \
    numpy==1.26.4 \
    scipy==1.17.1 \
    click==8.1.8
# a check: the components load and the versions are the pinned ones
"$DIR/bin/python" -c "import spacy; [spacy.blank('en').add_pipe(n) for n in ('experimental_coref', 'experimental_span_resolver')]"
"$DIR/bin/python" "$REPO/benchmarks/coref_baseline.py" versions
echo "built $DIR: python benchmarks/accuracy.py coref ... --baseline-python $DIR/bin/python"
