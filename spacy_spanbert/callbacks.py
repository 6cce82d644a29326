"""Registered callbacks for `[initialize]`."""

import os
from pathlib import Path
from typing import Callable

from spacy.language import Language
from spacy.util import registry

from .errors import Errors

_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@registry.callbacks("spacy-spanbert.check_transformer_names.v1")
def make_check_transformer_names() -> Callable[[Language], Language]:
    """`[initialize.before_init]`: stop at once, with the fix, when a
    `transformer` component's `name` is neither a local folder nor in the
    Hugging Face cache and cannot be downloaded, instead of after the hub
    client's retries and its generic error.

    RETURNS (Callable[[Language], Language]): The callback.
    """
    return check_transformer_names


def check_transformer_names(nlp: Language) -> Language:
    """Raise a ValueError for a transformer `name` that cannot be loaded.

    nlp (Language): The pipeline being initialized.
    RETURNS (Language): `nlp`.
    """
    for comp_name, comp in nlp.config["components"].items():
        if comp.get("factory") != "transformer":
            continue
        name = comp.get("model", {}).get("name")
        if not isinstance(name, str) or Path(name).expanduser().is_dir() or _cached(name):
            continue
        offline = [var for var in _OFFLINE if os.environ.get(var, "").lower() in ("1", "true", "yes", "on")]
        reason = f"{' and '.join(offline)} is set" if offline else _unreachable(name)
        if reason:
            raise ValueError(Errors.E042.format(component=comp_name, name=name, reason=reason))
    return nlp


def _cached(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def _unreachable(name: str) -> str:
    """Why `name` cannot be downloaded from the hub, or "" if it can."""
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(name, timeout=10)
    except Exception as err:  # the hub client raises many error types
        return f"the Hugging Face hub answered: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return ""
