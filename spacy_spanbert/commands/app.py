"""`spacy spanbert ...`: the plugin's commands under spaCy's own CLI.

spaCy imports every `spacy_cli` entry point before it parses the command
line; each command shell (`convert`, `annotate`, `pretrain`) registers itself
on `spanbert_cli`, and this module adds that group to spaCy's `app`.
"""

import typer
from spacy.cli._util import app

spanbert_cli = typer.Typer(
    name="spanbert",
    help="spacy-spanbert commands: corpus conversion, corpus annotation, span-masking pretraining, CPU-optimized pipelines and evidence fitting.",
    no_args_is_help=True,
)
app.add_typer(spanbert_cli)
