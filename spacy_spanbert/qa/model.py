"""The question-answering model: a Hugging Face encoder over
`[CLS] question [SEP] context [SEP]` windows, then the answer heads: the span
representation on its token states with a linear span score, and a linear
no-answer score on `[CLS]`.

The thinc model chains two PyTorch layers, `qa_encoder` (the encoder and its
tokenizer) and `qa_heads` (`QAHeads`), each with its own shim. Both are made
at initialize and saved through `spacy_spanbert.serialize` (safetensors with
a checksum; the encoder's envelope also holds its config and tokenizer files,
so a saved pipeline loads without the original encoder folder). The heads'
shim trains them at `head_lr_scale` times the optimizer's learning rate.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy
import torch
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.layers.pytorchwrapper import forward as pytorch_forward
from thinc.types import Floats1d, Floats3d
from thinc.util import get_torch_default_device
from torch import nn

from ..errors import Errors
from ..layers.span_representation import SpanRepresentation
from ..layers.torch_shim import ConfiguredTorchShim, LazyTorchShim
from ..learn_rate import ScaledLearnRate
from ..serialize import load_state, state_from_bytes, state_to_bytes

# Name the saved weights in error messages.
ENCODER_WHAT = "spanbert_qa: the saved encoder weights"
HEADS_WHAT = "spanbert_qa: the saved answer-head weights"
# Encoders built without their pooler: the component reads token states only.
_POOLED = ("bert", "roberta", "xlm-roberta", "electra", "camembert")


@dataclass
class QABatch:
    """Encoder inputs for a batch of windows and the candidate answer spans.

    encoder_inputs (Dict[str, numpy.ndarray]): `input_ids`, `attention_mask`
        (and `token_type_ids` where the encoder uses them), [n_windows, length].
    starts, ends (numpy.ndarray): int64 [n_spans], positions in the windows
        flattened to one row of n_windows * length pieces; ends exclusive.
    """

    encoder_inputs: Dict[str, numpy.ndarray]
    starts: numpy.ndarray
    ends: numpy.ndarray


InT = QABatch
# (span scores [n_spans], no-answer scores [n_windows])
OutT = Tuple[Floats1d, Floats1d]
# The heads' input: (token states [n_windows, length, width], starts, ends)
HeadsInT = Tuple[Floats3d, numpy.ndarray, numpy.ndarray]


class QAHeads(nn.Module):
    """The span scorer and the no-answer scorer on the encoder's token states.

    n_in (int): Width of the token states.
    hidden_width (int): Width of the span representation.
    dropout (float): Dropout on the token states and span vectors.
    """

    def __init__(self, n_in: int, hidden_width: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.span_rep = SpanRepresentation(n_in, hidden_width, dropout=0.0)
        self.span_score = nn.Linear(hidden_width, 1)
        self.null_score = nn.Linear(n_in, 1)

    def forward(self, H: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """H: [n_windows, length, n_in]; starts, ends: [n_spans] positions in
        H flattened to [n_windows * length]. RETURNS: ([n_spans] span scores,
        [n_windows] no-answer scores)."""
        flat = self.dropout(H.reshape(-1, H.shape[-1]))
        spans = self.span_rep(flat, starts, ends)
        span_scores = self.span_score(self.dropout(nn.functional.gelu(spans))).squeeze(-1)
        null_scores = self.null_score(self.dropout(H[:, 0])).squeeze(-1)
        return span_scores, null_scores


class QAEncoderShim(LazyTorchShim):
    """The Hugging Face encoder (`AutoModel`) and its fast tokenizer."""

    tokenizer: Any = None

    def load(self, name: str, do_lower_case: Optional[bool]) -> None:
        """Load a pretrained encoder and its tokenizer.

        name (str): A Hugging Face model name or folder.
        do_lower_case (Optional[bool]): The tokenizer's casing; None for its config's.
        """
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        kwargs = {} if do_lower_case is None else {"do_lower_case": do_lower_case}
        tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True, **kwargs)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(Errors.E408.format(model=name))
        config = AutoConfig.from_pretrained(name)
        encoder = AutoModel.from_pretrained(name, **_encoder_kwargs(config))
        self._model = encoder.to(get_torch_default_device())
        self.tokenizer = tokenizer

    @property
    def max_positions(self) -> Optional[int]:
        """RETURNS (Optional[int]): The encoder's positions, if it has a limit."""
        return getattr(self._model.config, "max_position_embeddings", None)

    def to_bytes(self) -> bytes:
        if self._model is None:
            return state_to_bytes(None, None)
        with tempfile.TemporaryDirectory() as tmp:
            self.tokenizer.save_pretrained(tmp)
            self._model.config.save_pretrained(tmp)
            files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
        return state_to_bytes(self._model.state_dict(), {"files": files})

    def from_bytes(self, bytes_data: bytes) -> "QAEncoderShim":
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        config, state = state_from_bytes(bytes_data, what=ENCODER_WHAT)
        if config is None:
            self._model, self.tokenizer = None, None
            return self
        if not isinstance(config, dict) or not isinstance(config.get("files"), dict) or state is None:
            raise ValueError(Errors.E050.format(what=ENCODER_WHAT))
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in config["files"].items():
                Path(tmp, Path(name).name).write_bytes(content)
            encoder_config = AutoConfig.from_pretrained(tmp)
            tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=True)
        encoder = AutoModel.from_config(encoder_config, **_encoder_kwargs(encoder_config))
        load_state(encoder, state, what=ENCODER_WHAT)
        self._model = encoder.to(get_torch_default_device())
        self.tokenizer = tokenizer
        return self


class QAHeadsShim(ConfiguredTorchShim):
    """The answer heads (`QAHeads`), trained at `lr_scale` times the rate of
    the optimizer they are updated with.

    lr_scale (float): The learning-rate multiplier (`head_lr_scale`).
    """

    module_cls = QAHeads
    what = HEADS_WHAT
    config_keys = frozenset({"n_in", "hidden_width", "dropout"})

    def __init__(self, model: Optional[QAHeads], *, lr_scale: float) -> None:
        super().__init__(model)
        self.lr_scale = lr_scale

    def finish_update(self, optimizer: Any) -> None:
        super().finish_update(ScaledLearnRate(optimizer, self.lr_scale))


def _encoder_kwargs(config: Any) -> Dict[str, Any]:
    return {"add_pooling_layer": False} if config.model_type in _POOLED else {}


def qa_model(
    name: str, *, do_lower_case: Optional[bool], hidden_width: int, dropout: float, head_lr_scale: float
) -> Model[InT, OutT]:
    """The QA model: `QABatch` -> (span scores, no-answer scores). The encoder
    is loaded from `name` in `initialize`.

    name (str): A Hugging Face model name or folder.
    do_lower_case (Optional[bool]): The tokenizer's casing; None for its config's.
    hidden_width (int): Width of the span representation.
    dropout (float): Dropout rate of the heads.
    head_lr_scale (float): Learning-rate multiplier of the heads.
    RETURNS (Model[QABatch, Tuple[Floats1d, Floats1d]]): The model.
    """
    encoder: Model[InT, Floats3d] = Model(
        "qa_encoder",
        pytorch_forward,
        attrs={"convert_inputs": _encoder_inputs, "convert_outputs": _encoder_outputs},
        shims=[QAEncoderShim(None)],
    )
    heads: Model[HeadsInT, OutT] = Model(
        "qa_heads",
        pytorch_forward,
        attrs={"convert_inputs": _heads_inputs, "convert_outputs": _heads_outputs},
        shims=[QAHeadsShim(None, lr_scale=head_lr_scale)],
    )
    model: Model[InT, OutT] = Model(
        "spanbert_qa",
        forward,
        init=init,
        layers=[encoder, heads],
        attrs={"name": name, "do_lower_case": do_lower_case, "hidden_width": hidden_width, "dropout": dropout},
    )
    model.set_ref("encoder", encoder)
    model.set_ref("heads", heads)
    return model


def forward(model: Model[InT, OutT], batch: InT, is_train: bool):
    encoder, heads = model.layers
    if not encoder.shims[0].is_built:
        raise ValueError(Errors.E401.format(name=model.name))
    H, backprop_encoder = encoder(batch, is_train)
    scores, backprop_heads = heads((H, batch.starts, batch.ends), is_train)

    def backprop(d_scores: OutT) -> InT:
        backprop_encoder(backprop_heads(d_scores))
        return batch

    return scores, backprop


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    """Load the encoder and make fresh heads, unless they are there already
    (a loaded or trained pipeline keeps its weights)."""
    encoder_shim = model.get_ref("encoder").shims[0]
    if encoder_shim.is_built:
        return
    encoder_shim.load(model.attrs["name"], model.attrs["do_lower_case"])
    model.get_ref("heads").shims[0].build(
        {
            "n_in": encoder_shim._model.config.hidden_size,
            "hidden_width": model.attrs["hidden_width"],
            "dropout": model.attrs["dropout"],
        }
    )


def get_encoder(model: Model[InT, OutT]) -> QAEncoderShim:
    """RETURNS (QAEncoderShim): The encoder and its tokenizer (`is_built` is
    false before initialization)."""
    return model.get_ref("encoder").shims[0]


def _encoder_inputs(model: Model, batch: QABatch, is_train: bool):
    device = model.shims[0].device
    inputs = {k: torch.from_numpy(numpy.ascontiguousarray(v)).to(device) for k, v in batch.encoder_inputs.items()}
    return ArgsKwargs(args=(), kwargs=inputs), lambda d_inputs: batch


def _encoder_outputs(model: Model, inputs_outputs, is_train: bool):
    _, output = inputs_outputs
    H = output.last_hidden_state

    def backprop(dH: Floats3d) -> ArgsKwargs:
        return ArgsKwargs(args=((H,),), kwargs={"grad_tensors": (xp2torch(dH, device=H.device),)})

    return torch2xp(H), backprop


def _heads_inputs(model: Model, X: HeadsInT, is_train: bool):
    H, starts, ends = X
    device = model.shims[0].device
    args = (
        xp2torch(H, requires_grad=is_train, device=device),
        torch.from_numpy(starts).to(device),
        torch.from_numpy(ends).to(device),
    )
    return ArgsKwargs(args=args, kwargs={}), lambda d_inputs: torch2xp(d_inputs.args[0])


def _heads_outputs(model: Model, inputs_outputs, is_train: bool):
    _, (span_scores, null_scores) = inputs_outputs
    # numpy on every device: the scores are small, and the component's
    # loss and decoding work on the CPU
    Y = (span_scores.detach().float().cpu().numpy(), null_scores.detach().float().cpu().numpy())

    def backprop(dY: OutT) -> ArgsKwargs:
        device = span_scores.device
        grads = (xp2torch(dY[0], device=device), xp2torch(dY[1], device=device))
        return ArgsKwargs(args=((span_scores, null_scores),), kwargs={"grad_tensors": grads})

    return Y, backprop
