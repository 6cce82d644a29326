"""Convert only the data set one config trains on, after checking that its
raw files are there (`spacy project run all` calls this).

    python scripts/convert_task.py CONFIG DATA_DIR CORPUS_DIR

CONFIG is a config name of configs/ (ner, nested_ner, textcat,
textcat_multilabel, qa, rel, coref); DATA_DIR has the layout of the project's assets.
Writes CORPUS_DIR/<train>.spacy and CORPUS_DIR/<dev>.spacy with the names
project.yml's vars use by default for that config.
"""

import sys
from pathlib import Path

from spacy_spanbert.commands.convert import main as convert

# config -> [(converter arguments with {data} and {corpus}), ...]
TASKS = {
    "ner": [
        ["conll", "{data}/wnut17/train.conll", "{corpus}/wnut17_train.spacy"],
        ["conll", "{data}/wnut17/dev.conll", "{corpus}/wnut17_dev.spacy"],
    ],
    "nested_ner": [
        ["litbank", "{data}/litbank/train", "{corpus}/litbank_train.spacy", "--n-sents", "8"],
        ["litbank", "{data}/litbank/dev", "{corpus}/litbank_dev.spacy", "--n-sents", "8"],
    ],
    "textcat": [
        [
            "trec",
            "{data}/trec/train_5500.label",
            "{corpus}/trec_train.spacy",
            "--dev-output",
            "{corpus}/trec_dev.spacy",
            "--dev-last",
            "500",
        ],
    ],
    "textcat_multilabel": [
        [
            "goemotions",
            "{data}/goemotions/train.tsv",
            "{corpus}/goemotions_train.spacy",
            "--labels",
            "{data}/goemotions/labels.txt",
        ],
        [
            "goemotions",
            "{data}/goemotions/dev.tsv",
            "{corpus}/goemotions_dev.spacy",
            "--labels",
            "{data}/goemotions/labels.txt",
        ],
    ],
    "qa": [
        ["squad", "{data}/squad2/train.json", "{corpus}/squad2_train.spacy"],
        ["squad", "{data}/squad2/dev.json", "{corpus}/squad2_dev.spacy"],
    ],
    "rel": [
        ["spert", "{data}/conll04/train.json", "{corpus}/conll04_train.spacy"],
        ["spert", "{data}/conll04/dev.json", "{corpus}/conll04_dev.spacy"],
    ],
    "coref": [
        ["conll2012", "{data}/litbank_coref/train", "{corpus}/litcoref_train.spacy"],
        ["conll2012", "{data}/litbank_coref/dev", "{corpus}/litcoref_dev.spacy"],
    ],
}


def main(config: str, data: str, corpus: str) -> int:
    if config not in TASKS:
        print(
            f"error: no data set is known for config '{config}'; choose one of {sorted(TASKS)}, "
            f"or convert your own data with python -m spacy_spanbert.convert.",
            file=sys.stderr,
        )
        return 1
    jobs = [[arg.format(data=data, corpus=corpus) for arg in job] for job in TASKS[config]]
    missing = [job[1] for job in jobs if not Path(job[1]).exists()]
    if missing:
        print(
            f"error: the raw data for '{config}' is missing: {', '.join(missing)}. Fetch it with "
            f"`spacy project assets` (needs network; for LitBank then `spacy project run split-litbank`), "
            f"or point vars.data at a folder with the same layout, e.g. "
            f"`spacy project run all . --vars.data ../shared/data`.",
            file=sys.stderr,
        )
        return 1
    Path(corpus).mkdir(parents=True, exist_ok=True)
    for job in jobs:
        status = convert(job)
        if status:
            return status
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(*sys.argv[1:]))
