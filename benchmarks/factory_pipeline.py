"""Write a pipeline at the factory defaults: `transformer` (the given
encoder, strided spans of 128 with stride 96, as in configs/ner.cfg) ->
`spanbert` -> `spanbert_ner`, initialised on the first N training docs and
never updated. It is what `nlp.add_pipe("spanbert")` and
`nlp.add_pipe("spanbert_ner")` give, for timing the span components at
their defaults with `component_cost.py`.

    python benchmarks/factory_pipeline.py --encoder PATH --train TRAIN.spacy --output DIR [--n-docs 50]
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True, help="a Hugging Face encoder folder (e.g. the MiniLM package's)")
    parser.add_argument("--train", type=Path, required=True, help="gold docs (.spacy) to initialise on")
    parser.add_argument("--output", type=Path, required=True, help="the pipeline folder to write")
    parser.add_argument("--n-docs", type=int, default=50, help="initialise on the first N docs")
    args = parser.parse_args(argv)
    if args.n_docs < 1:
        parser.error("--n-docs must be positive")
    if not args.train.exists():
        parser.error(f"--train: {args.train} does not exist")
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    import spacy_spanbert  # noqa: F401  (registers the components)

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": str(args.encoder),
                "tokenizer_config": {"use_fast": True},
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
            }
        },
    )
    nlp.add_pipe("spanbert")
    nlp.add_pipe("spanbert_ner")
    gold = list(DocBin().from_disk(args.train).get_docs(nlp.vocab))[: args.n_docs]
    nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc) for doc in gold])
    nlp.to_disk(args.output)
    print(f"wrote {args.output}: {nlp.pipe_names}, initialised on {len(gold)} docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
