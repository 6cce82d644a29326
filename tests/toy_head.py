"""A minimal trainable head that listens to `spanbert`: it scores each
candidate span and learns to score gold entity spans 1 and others 0.
Used to test the encoder's training plumbing independently of the real heads."""

from typing import List

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.training import validate_examples
from spacy.util import registry
from thinc.api import Linear, Model

from spacy_spanbert.data_classes import SpanBatch

TOY_MODEL = {
    "@architectures": "spacy-spanbert-tests.ToySpanScorer.v1",
    "tok2vec": {"@architectures": "spacy-spanbert.SpanBertListener.v1"},
}


@registry.architectures("spacy-spanbert-tests.ToySpanScorer.v1")
def build_toy_scorer(tok2vec: Model) -> Model:
    linear = Linear(nO=1)
    return Model(
        "toy_span_scorer",
        _forward,
        init=_init,
        layers=[tok2vec, linear],
        refs={"tok2vec": tok2vec, "linear": linear},
    )


def _init(model, X=None, Y=None):
    tok2vec = model.get_ref("tok2vec")
    linear = model.get_ref("linear")
    if tok2vec.has_dim("nO"):
        linear.set_dim("nI", tok2vec.get_dim("nO"))
    linear.initialize()


def _forward(model, docs, is_train):
    batch, bp_batch = model.get_ref("tok2vec")(docs, is_train)
    scores, bp_scores = model.get_ref("linear")(batch.vectors, is_train)

    def backprop(d_scores):
        d_vectors = bp_scores(d_scores)
        return bp_batch(SpanBatch(batch.indices, d_vectors, model.ops.alloc2f(*batch.doc_vectors.shape)))

    return (batch, scores), backprop


@Language.factory("toy_span_head", default_config={"model": TOY_MODEL})
def make_toy_head(nlp, name, model):
    return ToySpanHead(nlp.vocab, model, name)


class ToySpanHead(TrainablePipe):
    def __init__(self, vocab, model, name="toy_span_head"):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg = {}

    def predict(self, docs):
        return self.model.predict(docs)

    def set_annotations(self, docs, outputs):
        pass

    def _targets(self, examples, batch):
        ops = self.model.ops
        indices = ops.to_numpy(batch.indices.dataXd)
        lengths = ops.to_numpy(batch.indices.lengths)
        target = ops.alloc2f(indices.shape[0], 1)
        offset = 0
        for eg, n in zip(examples, lengths):
            gold = {(e.start, e.end) for e in eg.reference.ents}
            for i, (s, e) in enumerate(indices[offset : offset + n]):
                if (int(s), int(e)) in gold:
                    target[offset + i, 0] = 1.0
            offset += n
        return target

    def update(self, examples, *, drop=0.0, sgd=None, losses=None):
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, "ToySpanHead.update")
        docs = [eg.predicted for eg in examples]
        (batch, scores), backprop = self.model.begin_update(docs)
        target = self._targets(examples, batch)
        d_scores = scores - target
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += float((d_scores**2).sum())
        return losses

    def initialize(self, get_examples, *, nlp=None):
        self.model.initialize()


def score_spans(head: ToySpanHead, docs: List) -> List:
    (batch, scores) = head.model.predict(docs)
    return head.model.ops.to_numpy(scores)[:, 0]
