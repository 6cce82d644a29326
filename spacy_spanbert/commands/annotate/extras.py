"""The optional packages of `spacy spanbert annotate` (pyarrow, Ray), in the
`[ray]` extra: imported on first use, with a message that says how to install
them."""

import importlib
from types import ModuleType

from ...errors import Errors


def require(module: str, what: str) -> ModuleType:
    """Import an optional dependency, or say which extra installs it.

    module (str): The module to import, e.g. "pyarrow.parquet".
    what (str): What needs it, for the message ("writing Parquet").
    RETURNS (ModuleType): The module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(Errors.E200.format(what=what, package=module.split(".")[0])) from err
