"""The model of `spacy spanbert pretrain`: a Hugging Face masked-LM encoder,
SpanBERT's span boundary head, the module that computes both losses, and the
plain Hugging Face folder it is saved to.

The span boundary objective (SBO) predicts each masked piece x_i of a span
(s, e) from [h_{s-1}; h_{e+1}; p_{i-s+1}] through two Linear -> GeLU ->
LayerNorm layers and the decoder tied to the input embeddings.
"""

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, Tuple

import torch
from torch import nn

from ...errors import Errors


class SpanBoundaryHead(nn.Module):
    """SpanBERT's span boundary objective: predicts a masked piece from the
    states just outside its span and its position in the span, through two
    Linear -> GeLU -> LayerNorm layers and a decoder whose weights are the
    encoder's input embeddings (passed to `forward`, so they stay tied).

    width (int): The encoder's hidden width.
    vocab_size (int): The number of word pieces.
    max_offset (int): The number of relative positions (the longest span).
    eps (float): The epsilon of the LayerNorms.
    """

    def __init__(self, width: int, vocab_size: int, max_offset: int, eps: float = 1e-12):
        super().__init__()
        self.positions = nn.Embedding(max_offset, width)
        self.layers = nn.Sequential(
            nn.Linear(3 * width, width),
            nn.GELU(),
            nn.LayerNorm(width, eps=eps),
            nn.Linear(width, width),
            nn.GELU(),
            nn.LayerNorm(width, eps=eps),
        )
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.normal_(self.positions.weight, std=0.02)

    def forward(
        self, left: torch.Tensor, right: torch.Tensor, offset: torch.Tensor, decoder: torch.Tensor
    ) -> torch.Tensor:
        """Logits over the word pieces, one row per masked piece.

        left (torch.Tensor): The states of the pieces before the spans (n, width).
        right (torch.Tensor): The states of the pieces after the spans (n, width).
        offset (torch.Tensor): The position of each piece in its span (n,).
        decoder (torch.Tensor): The input embeddings (vocab_size, width).
        RETURNS (torch.Tensor): The logits (n, vocab_size).
        """
        hidden = self.layers(torch.cat([left, right, self.positions(offset)], dim=-1))
        return nn.functional.linear(hidden, decoder, self.bias)


def mlm_head(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The masked-LM head of a Hugging Face `...ForMaskedLM` model.

    model (PreTrainedModel): The masked-LM model.
    RETURNS (Callable[[torch.Tensor], torch.Tensor]): The head, a function of
        hidden states; a ValueError for an unknown layout.
    """
    if hasattr(model, "cls"):  # BERT
        return model.cls
    if hasattr(model, "lm_head"):  # RoBERTa, XLM-R, CamemBERT
        return model.lm_head
    if hasattr(model, "vocab_projector"):  # DistilBERT
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    raise ValueError(Errors.E315.format(model_type=type(model).__name__))


class SpanBertPretrainer(nn.Module):
    """An encoder with its masked-LM head and, when sbo_weight > 0, the span
    boundary head. `forward(batch)` returns (loss, mlm_loss, sbo_loss).
    Logits are computed for the masked pieces only.

    mlm_model (PreTrainedModel): The masked-LM model, from `load_encoder`.
    sbo_weight (float): The weight of the SBO loss; 0 for no SBO head.
    max_offset (int): The longest span in pieces (the sequence length).
    """

    def __init__(self, mlm_model, *, sbo_weight: float, max_offset: int):
        super().__init__()
        self.mlm_model = mlm_model
        mlm_head(mlm_model)  # fails early for an unknown head layout
        self.sbo_weight = sbo_weight
        # while True, the encoder runs without gradients: only the heads learn
        self.frozen_encoder = False
        config = mlm_model.config
        self.sbo = (
            SpanBoundaryHead(
                config.hidden_size, config.vocab_size, max_offset, getattr(config, "layer_norm_eps", 1e-12)
            )
            if sbo_weight > 0
            else None
        )

    def forward(self, batch: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The losses of a batch from `Masker.batch`.

        batch (Dict[str, torch.Tensor]): The masked, padded batch.
        RETURNS (Tuple[torch.Tensor, torch.Tensor, torch.Tensor]): The loss to
            minimise, and the (detached) masked-LM and SBO losses.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
            hidden = self.mlm_model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
        row, target = batch["row"], batch["target"]
        if len(target) == 0:
            zero = hidden.sum() * 0.0
            return zero, zero.detach(), zero.detach()
        logits = mlm_head(self.mlm_model)(hidden[row, batch["position"]])
        mlm_loss = nn.functional.cross_entropy(logits.float(), target)
        if self.sbo is None:
            return mlm_loss, mlm_loss.detach(), torch.zeros(())
        sbo_logits = self.sbo(
            hidden[row, batch["left"]],
            hidden[row, batch["right"]],
            batch["offset"],
            self.mlm_model.get_input_embeddings().weight,
        )
        sbo_loss = nn.functional.cross_entropy(sbo_logits.float(), target)
        return mlm_loss + self.sbo_weight * sbo_loss, mlm_loss.detach(), sbo_loss.detach()


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence the warnings of transformers' loaders (about missing or unused
    weights) inside the block; what matters is reported by the caller."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def load_encoder(name: str):
    """`AutoModelForMaskedLM.from_pretrained(name)`, which adds a freshly
    initialised head to an encoder saved without one.

    name (str): A Hugging Face model name or folder.
    RETURNS (Tuple[PreTrainedModel, bool]): The model and whether its MLM head is new.
    """
    from transformers import AutoModelForMaskedLM

    with quiet_transformers():  # the missing-head warning is W300, given by the caller
        try:
            model, info = AutoModelForMaskedLM.from_pretrained(name, output_loading_info=True)
        except ValueError as err:
            raise ValueError(Errors.E316.format(model=name, error=err)) from None
    base = model.base_model_prefix
    fresh = any(not key.startswith(base + ".") for key in info["missing_keys"])
    return model, fresh


def save_encoder(mlm_model, name: str, tokenizer, output_dir: Path) -> None:
    """Save the trained encoder as `AutoModel.from_pretrained(name)` would
    load it (with its pooler, if it had one), and the tokenizer.

    mlm_model (PreTrainedModel): The trained masked-LM model.
    name (str): The model it started from.
    tokenizer (PreTrainedTokenizerFast): Its tokenizer.
    output_dir (Path): The Hugging Face folder to write.
    """
    from transformers import AutoModel

    with quiet_transformers():
        encoder = AutoModel.from_pretrained(name)
    result = encoder.load_state_dict(mlm_model.base_model.state_dict(), strict=False)
    unexpected = list(result.unexpected_keys)
    if unexpected:
        raise ValueError(Errors.E317.format(model=name, keys=unexpected[:3]))
    output_dir.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
