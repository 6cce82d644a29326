"""`spacy spanbert fit-evidence MODEL DATA OUTPUT`: the typer shell over
`fit_evidence`.

    python -m spacy spanbert fit-evidence MODEL DATA.spacy OUTPUT [--max-docs 2000]
        [--alpha 10] [--component NAME]
"""

from pathlib import Path
from typing import Optional

from spacy.cli._util import Arg, Opt
from wasabi import msg

from ..app import spanbert_cli
from . import fit_evidence


@spanbert_cli.command("fit-evidence")
def fit_evidence_cli(
    # fmt: off
    model: str = Arg(..., help="Trained pipeline with a spanbert_textcat(_multilabel)"),
    data: Path = Arg(..., help="A .spacy file of sample docs (the training set, say)"),
    output: Path = Arg(..., help="Folder to write the pipeline with the fitted estimator to"),
    component: Optional[str] = Opt(None, "--component", "-c", help="The text classifier (default: the first)"),
    max_docs: int = Opt(2000, "--max-docs", "-n", help="Fit on at most this many docs"),
    alpha: float = Opt(10.0, "--alpha", help="Ridge penalty"),
    # fmt: on
) -> None:
    """Fit the text classifier's occlusion estimator on real leave-one-out
    drops of sample docs, so its evidence follows occlusion at no extra cost
    per doc (evidence_method "auto" then uses it)."""
    try:
        report = fit_evidence(model, data, output, component=component, max_docs=max_docs, alpha=alpha)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    msg.good(
        f"Fitted {report['component']}'s occlusion estimator on {report['n_docs']} docs "
        f"({report['n_tokens']} tokens, correlation {report['correlation']:.2f}); saved to {output}"
    )
