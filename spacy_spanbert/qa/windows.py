"""(question, context) windows in word pieces: cut each context into
overlapping windows (never truncated), list each window's candidate answers
(whole words), pad windows into a `QABatch`, and find the gold candidates of
a window for training.
"""

from typing import Any, Dict, Iterable, List, Sequence, Tuple

import numpy

from ..errors import Errors
from .model import QABatch

# One window: "item", "qid", "input_ids", "offsets" ([n_pieces, 2] characters
# in the context), "starts", "ends" (the candidates, in pieces; ends
# exclusive) and, where the tokenizer makes them, "token_type_ids".
Window = Dict[str, Any]
# (item index, question id, question, context)
Item = Tuple[int, str, str, str]


def make_windows(
    tokenizer: Any,
    items: Sequence[Item],
    *,
    max_length: int,
    stride: int,
    max_answer_tokens: int,
    name: str,
) -> List[Window]:
    """Cut each (question, context) item into windows of `max_length` pieces
    (question included) with `stride` pieces shared by consecutive windows.

    tokenizer (Any): The encoder's fast tokenizer.
    items (Sequence[Tuple[int, str, str, str]]): (item index, question id,
        question, context).
    max_length (int): Window length in pieces.
    stride (int): Pieces shared by consecutive windows of one context.
    max_answer_tokens (int): Longest candidate answer, in pieces.
    name (str): The component's name, for error messages.
    RETURNS (List[Dict[str, Any]]): The windows, in the order of the items.
    """
    questions = [q for _, _, q, _ in items]
    longest = max_length - stride - 4
    q_lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    for (_, qid, _, _), n in zip(items, q_lengths):
        if n > longest:
            raise ValueError(
                Errors.E405.format(name=name, qid=qid, n=n, longest=longest, max_length=max_length, stride=stride)
            )
    enc = tokenizer(
        questions,
        [c for _, _, _, c in items],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows = []
    for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
        window: Window = {
            "item": items[sample][0],
            "qid": items[sample][1],
            "input_ids": enc["input_ids"][w],
            "offsets": numpy.asarray(enc["offset_mapping"][w], dtype="int64").reshape(-1, 2),
        }
        if "token_type_ids" in enc:
            window["token_type_ids"] = enc["token_type_ids"][w]
        window["starts"], window["ends"] = _candidates(enc, w, max_answer_tokens)
        windows.append(window)
    return windows


def _candidates(enc: Any, w: int, max_answer_tokens: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The candidate answers of window `w` of a tokenizer's output: every run
    of whole context words of at most `max_answer_tokens` pieces.
    RETURNS: int64 starts and (exclusive) ends, in pieces."""
    seq = numpy.array([-1 if s is None else s for s in enc.sequence_ids(w)])
    ctx = numpy.flatnonzero(seq == 1)
    if not ctx.size:
        return numpy.zeros((0,), dtype="int64"), numpy.zeros((0,), dtype="int64")
    words = numpy.array([-1 if i is None else i for i in enc.word_ids(w)])[ctx]
    is_start = numpy.ones(ctx.size, dtype=bool)
    is_start[1:] = words[1:] != words[:-1]
    is_end = numpy.ones(ctx.size, dtype=bool)
    is_end[:-1] = words[:-1] != words[1:]
    s = ctx[is_start][:, None]
    e = ctx[is_end][None, :]
    ss, ee = numpy.nonzero((e >= s) & (e - s < max_answer_tokens))
    return ctx[is_start][ss].astype("int64"), ctx[is_end][ee].astype("int64") + 1


def make_batch(windows: Sequence[Window], pad_id: int) -> QABatch:
    """Pad the windows to the longest and put their candidates on the
    flattened [n_windows * length] positions.

    windows (Sequence[Dict[str, Any]]): The windows.
    pad_id (int): The tokenizer's padding piece.
    RETURNS (QABatch): The batch.
    """
    length = max(len(w["input_ids"]) for w in windows)
    input_ids = numpy.full((len(windows), length), pad_id, dtype="int64")
    mask = numpy.zeros((len(windows), length), dtype="int64")
    types = numpy.zeros((len(windows), length), dtype="int64")
    for i, w in enumerate(windows):
        n = len(w["input_ids"])
        input_ids[i, :n] = w["input_ids"]
        mask[i, :n] = 1
        if "token_type_ids" in w:
            types[i, :n] = w["token_type_ids"]
    inputs = {"input_ids": input_ids, "attention_mask": mask}
    if "token_type_ids" in windows[0]:
        inputs["token_type_ids"] = types
    starts = numpy.concatenate([w["starts"] + i * length for i, w in enumerate(windows)])
    ends = numpy.concatenate([w["ends"] + i * length for i, w in enumerate(windows)])
    return QABatch(inputs, starts.astype("int64"), ends.astype("int64"))


def chunks(windows: List[Window], size: int) -> Iterable[List[Window]]:
    """RETURNS (Iterable[List[Window]]): The windows, `size` at a time."""
    for i in range(0, len(windows), size):
        yield windows[i : i + size]


def window_targets(window: Window, answers: List[Tuple[int, int]]) -> List[int]:
    """Indices of the gold answers among [no answer] + the window's
    candidates: a candidate is gold when it covers the same whole words as
    an answer that lies inside the window's context; no answer otherwise.

    window (Dict[str, Any]): The window.
    answers (List[Tuple[int, int]]): The gold (start, end) characters.
    RETURNS (List[int]): The gold choices; [0] for no answer.
    """
    starts, ends, offsets = window["starts"], window["ends"], window["offsets"]
    if not answers or starts.size == 0:
        return [0]
    first = int(offsets[starts.min(), 0])
    last = int(offsets[ends.max() - 1, 1])
    cand_start = offsets[starts, 0]
    cand_end = offsets[ends - 1, 1]
    found = []
    for start, end in answers:
        if start < first or end > last:
            continue
        # the candidate of whole words that starts at or before the answer
        # and ends at or after it, the tightest one
        fits = numpy.flatnonzero((cand_start <= start) & (cand_end >= end))
        if fits.size:
            k = fits[numpy.argmin(cand_end[fits] - cand_start[fits])]
            found.append(int(k) + 1)
    return sorted(set(found)) or [0]
