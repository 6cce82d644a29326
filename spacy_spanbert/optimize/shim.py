"""The shim of an optimized transformer: spacy-transformers' `HFShim` with
an inference runtime (torch int8, or ONNX Runtime) in place of the Hugging
Face module, saved with `serialize.py` (safetensors + SHA-256) instead of
`torch.save`, so loading an optimized pipeline never unpickles anything."""

from pathlib import Path
from typing import Any, Dict, Optional

import srsly
import torch
from spacy.util import SimpleFrozenDict, make_tempdir
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim

from ..errors import Errors
from ..serialize import state_from_bytes, state_to_bytes
from .buckets import LengthBuckets
from .runtimes import OnnxEncoder, export_onnx, torch_runtime

ARCHITECTURE = "spacy-spanbert.OptimizedTransformerModel.v1"
# Names the saved runtime in error messages.
WHAT = "transformer: the saved optimized transformer"
FORMAT = "spacy-spanbert.optimized-transformer.v1"

State = Dict[str, torch.Tensor]


class OptimizedHFShim(HFShim):
    """An `HFShim` whose module is an inference runtime.

    runtime (str): "torch" or "onnx".
    quantize (str): "int8" or "none".
    """

    def __init__(self, hf_model: HFObjects, *, runtime: str, quantize: str, **kwargs: Any):
        super().__init__(hf_model, **kwargs)
        self.runtime = runtime
        self.quantize = quantize
        # What `to_bytes` saves: the fp32 weights (torch, quantized at load);
        # for onnx, None: the ONNX model (quantized at export) is saved from
        # the bytes the runtime keeps, so that it is in memory once.
        self._weights: Optional[State] = None

    def optimize(self, hf_model: HFObjects) -> None:
        """Build the runtime from a loaded fp32 Hugging Face encoder."""
        source = hf_model.transformer.eval()
        if self.runtime == "torch":
            weights = {key: value.detach().clone() for key, value in source.state_dict().items()}
        else:
            weights = {"onnx": export_onnx(source, hf_model.tokenizer, quantize=self.quantize)}
        self._install(hf_model.tokenizer, source.config, hf_model.vocab_file_contents, weights)

    def _install(
        self, tokenizer: Any, config: Any, vocab_file_contents: Optional[bytes], weights: Dict[str, Any]
    ) -> None:
        """Make the runtime from `weights`: the fp32 state (torch), or the
        ONNX model under "onnx" as bytes or a uint8 tensor (onnx)."""
        if self.runtime == "torch":
            module = torch_runtime(self.model_cls.from_config(config), weights, quantize=self.quantize, what=WHAT)
            self._weights = weights
        else:
            data = weights["onnx"]
            module = OnnxEncoder(data if isinstance(data, bytes) else data.numpy().tobytes(), config)
            self._weights = None
        # What `predict` calls: the runtime, by length groups; ONNX Runtime
        # sessions run one group per thread (see OnnxEncoder.session).
        self._model = LengthBuckets(module, concurrent=self.runtime == "onnx")
        self._hfmodel = HFObjects(
            tokenizer,
            module,
            vocab_file_contents,
            self._hfmodel._init_tokenizer_config,
            self._hfmodel._init_transformer_config,
        )

    def begin_update(self, inputs: Any):
        raise ValueError(
            Errors.E706.format(where=f"transformer ({ARCHITECTURE})", runtime=self.runtime, quantize=self.quantize)
        )

    def to_bytes(self) -> bytes:
        hf_model = self._hfmodel
        config: Dict[str, Any] = {"format": FORMAT, "runtime": self.runtime, "quantize": self.quantize}
        weights = self._weights
        if self.runtime == "onnx" and self._model is not None:
            weights = {"onnx": torch.frombuffer(bytearray(self._model.encoder.onnx_bytes), dtype=torch.uint8)}
        if weights is None:
            config["init_tokenizer_config"] = dict(hf_model._init_tokenizer_config)
            config["init_transformer_config"] = dict(hf_model._init_transformer_config)
            return state_to_bytes(None, config)
        config["hf_config"] = hf_model.transformer.config.to_dict()
        config["tokenizer"] = _tokenizer_files(hf_model)
        return state_to_bytes(weights, config)

    def from_bytes(self, bytes_data: bytes) -> "OptimizedHFShim":
        config, weights = state_from_bytes(bytes_data, what=WHAT)
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise ValueError(Errors.E050.format(what=WHAT))
        if (config["runtime"], config["quantize"]) != (self.runtime, self.quantize):
            raise ValueError(
                Errors.E709.format(
                    where=f"transformer ({ARCHITECTURE})",
                    saved_runtime=config["runtime"],
                    saved_quantize=config["quantize"],
                    runtime=self.runtime,
                    quantize=self.quantize,
                )
            )
        if weights is None:
            self._weights = None
            self._model = None
            self._hfmodel = HFObjects(
                None, None, None, config["init_tokenizer_config"], config["init_transformer_config"]
            )
            return self
        with make_tempdir() as tmp:
            srsly.write_json(tmp / "config.json", config["hf_config"])
            hf_config = self.config_cls.from_pretrained(tmp / "config.json")
            tokenizer, vocab_file_contents = _load_tokenizer(self.tokenizer_cls, tmp, dict(config["tokenizer"]))
        self._hfmodel = HFObjects(None, None, None, SimpleFrozenDict(), SimpleFrozenDict())
        self._install(tokenizer, hf_config, vocab_file_contents, weights)
        return self


def _tokenizer_files(hf_model: HFObjects) -> Dict[str, Any]:
    """The tokenizer's saved files by name, and its kwargs, as spacy-transformers'
    `HFShim.to_bytes` keeps them (the vocab file rewritten from the bytes kept
    at load, since the tokenizer's own path may be gone)."""
    tokenizer = hf_model.tokenizer
    files: Dict[str, Any] = {"kwargs": {"use_fast": tokenizer.is_fast}}
    with make_tempdir() as tmp:
        if hasattr(tokenizer, "vocab_file") and hf_model.vocab_file_contents is not None:
            vocab_path = tmp / tokenizer.vocab_files_names["vocab_file"]
            vocab_path.write_bytes(hf_model.vocab_file_contents)
            tokenizer.vocab_file = str(vocab_path.absolute())
        tokenizer.save_pretrained(str(tmp.absolute()))
        for path in tmp.glob("**/*"):
            if path.is_file():
                files[path.name] = path.read_bytes()
    return files


def _load_tokenizer(tokenizer_cls: Any, folder: Path, files: Dict[str, Any]):
    """The tokenizer saved by `_tokenizer_files`, and its vocab file's bytes."""
    kwargs = files.pop("kwargs", {})
    for name, data in files.items():
        (folder / name).write_bytes(data)
    tokenizer = tokenizer_cls.from_pretrained(str(folder.absolute()), **kwargs)
    vocab_file_contents = None
    if hasattr(tokenizer, "vocab_file"):
        vocab_file_contents = (folder / tokenizer.vocab_files_names["vocab_file"]).read_bytes()
    return tokenizer, vocab_file_contents
