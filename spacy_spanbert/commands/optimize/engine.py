"""`optimize_pipeline`: write an inference-only copy of a trained pipeline
whose transformer runs as torch int8 or on ONNX Runtime.

The copy's config names `spacy-spanbert.OptimizedTransformerModel.v1` (with
the original transformer's settings), so `spacy.load` rebuilds it with only
the plugin installed; every other component is copied unchanged, and
`meta.json` records how the copy was made under `META_KEY`.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy_transformers.pipeline_component import Transformer

from ...errors import Errors
from ...optimize import ARCHITECTURE
from ...optimize.runtimes import check_settings
from .compare import compare_pipelines

PathLike = Union[str, Path]
WHERE = "spacy spanbert optimize"
# meta.json key of the optimization record.
META_KEY = "spacy_spanbert_optimize"
SUPPORTED = tuple(f"spacy-transformers.TransformerModel.v{i}" for i in (1, 2, 3))
ONNX_REQUIREMENT = "onnxruntime>=1.16"


def optimize_pipeline(
    model_path: PathLike,
    output_path: PathLike,
    *,
    runtime: str = "torch",
    quantize: str = "int8",
    calibration: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Write an optimized, inference-only copy of a pipeline.

    model_path (PathLike): The trained pipeline folder (or package name).
    output_path (PathLike): The folder to write the optimized pipeline to.
    runtime (str): "torch" or "onnx".
    quantize (str): "int8" or "none".
    calibration (Optional[PathLike]): A .spacy file whose texts both
        pipelines annotate, to report how closely the copy follows the original.
    RETURNS (Dict[str, Any]): The record also stored in meta.json under
        `META_KEY`: runtime, quantize, source, components, versions and,
        with `calibration`, the agreement report.
    """
    check_settings(WHERE, runtime, quantize)
    model_path, output_path = Path(model_path), Path(output_path)
    if output_path.exists() and output_path.resolve() == model_path.resolve():
        raise ValueError(Errors.E707.format(output=output_path))
    texts = _calibration_texts(calibration) if calibration is not None else None
    nlp = spacy.load(model_path)
    names = _transformer_names(nlp, model_path)
    config = nlp.config.copy()
    for name in names:
        block = dict(config["components"][name]["model"])
        block.update({"@architectures": ARCHITECTURE, "runtime": runtime, "quantize": quantize})
        config["components"][name]["model"] = block
    optimized = spacy.util.load_model_from_config(config, auto_fill=False, validate=True)
    optimized.from_bytes(nlp.to_bytes(exclude=names), exclude=[*names, "config.cfg"])
    for name in names:
        source, target = nlp.get_pipe(name), optimized.get_pipe(name)
        target.cfg.update(source.cfg)
        target.model.attrs["set_transformer"](target.model, source.model.layers[0].shims[0]._hfmodel)
    record = {
        "runtime": runtime,
        "quantize": quantize,
        "source": {"path": str(model_path), "name": nlp.meta.get("name"), "version": nlp.meta.get("version")},
        "components": names,
        "versions": _versions(runtime),
    }
    if texts is not None:
        record["calibration"] = {"path": str(calibration), **compare_pipelines(nlp, optimized, texts)}
    optimized.meta[META_KEY] = record
    if runtime == "onnx":
        _add_requirement(optimized.meta, ONNX_REQUIREMENT)
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)  # spaCy's to_disk makes only the last folder
    optimized.to_disk(output_path)
    return record


def _transformer_names(nlp: Language, model_path: Path) -> List[str]:
    """The spacy-transformers components to optimize, checked."""
    names = []
    for name, pipe in nlp.pipeline:
        if not isinstance(pipe, Transformer):
            continue
        arch = nlp.config["components"][name]["model"].get("@architectures")
        if arch == ARCHITECTURE:
            shim = pipe.model.layers[0].shims[0]
            raise ValueError(
                Errors.E704.format(name=name, path=model_path, runtime=shim.runtime, quantize=shim.quantize)
            )
        if arch not in SUPPORTED:
            raise ValueError(Errors.E705.format(name=name, arch=arch, supported=", ".join(SUPPORTED)))
        names.append(name)
    if not names:
        raise ValueError(Errors.E703.format(path=model_path, pipeline=nlp.pipe_names))
    return names


def _calibration_texts(path: PathLike) -> List[str]:
    """The texts of a .spacy file, read before the (slow) optimization."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(Errors.E708.format(path=path, reason="no such file"))
    texts = [doc.text for doc in DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab)]
    if not texts:
        raise ValueError(Errors.E708.format(path=path, reason="it holds no docs"))
    return texts


def _versions(runtime: str) -> Dict[str, str]:
    from importlib.metadata import version

    packages = ["spacy-spanbert", "spacy", "spacy-transformers", "transformers", "torch"]
    if runtime == "onnx":
        packages += ["onnxruntime", "onnx"]
    return {package: version(package) for package in packages}


def _add_requirement(meta: Dict[str, Any], requirement: str) -> None:
    """Add a requirement to meta.json, which `spacy package` installs with the pipeline."""
    requirements = meta.setdefault("requirements", [])
    package = requirement.split(">")[0].split("=")[0]
    if not any(req.split(">")[0].split("=")[0].strip() == package for req in requirements):
        requirements.append(requirement)
