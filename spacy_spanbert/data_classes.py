"""Data passed between the span encoder and its listeners."""

from dataclasses import dataclass
from typing import Iterator, Tuple

import numpy
from thinc.api import Ops
from thinc.types import Floats2d, Ragged


@dataclass
class SpanBatch:
    """The output of the span encoder for a batch of docs.

    indices (Ragged): `[start, end)` token offsets of the candidate spans, one
        int32 row per span, with one length per doc.
    vectors (Floats2d): One row per span, in the order of `indices`.
    doc_vectors (Floats2d): One row per doc: the representation of the whole
        doc as a single span (zeros for an empty doc).
    """

    indices: Ragged
    vectors: Floats2d
    doc_vectors: Floats2d

    @property
    def width(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.doc_vectors.shape[0])


def doc_rows(ops: Ops, indices: Ragged) -> Iterator[Tuple[slice, numpy.ndarray]]:
    """Walk a batch's candidate spans doc by doc.

    ops (Ops): The ops `indices` lives on.
    indices (Ragged): `[start, end)` rows of the spans, one length per doc.
    YIELDS (Tuple[slice, numpy.ndarray]): Per doc, in order: the slice of its
        rows in the batch (to index arrays aligned with `indices`, such as
        scores or vectors), and its `(n, 2)` int32 offsets on the CPU.
    """
    offsets = ops.to_numpy(indices.dataXd).reshape((-1, 2)).astype("int32", copy=False)
    start = 0
    for n in ops.to_numpy(indices.lengths).tolist():
        rows = slice(start, start + int(n))
        yield rows, offsets[rows]
        start += int(n)
