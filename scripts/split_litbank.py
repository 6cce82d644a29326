"""Split LitBank's 100 entity files by sorted file name, as the shared data
does: the first 80 to train/, the next 10 to dev/ (the last 10 are left out).

    python scripts/split_litbank.py SOURCE_FOLDER OUTPUT_FOLDER
"""

import shutil
import sys
from pathlib import Path


def main(source: str, output: str, n_train: int = 80, n_dev: int = 10) -> int:
    files = sorted(Path(source).glob("*.tsv"))
    if len(files) < n_train + n_dev:
        print(f"error: {source}: expected at least {n_train + n_dev} .tsv files, found {len(files)}", file=sys.stderr)
        return 1
    for split, chunk in (("train", files[:n_train]), ("dev", files[n_train : n_train + n_dev])):
        folder = Path(output) / split
        folder.mkdir(parents=True, exist_ok=True)
        for path in chunk:
            shutil.copyfile(path, folder / path.name)
        print(f"{len(chunk)} files -> {folder}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
