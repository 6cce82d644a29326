"""What the trainable heads over a `spanbert` encoder share (`spanbert_ner`,
`spanbert_rel`, `spanbert_coref`): the update step, the check that the
component is initialized, finding the encoder its listener is fed by and the
candidates it suggests for the gold annotations, and, for the heads with
labels, `add_label` and the labels given or inferred at initialize. What
differs (losses, messages, what the model takes) stays in each head."""

from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from thinc.api import Optimizer, set_dropout_rate

from .data_classes import doc_rows
from .errors import Errors
from .layers.listener import SpanBertListener
from .learn_rate import ScaledLearnRateMixin
from .suggesters import PresetSpansSuggester

# Per example, the offsets of the candidate spans the encoder's suggester
# gives for its predicted doc.
CandidatesT = List[Tuple[Example, Set[Tuple[int, int]]]]


class SpanBertHead(ScaledLearnRateMixin, TrainablePipe):
    """A trainable pipe whose model reads the span vectors of an upstream
    `spanbert` through a `SpanBertListener`. A subclass defines
    `is_initialized` and `get_loss`, and overrides `_learn` when its model
    takes more than the docs."""

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples; the gradient flows back into the
        upstream `spanbert` (and the transformer) through the listener.

        examples (Iterable[Example]): A batch of examples.
        drop (float): The dropout rate.
        sgd (Optional[Optimizer]): An optimizer.
        losses (Optional[Dict[str, float]]): Updated with this component's loss.
        RETURNS (Dict[str, float]): The updated losses dictionary.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, f"{type(self).__name__}.update")
        examples = list(examples)
        docs = [eg.predicted for eg in examples]
        if not any(len(doc) for doc in docs):
            return losses
        self._check_initialized()
        set_dropout_rate(self.model, drop)
        loss = self._learn(examples, docs)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _learn(self, examples: List[Example], docs: List[Doc]) -> float:
        """One forward and backward pass of the model over a batch.

        examples (List[Example]): The batch.
        docs (List[Doc]): Their predicted docs, the model's input.
        RETURNS (float): The loss.
        """
        predictions, backprop = self.model.begin_update(docs)
        loss, gradient = self.get_loss(examples, predictions)
        backprop(gradient)
        return loss

    def _check_initialized(self) -> None:
        if not self.is_initialized:
            raise ValueError(Errors.E009.format(name=self.name))

    def _find_encoder(self, nlp: Language) -> Optional[Tuple[str, Any]]:
        """RETURNS (Optional[Tuple[str, Any]]): The name and component of the
        `spanbert` encoder this head listens to, or None."""
        for name, comp in nlp.pipeline:
            if self.name in (getattr(comp, "listening_components", None) or []) and hasattr(comp, "suggester"):
                return name, comp
        return None

    def _check_upstream(self, nlp: Language) -> None:
        """Raise if the head has a SpanBertListener that no `spanbert`
        component before it feeds (after `replace_listeners` it has none)."""
        listeners = [n for n in self.model.walk() if isinstance(n, SpanBertListener)]
        if listeners and self._find_encoder(nlp) is None:
            raise ValueError(self._no_upstream_message(listeners[0], nlp))

    def _no_upstream_message(self, listener: SpanBertListener, nlp: Language) -> str:
        """RETURNS (str): The error of `_check_upstream`."""
        return Errors.E030.format(name=self.name, upstream=listener.upstream_name, pipeline=nlp.pipe_names)

    def _candidates(self, nlp: Language, get_examples: Callable) -> Tuple[str, CandidatesT]:
        """The candidate spans the upstream encoder suggests for (up to 10,000)
        sample examples, to check the gold annotations against.

        RETURNS (Tuple[str, CandidatesT]): The encoder's name and, per
        non-empty example, its candidate offsets; no examples when there is no
        encoder or its candidates depend on annotations set at run time.
        """
        upstream = self._find_encoder(nlp)
        if upstream is None:
            return "", []
        up_name, encoder = upstream
        suggester = encoder.suggester
        if getattr(suggester, "requires", None) or isinstance(suggester, PresetSpansSuggester):
            return up_name, []
        examples = [eg for eg in islice(get_examples(), 10000) if len(eg.predicted)]
        if not examples:
            return up_name, []
        found = suggester([eg.predicted for eg in examples], ops=self.model.ops)
        rows = doc_rows(self.model.ops, found)
        return up_name, [(eg, set(map(tuple, offsets.tolist()))) for eg, (_, offsets) in zip(examples, rows)]


class LabelledSpanBertHead(SpanBertHead):
    """A `SpanBertHead` with labels (`cfg["labels"]`, one model column each),
    fixed once the component is initialized. A subclass sets the messages of
    `add_label`: `invalid_label_error` (a label that is not a non-empty
    string) and `late_label_error` (a new label after initialize), and
    defines `_gold_labels`, the labels an example's annotations use."""

    invalid_label_error: str
    late_label_error: str

    @property
    def labels(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str]): The labels, in the order of the model's columns."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        """RETURNS (List[str]): The labels, for `init labels`."""
        return list(self.labels)

    def add_label(self, label: str) -> int:
        """Add a label before the component is initialized.

        label (str): The label.
        RETURNS (int): 1 if the label was added, 0 if it was already there.
        """
        if not isinstance(label, str) or not label:
            raise ValueError(self.invalid_label_error.format(name=self.name, label=label))
        if label in self.labels:
            return 0
        if self.is_initialized:
            raise ValueError(self.late_label_error.format(name=self.name, label=label, n_labels=len(self.labels)))
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def _add_labels(self, get_examples: Callable[[], Iterable[Example]], labels: Optional[List[str]]) -> None:
        """Add the labels given to `initialize`; without them, and without
        labels from the config, those of the examples (`_gold_labels`), sorted.

        get_examples (Callable[[], Iterable[Example]]): Returns sample examples.
        labels (Optional[List[str]]): The labels given, or None.
        """
        if labels is not None:
            for label in labels:
                self.add_label(label)
        elif not self.labels:
            found: Set[str] = set()
            for eg in get_examples():
                found.update(self._gold_labels(eg))
            for label in sorted(found):
                self.add_label(label)

    def _gold_labels(self, example: Example) -> Iterable[str]:
        """RETURNS (Iterable[str]): The labels of an example's annotations."""
        raise NotImplementedError
