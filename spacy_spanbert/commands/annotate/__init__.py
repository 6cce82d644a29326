"""`spacy spanbert annotate`: run a trained pipeline over a corpus into a
Parquet data set.

- `rows.py`: the output schema and the engine-free `rows(doc) -> records`;
- `readers.py`: input files, shards, and reading a shard's records;
- `writer.py`: the output folder (data files written atomically, `_*` side
  files);
- `engines.py`: the local (`nlp.pipe`) and Ray Data engines, which only move
  records;
- `run.py`: `annotate`, which checks the options and runs an engine;
- `cli.py`: the typer shell.
"""

from .readers import INPUT_SUFFIXES, find_input_files, plan_shards, read_shard
from .rows import CATS_KEY, COLUMNS, ENTS_KEY, OUTPUT_COLUMNS, annotate_batch, output_schema, rows
from .run import ENGINES, annotate
from .writer import ERRORS_FILE, MANIFEST_FILE, PART_PREFIX, read_rows, rows_to_table, write_shard

__all__ = [
    "CATS_KEY",
    "COLUMNS",
    "ENGINES",
    "ENTS_KEY",
    "ERRORS_FILE",
    "INPUT_SUFFIXES",
    "MANIFEST_FILE",
    "OUTPUT_COLUMNS",
    "PART_PREFIX",
    "annotate",
    "annotate_batch",
    "find_input_files",
    "output_schema",
    "plan_shards",
    "read_rows",
    "read_shard",
    "rows",
    "rows_to_table",
    "write_shard",
]
