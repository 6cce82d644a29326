"""`spacy spanbert optimize`: an inference-only copy of a trained pipeline
whose transformer runs as torch int8 or on ONNX Runtime. The engine is
importable and runs without typer:

    from spacy_spanbert.commands.optimize import optimize_pipeline
    record = optimize_pipeline("training/model-best", "model-int8", runtime="onnx", quantize="int8")

`engine` writes the pipeline, `compare` measures how closely it follows the
original, and `cli` is the command's typer shell.
"""

from .compare import compare_pipelines
from .engine import META_KEY, optimize_pipeline

__all__ = ["META_KEY", "compare_pipelines", "optimize_pipeline"]
