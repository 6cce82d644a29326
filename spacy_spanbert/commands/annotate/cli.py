"""`spacy spanbert annotate MODEL INPUT OUTPUT_DIR`: the typer shell over
`annotate` (registered on `spanbert_cli`, and as the `spanbert_annotate`
spacy_cli entry point)."""

from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ...errors import Warnings
from ..app import spanbert_cli
from .run import annotate
from .writer import ERRORS_FILE


@spanbert_cli.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Trained pipeline: folder or package name"),
    input_path: str = typer.Argument(..., help="A .jsonl, .txt or .parquet file, a folder, or a quoted glob of them"),
    output_dir: Path = typer.Argument(..., help="Output folder for the Parquet files (must be empty)"),
    engine: str = typer.Option("local", "--engine", "-e", help="local (nlp.pipe) or ray (Ray Data)"),
    workers: int = typer.Option(1, "--workers", "-w", help="Processes (local) or actors (ray)"),
    threads_per_worker: Optional[int] = typer.Option(
        None, "--threads-per-worker", help="Torch threads per worker (workers x threads <= cores)"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Docs per nlp.pipe batch"),
    vectors: bool = typer.Option(False, "--vectors", help="Write span vectors (float32)"),
    spans_keys: Optional[List[str]] = typer.Option(
        None, "--spans-key", help="Span group to write besides doc.ents (repeatable)"
    ),
    text_field: str = typer.Option("text", "--text-field", help="Field (column) with the text"),
    id_field: str = typer.Option("id", "--id-field", help="Field (column) with the doc id"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU (ray: >= 0 gives each actor a GPU)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join, e.g. auto (ray engine)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the files of an earlier run in OUTPUT_DIR"),
):
    """Annotate a corpus with a trained pipeline into a Parquet data set: one
    row per entity and per span of the chosen span groups, one per doc for
    doc.cats. Malformed records go to OUTPUT_DIR/_errors.jsonl with their file
    and line."""
    try:
        result = annotate(
            model,
            input_path,
            output_dir,
            engine=engine,
            workers=workers,
            threads_per_worker=threads_per_worker,
            batch_size=batch_size,
            vectors=vectors,
            spans_keys=spans_keys or (),
            text_field=text_field,
            id_field=id_field,
            gpu_id=gpu_id,
            address=address,
            overwrite=overwrite,
        )
    except (ValueError, ImportError) as err:
        msg.fail(str(err), exits=1)
    msg.good(
        f"Annotated {result['docs']} docs into {result['rows']} rows "
        f"({result['shards']} files) in {result['seconds']:.1f}s: {output_dir}"
    )
    if result["errors"]:
        msg.warn(Warnings.W200.format(n=result["errors"], path=Path(output_dir) / ERRORS_FILE))
