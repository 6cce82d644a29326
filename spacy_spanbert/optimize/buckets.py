"""Length buckets: an optimized transformer runs a batch as groups of rows
of similar length, each cut to its own longest row.

spacy-transformers pads every row of a batch to the batch's longest row, and
the encoder's cost grows with the padded size: on short texts most of a
batch of 16 or 64 is padding. Here the rows are sorted by extent (the
position after their last real word piece), cut into consecutive groups by
a dynamic program that minimises the padded size plus a fixed cost per call,
and each group runs with the padding columns after its longest row removed.
That changes no real position's output: its attention never reaches a
masked key, and position ids count from the left. So the result is the one
batched call's up to float rounding, and up to the activation scales of
dynamic int8 quantization, which are computed per call. Left-padded rows
reach the full width, so they run uncut. The groups of an ONNX Runtime
session run concurrently, one per thread (`LengthBuckets`).
"""

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ..errors import Errors

# What one more encoder call costs, in padded word pieces: a call's fixed
# work (session start, thinner matrix products) against the cost per piece.
CALL_COST = 64
# The axes that index word-piece positions, per encoder output (for
# "hidden_states" and "attentions", in each layer's tensor).
POSITION_AXES: Dict[str, Tuple[int, ...]] = {
    "last_hidden_state": (1,),
    "pooler_output": (),
    "hidden_states": (1,),
    "attentions": (2, 3),
}
PER_LAYER = ("hidden_states", "attentions")


def length_groups(extents: Sequence[int], call_cost: int = CALL_COST) -> List[List[int]]:
    """Rows grouped for the fewest padded pieces plus `call_cost` per group.

    A cheapest grouping never splits rows of equal extent (moving them all to
    the group where they are longest costs no more), so the dynamic program
    runs over the distinct extents: its work is the square of their number
    (at most the encoder's positions), not of the number of rows.

    extents (Sequence[int]): Per row, the padded length it needs.
    call_cost (int): The cost of one more group, in pieces.
    RETURNS (List[List[int]]): Row indices per group, each sorted by extent,
        groups in order of extent.
    """
    order = sorted(range(len(extents)), key=lambda i: extents[i])
    widths = sorted(set(extents))
    # rows_upto[k]: rows with one of the k narrowest extents.
    rows_upto = [0] * (len(widths) + 1)
    position = {width: k for k, width in enumerate(widths)}
    for extent in extents:
        rows_upto[position[extent] + 1] += 1
    for k in range(len(widths)):
        rows_upto[k + 1] += rows_upto[k]
    # best[j]: the least cost of the rows of the j narrowest extents;
    # cut[j]: the extent its last group starts at.
    best = [0] * (len(widths) + 1)
    cut = [0] * (len(widths) + 1)
    for j in range(1, len(widths) + 1):
        best[j], cut[j] = min(
            (best[i] + (rows_upto[j] - rows_upto[i]) * widths[j - 1] + call_cost, i) for i in range(j)
        )
    groups = []
    j = len(widths)
    while j:
        groups.append(order[rows_upto[cut[j]] : rows_upto[j]])
        j = cut[j]
    return groups[::-1]


class LengthBuckets(torch.nn.Module):
    """A Hugging Face encoder (or a stand-in with the same call) run one
    length group at a time; the outputs are assembled to the batch's padded
    shape. Padding positions hold zeros past their group's cut and the
    encoder's values before it: neither means anything.

    With `concurrent`, the groups run at the same time on as many threads as
    torch uses in this process (each call of the encoder on one thread: an
    ONNX Runtime session with one intra-op thread, which releases the GIL
    while it runs), and a group larger than its share of the rows is split,
    so that one long doc still uses every thread. Without it (a torch
    module, which parallelises within each operation) they run one by one.

    encoder (torch.nn.Module): The encoder.
    concurrent (bool): Whether to run the groups on a thread pool.
    """

    def __init__(self, encoder: torch.nn.Module, *, concurrent: bool = False):
        super().__init__()
        self.encoder = encoder
        self.concurrent = concurrent
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_key: Optional[Tuple[int, int]] = None

    @property
    def config(self) -> Any:
        return self.encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
        n_rows, width = input_ids.shape
        positions = torch.arange(1, width + 1, device=attention_mask.device)
        extents = (attention_mask.ne(0) * positions).amax(dim=1).clamp(min=1).tolist()
        workers = torch.get_num_threads() if self.concurrent else 1
        share = -(-n_rows // workers)
        calls = [
            group[i : i + share] for group in length_groups(extents, CALL_COST) for i in range(0, len(group), share)
        ]

        def run(rows_list: List[int]) -> Tuple[torch.Tensor, int, Any]:
            rows = torch.tensor(rows_list, device=input_ids.device)
            cut = max(extents[i] for i in rows_list)
            feeds = {key: value[rows, :cut] if torch.is_tensor(value) else value for key, value in kwargs.items()}
            return rows, cut, self.encoder(input_ids[rows, :cut], attention_mask[rows, :cut], **feeds)

        if workers == 1 or len(calls) == 1:
            parts = [run(rows) for rows in calls]
        else:
            # The largest calls first, so that the last to finish is small.
            calls.sort(key=lambda rows: -len(rows) * max(extents[i] for i in rows))
            parts = list(self._threads(workers).map(run, calls))
        first = parts[0][2]
        fields = {}
        for name in first.keys():
            if name not in POSITION_AXES:
                raise ValueError(Errors.E710.format(name=name, known=", ".join(POSITION_AXES)))
            axes = POSITION_AXES[name]
            if name in PER_LAYER:
                fields[name] = tuple(
                    _scatter([(r, c, out[name][layer]) for r, c, out in parts], axes, n_rows, width)
                    for layer in range(len(first[name]))
                )
            else:
                fields[name] = _scatter([(r, c, out[name]) for r, c, out in parts], axes, n_rows, width)
        return type(first)(**fields)

    def _threads(self, workers: int) -> ThreadPoolExecutor:
        """This process's pool of `workers` threads (a forked worker of
        spaCy's `n_process` makes its own: the parent's threads are not in it)."""
        key = (os.getpid(), workers)
        if self._pool is None or self._pool_key != key:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spanbert-onnx")
            self._pool_key = key
        return self._pool

    def __getstate__(self) -> Dict[str, Any]:
        # A thread pool cannot be copied or pickled; the copy makes its own.
        state = self.__dict__.copy()
        state["_pool"] = None
        state["_pool_key"] = None
        return state


def _scatter(parts: List[Any], axes: Tuple[int, ...], n_rows: int, width: int) -> torch.Tensor:
    """The groups' values (rows on axis 0, positions cut to `cut` on `axes`)
    put back at their batch rows in a zero tensor of the full batch shape."""
    sample = parts[0][2]
    shape = [n_rows] + list(sample.shape[1:])
    for axis in axes:
        shape[axis] = width
    full = sample.new_zeros(shape)
    for rows, cut, values in parts:
        index: List[Any] = [rows] + [slice(None)] * (values.dim() - 1)
        for axis in axes:
            index[axis] = slice(0, cut)
        full[tuple(index)] = values
    return full
