"""`python -m spacy_spanbert.convert FORMAT INPUT OUTPUT [options]`: the
converter's argparse entry. The converter is `spacy_spanbert.commands.convert`
(also `spacy spanbert convert`)."""

import sys

from .commands.convert import main

if __name__ == "__main__":
    sys.exit(main())
