"""Output activations trained with cross-entropy.

spaCy's text classifiers return `d_scores = scores - truths` from `get_loss`.
For a softmax trained with categorical cross-entropy, and for a sigmoid trained
with binary cross-entropy, that difference is exactly the gradient with respect
to the logits. thinc's `Softmax` layer, the output of spaCy's own exclusive
`TextCatEnsemble`, therefore passes it to its logits unchanged.

thinc's `softmax_activation` and `Logistic` layers do not: they multiply the
incoming gradient by the activation's Jacobian, which turns spaCy's
`scores - truths` into the gradient of the squared error of the probabilities.
That gradient vanishes on a confident mistake: a true label with probability
0.01 gets about 0.01 of the push it gets under cross-entropy. Rare labels are
then learned slowly.

`cross_entropy_activation` computes the same softmax or sigmoid as those layers
and passes the gradient straight to the logits.
"""

from typing import Callable, Tuple

from thinc.api import Model
from thinc.types import Floats2d


def cross_entropy_activation(exclusive_classes: bool) -> Model[Floats2d, Floats2d]:
    """Softmax (exclusive classes) or sigmoid (independent labels) whose
    backprop takes the incoming gradient, `scores - truths` from spaCy's text
    classifiers, as the gradient with respect to the logits.

    exclusive_classes (bool): Softmax over each row if True, an independent
        sigmoid per column if False.
    RETURNS (Model[Floats2d, Floats2d]): The activation layer.
    """
    return Model(
        "softmax_ce" if exclusive_classes else "sigmoid_ce",
        forward,
        attrs={"exclusive_classes": exclusive_classes},
    )


def forward(model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    if model.attrs["exclusive_classes"]:
        Y = model.ops.softmax(X, inplace=False)
    else:
        Y = model.ops.sigmoid(X, inplace=False)

    def backprop(dY: Floats2d) -> Floats2d:
        return dY

    return Y, backprop
