"""Make `nlp.pipe(n_process=N)` safe with PyTorch on CPU.

spaCy starts its worker processes with the platform's default start method,
which is `fork` on Linux. PyTorch's CPU build runs its intra-op thread pool on
GNU OpenMP, which is not fork-safe: a child forked after the parent used the
pool hangs the first time it enters a parallel region. spaCy's workers are the
parallelism in that setting, so each forked child runs torch single-threaded.
The parent process is not touched.
"""

import os

_installed = False


def _single_threaded_torch_in_child() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def install() -> None:
    global _installed
    if not _installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_single_threaded_torch_in_child)
        _installed = True
