"""`spacy spanbert fit-evidence`: fit a trained pipeline's occlusion
estimator (spacy_spanbert/evidence.py) and save the pipeline."""

from pathlib import Path
from typing import Any, Dict, Optional, Union

import spacy
from spacy.tokens import DocBin

from ...errors import Errors
from ...evidence import fit_occlusion_estimator

__all__ = ["fit_evidence"]


def fit_evidence(
    model: Union[str, Path],
    data: Union[str, Path],
    output: Union[str, Path],
    *,
    component: Optional[str] = None,
    max_docs: int = 2000,
    alpha: float = 10.0,
    batch_size: int = 64,
) -> Dict[str, Any]:
    """Load a trained pipeline, fit its text classifier's occlusion estimator
    on the texts of a .spacy file and write the pipeline to `output`.

    model (Union[str, Path]): The trained pipeline (folder or package name).
    data (Union[str, Path]): A .spacy file of sample docs, e.g. the training set.
    output (Union[str, Path]): The folder to write the pipeline to.
    component (Optional[str]): The text classifier; None for the first one.
    max_docs (int): Fit on at most this many docs.
    alpha (float): The ridge penalty.
    batch_size (int): Docs per `nlp.pipe` batch.
    RETURNS (Dict[str, Any]): What `fit_occlusion_estimator` fitted.
    """
    if isinstance(max_docs, bool) or not isinstance(max_docs, int) or max_docs < 1:
        raise ValueError(
            Errors.E001.format(where="fit-evidence", name="--max-docs", bound="a positive", value=max_docs)
        )
    if not Path(data).is_file():
        raise ValueError(Errors.E085.format(path=data))
    nlp = spacy.load(model)
    docs = DocBin().from_disk(data).get_docs(nlp.vocab)
    report = fit_occlusion_estimator(
        nlp, docs, component=component, max_docs=max_docs, alpha=alpha, batch_size=batch_size
    )
    nlp.meta.setdefault("spacy_spanbert", {})["occlusion_estimator"] = {"data": str(data), **report}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    return report
