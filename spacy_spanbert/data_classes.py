"""Data passed between the span encoder and its listeners."""

from dataclasses import dataclass

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
