"""The `spacy spanbert` commands (convert, annotate, pretrain, optimize, fit-evidence), each a thin
typer shell in `<command>/cli.py` over an engine that is importable and
tested without typer, and the text reader they share."""
