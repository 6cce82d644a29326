"""`spanbert_cleaner`: drop the candidate spans (or their vectors) once the
heads have used them.

`spanbert` stores one vector per candidate span on the doc, and there are
several candidates per token, so a processed doc holds several times the
vector data spacy-transformers keeps per token in `doc._.trf_data`. The heads
need the vectors while the pipeline runs; a pipeline that only delivers
`doc.ents` or `doc.cats` does not need them afterwards. Put this component
last:

    nlp.add_pipe("spanbert_cleaner")                      # drop doc.spans["spanbert"]
    nlp.add_pipe("spanbert_cleaner", config={"keep_spans": True})  # keep the spans, drop the vectors

(spaCy's own `doc_cleaner` cannot reach a span group's attrs.)
"""

from typing import Any, Dict

from spacy.language import Language
from spacy.tokens import Doc

from .errors import Errors, check_key
from .span_vectors import DEFAULT_SPANS_KEY, SpanVectorHooks

DROPPED_ATTRS = ("vectors", "doc_vector")


@Language.factory(
    "spanbert_cleaner",
    default_config={"spans_key": DEFAULT_SPANS_KEY, "keep_spans": False},
)
def make_spanbert_cleaner(nlp: Language, name: str, spans_key: str, keep_spans: bool) -> "SpanBertCleaner":
    """Create a `spanbert_cleaner`; it must come after every head of the
    `spanbert` component that writes `spans_key`.

    spans_key (str): The key `spanbert` writes its candidates to.
    keep_spans (bool): Keep the candidate spans (and `attrs["offsets"]`) and
        drop only the vectors; by default the whole group is removed.
    """
    return SpanBertCleaner(name=name, spans_key=spans_key, keep_spans=keep_spans)


class SpanBertCleaner:
    """Remove `doc.spans[spans_key]` (or its `attrs["vectors"]` and
    `attrs["doc_vector"]`) and the span-vector hooks `spanbert` installed."""

    def __init__(self, *, name: str = "spanbert_cleaner", spans_key: str = DEFAULT_SPANS_KEY, keep_spans: bool = False):
        check_key(name, "spans_key", spans_key)
        if not isinstance(keep_spans, bool):
            raise ValueError(Errors.E008.format(name=name, setting="keep_spans", value=keep_spans))
        self.name = name
        self.cfg: Dict[str, Any] = {"spans_key": spans_key, "keep_spans": keep_spans}

    def __call__(self, doc: Doc) -> Doc:
        key = self.cfg["spans_key"]
        if key in doc.spans:
            if self.cfg["keep_spans"]:
                attrs = doc.spans[key].attrs
                for attr in DROPPED_ATTRS:
                    attrs.pop(attr, None)
            else:
                del doc.spans[key]
        for hook in ("vector", "similarity"):
            owner = getattr(doc.user_span_hooks.get(hook), "__self__", None)
            if isinstance(owner, SpanVectorHooks) and owner.spans_key == key:
                del doc.user_span_hooks[hook]
        return doc
