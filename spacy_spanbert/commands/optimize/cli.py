"""`spacy spanbert optimize MODEL OUTPUT`: the typer shell over
`engine.optimize_pipeline`.

    python -m spacy spanbert optimize MODEL OUTPUT [--runtime torch|onnx]
        [--quantize int8|none] [--calibration DATA.spacy]
"""

from pathlib import Path
from typing import Optional

from spacy.cli._util import Arg, Opt
from wasabi import msg

from ..app import spanbert_cli
from .engine import optimize_pipeline


@spanbert_cli.command("optimize")
def optimize_cli(
    # fmt: off
    model: Path = Arg(..., help="Trained pipeline folder", exists=True),
    output: Path = Arg(..., help="Folder to write the optimized pipeline to"),
    runtime: str = Opt("torch", "--runtime", "-r", help="torch, or onnx (pip install spacy-spanbert[onnx])"),
    quantize: str = Opt("int8", "--quantize", "-q", help="int8 (dynamic int8 linear layers) or none"),
    calibration: Optional[Path] = Opt(
        None,
        "--calibration",
        "-c",
        help="A .spacy file to compare the optimized pipeline with the original on (stored in meta.json)",
    ),
    # fmt: on
) -> None:
    """Write an inference-only copy of a trained pipeline whose transformer
    runs as torch int8 or on ONNX Runtime; `spacy.load(OUTPUT)` loads it."""
    try:
        record = optimize_pipeline(model, output, runtime=runtime, quantize=quantize, calibration=calibration)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    msg.good(f"Saved the optimized pipeline (runtime {runtime}, quantize {quantize}) to {output}")
    report = record.get("calibration")
    if report is not None:
        msg.table(
            [(key, value) for key, value in report.items() if key != "path"],
            header=("calibration", str(report["path"])),
        )
