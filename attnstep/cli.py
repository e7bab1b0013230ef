"""The ``attnstep`` command line: options, their help and defaults, over the commands in :mod:`attnstep.commands`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from attnstep.commands.train_settings import Attention, ModelConfig, StorageType, Tokenizer, TrainSettings
from attnstep.data.downloads import DATASETS, default_data_dir
from attnstep.data.files import STDOUT, discard_stdout
from attnstep.data.paths import DEFAULT_CHECKPOINT, resolve_checkpoint
from attnstep.errors import AttnstepError
from attnstep.report.by_length import BUCKETS_HELP
from attnstep.report.visible import visible
from attnstep.trace.alignment import AS_RECORDED, ViewChoice, ViewChoiceError
from attnstep.trace.edits import EditError
from attnstep.trace.records import DEFAULT_ALPHA, MAX_BEAM

err = Console(stderr=True, highlight=False)
CHECKPOINT_HELP = "Checkpoint directory, or the name of one under checkpoints/ (fr-en, multi30k-fr-en, de-en)."
BEAM_HELP = "Beam search of this width instead of greedy decoding."
ALPHA_HELP = "Beam search's length normalization: score / ((5 + length) / 6)^ALPHA (GNMT)."
TRAINING = TrainSettings()  # train's defaults; the model's are ModelConfig's
MULTI30K = default_data_dir("multi30k")  # eval's default --data


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


# The same two options on every command that runs the model; the engine applies them (use_device).
Threads = Annotated[int, typer.Option(metavar="N", help="CPU threads for torch (0: torch's default).", min=0)]
OnDevice = Annotated[
    Device, typer.Option(help="auto (cuda where torch sees a GPU, else cpu), cpu or cuda: where the model runs.")
]
# Which of a Transformer's attentions an alignment is (trace.alignment.ViewChoice), where one is exported.
AlignLayer = Annotated[
    int | None,
    typer.Option(
        "--align-layer",
        metavar="N",
        help="A Transformer's alignment from its decoder layer N (1 to L). Default: the trace's; a new trace's is the mean of the penultimate layer's heads.",
    ),
]
AlignHead = Annotated[
    str | None,
    typer.Option(
        "--align-head",
        metavar="N|mean",
        help="A Transformer's alignment from head N (1 to h) of that layer, or mean: the mean of its heads.",
    ),
]


def say_error(message: str) -> None:
    err.print(f"attnstep: error: {visible(message)}", markup=False, highlight=False, soft_wrap=True)


class UsageError(AttnstepError):
    """Options or arguments that do not go together: exit status 2, as for Click's usage errors."""


@contextlib.contextmanager
def as_usage_error(kind: type[AttnstepError]) -> Iterator[None]:
    """A ``kind`` error raised inside, where only the command's work can find out that its options do
    not fit (the model's layers, once it is loaded), as a UsageError."""
    try:
        yield
    except kind as exc:
        raise UsageError(str(exc)) from None


# Typer checks a value with pydantic, whose messages read "Input should be greater than or equal to 1".
PLAIN_RULES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
}


def plain_bad_value(exc: typer.BadParameter) -> str | None:
    """A refused value in plain words ("--top-k must be at least 1, not 0"), where pydantic refused it."""
    errors = getattr(exc.__cause__, "errors", None)
    if exc.param is None or not callable(errors):
        return None
    error = errors()[0]
    param = exc.param
    name = param.opts[0] if param.param_type_name == "option" else (param.metavar or param.name or "")
    given = visible(str(error.get("input", "")))
    if error["type"] == "value_error" and param.type_descriptor.choices:  # an Enum's names
        choices = [getattr(choice, "value", choice) for choice in param.type_descriptor.choices]
        return f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, not {given!r}"
    rule = PLAIN_RULES.get(error["type"])
    bounds = {key: int(bound) if float(bound).is_integer() else bound for key, bound in error.get("ctx", {}).items()}
    return f"{name} {rule.format(**bounds)}, not {given}" if rule else None


class Command(TyperCommand):
    """A command whose usage line names a required argument bare (TRACE.json), as Click's and man pages
    do: Typer's braces ({trace_file}) read as a placeholder left unfilled."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # Click's Context, which Typer does not export
        return [re.sub(r"^\{(.*)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]


class Commands(TyperGroup):
    """attnstep's commands. Every AttnstepError ends here: one line on stderr and exit status 1. A usage
    error (a bad option value, a missing argument) is one line too, with exit status 2, where Click
    would print the usage, a hint and a framed message."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = partial(  # → the exit code, or None
            super().main, args, prog_name, complete_var, False, windows_expand_args=windows_expand_args, **extra
        )

        if not standalone_mode:
            return run()
        try:
            code = run()
        except typer.TyperException as exc:  # Click's usage errors
            context = getattr(exc, "ctx", None)
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            plain = plain_bad_value(exc) if isinstance(exc, typer.BadParameter) else None
            say_error((plain or exc.format_message().rstrip(".")) + hint)
            sys.exit(exc.exit_code)
        except typer.Abort:
            say_error("aborted")
            sys.exit(1)
        except AttnstepError as exc:
            say_error(str(exc))
            sys.exit(2 if isinstance(exc, UsageError) else 1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=Commands,
    help="A stepping debugger for attention seq2seq translation models.",
    invoke_without_command=True,
    add_completion=True,  # --install-completion, --show-completion: bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[h_t; C_t]" is a formula, not Rich markup
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    context: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print attnstep's version and exit.")] = False,
) -> None:
    if version:
        from attnstep import __version__  # not at the top: reading it imports importlib.metadata

        print(f"attnstep {__version__}")
    elif context.invoked_subcommand is None:
        print(context.get_help())
    else:
        return
    raise typer.Exit()


@app.command(cls=Command)
def train(
    out: Annotated[
        Path,
        typer.Option(
            metavar="DIR", help="Folder for the best checkpoint: new, empty, or a checkpoint to replace (atomically)."
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Folder with {train,val}.{lang}[.gz], e.g. Multi30k from `attnstep data get multi30k`."
        ),
    ] = None,
    corpus: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FILE",
            help="Training corpus (repeatable): FILE.tsv[.gz], or a path with {lang} for line-aligned files; append *N to repeat it N times.",
        ),
    ] = None,
    tsv_columns: Annotated[
        str, typer.Option(metavar="LANG,LANG", help="Languages of a .tsv corpus's two columns, e.g. en,fr.")
    ] = TRAINING.tsv_columns,
    holdout: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="With --corpus: validation pairs held out of the first corpus (as many again for test).",
            min=0,
        ),
    ] = TRAINING.holdout,
    tokenizer: Annotated[
        Tokenizer, typer.Option(help="words (lower-cased words) or subword (SentencePiece with byte fallback).")
    ] = Tokenizer[TRAINING.tokenizer],
    vocab_size: Annotated[
        int, typer.Option(metavar="N", help="Subword pieces per language.", min=300)
    ] = TRAINING.vocab_size,
    max_minutes: Annotated[
        float,
        typer.Option(
            metavar="MINUTES",
            help="Stop training after this many minutes in all, resumes included (0: no limit).",
            min=0,
        ),
    ] = TRAINING.max_minutes,
    keep_epochs: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Keep the weights after each of the last N epochs in --work, for `attnstep average` (0: none).",
            min=0,
        ),
    ] = TRAINING.keep_epochs,
    save_every: Annotated[
        float,
        typer.Option(
            metavar="MINUTES",
            help="Save the run's state this often inside an epoch too, to resume from (0: after each epoch only).",
            min=0,
        ),
    ] = TRAINING.save_minutes,
    src: Annotated[str, typer.Option(metavar="LANG", help="Source language code.")] = TRAINING.src,
    tgt: Annotated[str, typer.Option(metavar="LANG", help="Target language code.")] = TRAINING.tgt,
    work: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Resume-state directory (default: runs/OUT-NAME).")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            metavar="CHECKPOINT",
            help="Start from this checkpoint's weights, vocabularies and val BLEU instead of new ones; "
            "it must have been trained with the run's held-out split, languages and model shape.",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(metavar="N", help="Most epochs to train.", min=1)] = TRAINING.epochs,
    batch_size: Annotated[
        int, typer.Option(metavar="N", help="Sentence pairs per batch.", min=1)
    ] = TRAINING.batch_size,
    lr: Annotated[float, typer.Option(metavar="RATE", help="Adam learning rate.")] = TRAINING.lr,
    patience: Annotated[
        int, typer.Option(metavar="N", help="Stop after this many epochs without a better val BLEU.", min=1)
    ] = TRAINING.patience,
    label_smoothing: Annotated[
        float, typer.Option(metavar="P", help="Label smoothing of the training loss.", min=0, max=1)
    ] = TRAINING.label_smoothing,
    max_len: Annotated[
        int, typer.Option(metavar="N", help="Skip training pairs longer than this many tokens or pieces.")
    ] = TRAINING.max_len,
    attention: Annotated[
        Attention, typer.Option(help="dot, general, concat, additive or none (no attention: the baseline).")
    ] = Attention[ModelConfig.attention],
    emb_dim: Annotated[int, typer.Option(metavar="N", help="Embedding size.")] = ModelConfig.emb_dim,
    enc_hidden: Annotated[
        int, typer.Option(metavar="N", help="Encoder GRU size per direction.")
    ] = ModelConfig.enc_hidden,
    dec_hidden: Annotated[int, typer.Option(metavar="N", help="Decoder GRU size.")] = ModelConfig.dec_hidden,
    attn_dim: Annotated[
        int, typer.Option(metavar="N", help="Hidden size of the concat/additive scorer.")
    ] = ModelConfig.attn_dim,
    dropout: Annotated[float, typer.Option(metavar="P", help="Dropout rate.")] = ModelConfig.dropout,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed.")] = TRAINING.seed,
    threads: Threads = 0,
    device: OnDevice = Device.auto,
    dtype: Annotated[
        StorageType, typer.Option(help="Storage type of the saved weights: float16, bfloat16 or float32.")
    ] = StorageType[TRAINING.dtype],
) -> None:
    """Train a model on parallel text. It resumes from --work if a run was stopped."""
    from attnstep.commands.train import run_train

    model = {
        "attention": attention.value,
        "emb_dim": emb_dim,
        "enc_hidden": enc_hidden,
        "dec_hidden": dec_hidden,
        "attn_dim": attn_dim,
        "dropout": dropout,
    }
    settings = TrainSettings(
        data=str(data) if data else "",
        corpora=list(corpus or []),
        tsv_columns=tsv_columns,
        holdout=holdout,
        tokenizer=tokenizer.value,
        vocab_size=vocab_size,
        max_minutes=max_minutes,
        save_minutes=save_every,
        keep_epochs=keep_epochs,
        src=src,
        tgt=tgt,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        label_smoothing=label_smoothing,
        max_len=max_len,
        seed=seed,
        model=model,
        dtype=dtype.value,
        init=init or "",
    )
    run_train(settings, out, work or Path("runs") / out.name, threads, device.value)


@app.command(cls=Command)
def average(
    work: Annotated[Path, typer.Option(metavar="DIR", help="A training run's --work folder.")],
    out: Annotated[
        Path, typer.Option(metavar="DIR", help="Folder for the averaged checkpoint: new, empty, or a checkpoint.")
    ],
    last: Annotated[int, typer.Option(metavar="K", help="Average the weights of the last K kept epochs.")] = 3,
    threads: Threads = 0,
    device: OnDevice = Device.auto,
) -> None:
    """Average a run's last epochs into one checkpoint.

    The weights kept after each of the last K epochs of a training run (--keep-epochs) are averaged,
    validated on the run's validation pairs and saved to --out; its val BLEU is printed beside the best
    single epoch's.
    """
    from attnstep.commands.train import run_average

    run_average(work, out, last, threads, device.value)


@app.command(cls=Command)
def translate(
    sentence: Annotated[
        str | None, typer.Argument(metavar="SENTENCE", help="Sentence to open with (else an input box with examples).")
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="CHECKPOINT", help=CHECKPOINT_HELP + " Give a second one and c sets its decoding beside this one's."
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(metavar="N", help="Next-word candidates shown per step.", min=1, max=20)] = 5,
    beam: Annotated[
        int | None, typer.Option(metavar="K", help=BEAM_HELP + " b shows the search.", min=1, max=MAX_BEAM)
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            metavar="TRANSLATION",
            help="A given translation of SENTENCE to step through: every token forced, with the model's own choice beside it.",
        ),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(
            metavar="N", help="CPU threads for the model (0: one; a sentence at a time gains nothing from more).", min=0
        ),
    ] = 0,
    device: OnDevice = Device.auto,
) -> None:
    """Step through a translation in the terminal. Every quantity of each attention step is on screen."""
    from attnstep.commands.translate import run_translate

    checkpoints = [resolve_checkpoint(path) for path in checkpoint or [DEFAULT_CHECKPOINT]]
    run_translate(checkpoints, sentence, top_k=top_k, beam=beam, reference=target, device=device.value, threads=threads)


@app.command(cls=Command)
def replay(
    trace_file: Annotated[
        Path, typer.Argument(metavar="TRACE.json", help="A trace written by `attnstep dump` (one JSON object).")
    ],
) -> None:
    """Open the stepping app on a saved trace. No model is loaded, so forcing is unavailable."""
    from attnstep.commands.replay import replay as run_replay

    run_replay(trace_file)


@app.command("eval", cls=Command)
def evaluate(
    checkpoint: Annotated[
        Path | None, typer.Argument(metavar="CHECKPOINT", help=CHECKPOINT_HELP + " Default: fr-en.")
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            metavar="CHECKPOINT",
            help="Another checkpoint to evaluate on the same sentences (repeatable); several are compared side by side.",
        ),
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SPLIT",
            help="Any SPLIT with SPLIT.{lang}[.gz] in --data; Multi30k has val, test_2016_flickr (the default), test_2017_flickr, test_2017_mscoco and test_2018_flickr. Repeat it to score several splits as one set.",
        ),
    ] = None,
    data: Annotated[
        Path,
        typer.Option(
            metavar="DIR", help="Folder with {split}.{lang}[.gz] (default: Multi30k from `attnstep data get multi30k`)."
        ),
    ] = MULTI30K,
    corpus: Annotated[
        str | None,
        typer.Option(metavar="FILE", help="Evaluate on this corpus instead: FILE.tsv[.gz] or a path with {lang}."),
    ] = None,
    tsv_columns: Annotated[
        str, typer.Option(metavar="LANG,LANG", help="Languages of a .tsv corpus's columns, e.g. en,fr.")
    ] = "src,tgt",
    languages: Annotated[
        str | None,
        typer.Option(
            metavar="SRC,TGT",
            help="The languages the model translates, e.g. fr,en, where its files do not say them (an OpenNMT-py checkpoint, a Marian folder not named opus-mt-SRC-TGT).",
        ),
    ] = None,
    heldout: Annotated[
        str | None,
        typer.Option(
            metavar="val|test",
            help="val or test: the pairs this checkpoint's training held out (its model card says of which corpus).",
        ),
    ] = None,
    heldout_corpus: Annotated[
        str | None, typer.Option(metavar="FILE", help="Where that corpus is, if not where training read it.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Also write the translations here, one a line (with --beam, the beam's); - for stdout, with the scores on stderr.",
        ),
    ] = None,
    beam: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help="Also decode with a beam of this width, and print its scores beside greedy's.",
            min=1,
            max=MAX_BEAM,
        ),
    ] = None,
    alpha: Annotated[float, typer.Option(metavar="ALPHA", help=ALPHA_HELP, min=0)] = DEFAULT_ALPHA,
    by_length: Annotated[
        bool,
        typer.Option(
            "--by-length",
            help=f"BLEU of each checkpoint per source-length bucket ({BUCKETS_HELP}, split at spaces), with each bucket's sentence count: a table and a chart (of the beam's translations with --beam).",
        ),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Save the --by-length chart as FILE.svg, or FILE.png (needs matplotlib); implies --by-length.",
        ),
    ] = None,
    hyp: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="FILE",
            help="Score this file's translations, one a line, instead of translating (repeatable; no model is loaded: the checkpoint names the languages and the case).",
        ),
    ] = None,
    paired_bs: Annotated[
        bool,
        typer.Option(
            "--paired-bs",
            help="sacreBLEU's paired bootstrap resampling (1000 resamples, seed 12345) of each checkpoint or --hyp file against the first: resampled means, 95% confidence intervals and p-values.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print every score, signature and the paired test as one JSON object.")
    ] = False,
    threads: Threads = 0,
    device: OnDevice = Device.auto,
) -> None:
    """Score a model's translations of a test set with sacreBLEU. It translates greedily (and with --beam K), or reads --hyp files, and prints BLEU, chrF and TER with their signatures."""
    from attnstep.commands.evaluate import EvalSet, run_eval

    paths = [resolve_checkpoint(path) for path in [*([checkpoint] if checkpoint else []), *(checkpoints or [])]] or [
        DEFAULT_CHECKPOINT
    ]
    chosen = EvalSet(
        splits=tuple(split or ["test_2016_flickr"]),
        data=data,
        corpus=corpus,
        tsv_columns=tsv_columns,
        heldout=heldout,
        heldout_corpus=heldout_corpus,
    )
    run_eval(
        paths,
        chosen,
        output=output,
        beam=beam,
        alpha=alpha,
        by_length=by_length or plot is not None,
        plot=plot,
        hypotheses=hyp or [],
        paired_bs=paired_bs,
        as_json=as_json,
        device=device.value,
        threads=threads,
        languages=languages,
    )


class DumpFormat(str, Enum):
    json = "json"
    pharaoh = "pharaoh"
    text = "text"
    npz = "npz"


@app.command(cls=Command)
def dump(
    sentence: Annotated[
        str | None, typer.Argument(metavar="SENTENCE", help="Sentence to translate (or use --input).")
    ] = None,
    checkpoint: Annotated[
        Path, typer.Option(metavar="CHECKPOINT", help=CHECKPOINT_HELP, callback=resolve_checkpoint)
    ] = DEFAULT_CHECKPOINT,
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            metavar="FILE",
            help="File with one sentence a line (- or a pipe: read as it comes); writes JSON Lines.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write here instead of stdout (a file atomically; - is stdout)."
        ),
    ] = None,
    vectors: Annotated[
        bool,
        typer.Option(
            "--vectors/--no-vectors",
            help="Include every step's vectors (an RNN's h_t, C_t, [h_t; C_t], h~_t; a Transformer's embedding, position and each layer's) and the encoder states (json and npz).",
        ),
    ] = True,
    precision: Annotated[
        int | None, typer.Option(metavar="N", help="Round floats to this many decimals.", min=0, max=12)
    ] = None,
    top_k: Annotated[int, typer.Option(metavar="N", help="Next-word candidates kept per step.", min=1, max=100)] = 5,
    batch_size: Annotated[int, typer.Option(metavar="N", help="Sentences decoded together with --input.", min=1)] = 64,
    beam: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help=BEAM_HELP + " The trace gets a 'beam' block; its steps are the best hypothesis.",
            min=1,
            max=MAX_BEAM,
        ),
    ] = None,
    alpha: Annotated[float, typer.Option(metavar="ALPHA", help=ALPHA_HELP, min=0)] = DEFAULT_ALPHA,
    n_best: Annotated[
        int | None,
        typer.Option(
            "--n-best",
            metavar="N",
            help="With --beam K: the search's N best results (N at most K), best first. JSON: the beam's 'n_best' list, each result's step, index, translation, score and normalized score; --format text: N lines per input line, LINE<TAB>translation (<TAB>score with --scores), LINE the input line's number.",
            min=1,
            max=MAX_BEAM,
        ),
    ] = None,
    min_length: Annotated[
        int, typer.Option(metavar="N", help="<eos> is not chosen at the first N steps: at least N tokens.", min=0)
    ] = 0,
    max_length: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="At most N steps (<eos> counted): a translation without <eos> by then stops there, unfinished. Default: 2 × the source's tokens + 10; a Marian folder's max_length less its start token (N replaces it).",
            min=1,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            metavar="TRANSLATION",
            help="A given translation to score: every token forced (teacher forcing), then <eos>.",
        ),
    ] = None,
    edit: Annotated[
        list[str] | None,
        typer.Option(
            "--edit",
            metavar="SPEC",
            help="Edit a step's attention weights and decode on from it (repeatable; one SENTENCE, greedy). SPEC is STEP[@L<layer>[H<head>]]:OPERATION[=VALUE], steps, source positions, layers and heads counted from 1: 3:zero=WORD (or =POSITION; the rest renormalised), 3:one=WORD|POSITION (all the weight on it), 3:uniform, 3:temperature=0.5 (softmax(e/T)), 3:reverse, 3:permute=SEED, 3:weights=0.1,0.9,... (one per source token, summing to 1); a Transformer's names a layer and head, 3@L5H2:uniform, or every head of a layer, 3@L5:uniform. The trace's edited steps have an 'edit' block: the operation, the model's weights and the edited ones, and the model's own step ('before').",
        ),
    ] = None,
    format: Annotated[
        DumpFormat,
        typer.Option(
            "--format",
            help="json: the whole trace; pharaoh: a line of i-j links per sentence (source token i, target token j, 0-based; each target token's most attended source token; <eos> left out), as fast_align writes them; text: the translation, a line per input line (a blank line for a blank one); npz: every sentence's numbers as NumPy arrays in one file (-o FILE.npz), read by numpy.load(FILE, allow_pickle=False); with --beam, the best hypothesis's steps (not the beam's other hypotheses).",
        ),
    ] = DumpFormat.json,
    scores: Annotated[
        bool,
        typer.Option(
            "--scores",
            help="--format text: a tab and the translation's log-probability, log p(translation | sentence), after it.",
        ),
    ] = False,
    align_threshold: Annotated[
        float | None,
        typer.Option(
            metavar="P",
            help="--format pharaoh: also link every source token whose weight is at least this.",
            min=0,
            max=1,
        ),
    ] = None,
    words: Annotated[
        bool,
        typer.Option(
            "--words", help="--format pharaoh: link the sentence's words rather than a subword model's pieces."
        ),
    ] = False,
    align_layer: AlignLayer = None,
    align_head: AlignHead = None,
    threads: Threads = 0,
    device: OnDevice = Device.auto,
) -> None:
    """Write a translation's step-by-step trace, or its alignment. The trace is JSON (see `attnstep schema`); --format pharaoh writes the alignment, --format npz arrays."""
    from attnstep.commands.dump import (
        Decoding,
        dump_file,
        dump_sentence,
        json_format,
        npz_format,
        pharaoh_format,
        text_format,
    )

    if (sentence is None) == (input is None):
        raise UsageError("give either a SENTENCE or --input FILE")
    if target is not None and (input is not None or beam is not None):
        raise UsageError("--target goes with one SENTENCE and no --beam: every step is forced, so nothing is searched")
    if edit and (input is not None or beam is not None or target is not None):
        raise UsageError("--edit goes with one SENTENCE, greedy: no --input, --beam or --target")
    pharaoh = format == DumpFormat.pharaoh
    if not pharaoh and (words or align_threshold is not None):
        raise UsageError("--words and --align-threshold go with --format pharaoh")
    if scores and format != DumpFormat.text:
        raise UsageError("--scores goes with --format text")
    if n_best is not None and beam is None:
        raise UsageError("--n-best goes with --beam K: it lists the beam search's best results")
    if n_best is not None and beam is not None and n_best > beam:
        raise UsageError(f"--n-best must be at most --beam, {beam}, not {n_best}")
    if n_best is not None and format in (DumpFormat.pharaoh, DumpFormat.npz):
        raise UsageError("--n-best goes with --format json or text")
    if format == DumpFormat.npz and (output is None or str(output) == STDOUT):
        raise UsageError("--format npz writes a file, not standard output: give --output FILE.npz")
    if format == DumpFormat.npz and precision is not None:
        raise UsageError("--precision goes with --format json: npz keeps every number as the model computed it")
    if max_length is not None and max_length <= min_length:
        raise UsageError(f"--max-length must be over --min-length, {min_length} (the <eos> counts), not {max_length}")
    view = ViewChoice(align_layer, align_head)
    if view != AS_RECORDED and format == DumpFormat.text:
        raise UsageError("--align-layer and --align-head go with --format json, pharaoh or npz")
    if format == DumpFormat.json:
        form = json_format(precision, indent=input is None)
    elif pharaoh:
        form = pharaoh_format(words=words, threshold=align_threshold)
    elif format == DumpFormat.npz:
        form = npz_format()
    else:
        form = text_format(scores=scores, n_best=n_best is not None)
    # Links and text need no vectors to compute and copy.
    vectors = vectors and format in (DumpFormat.json, DumpFormat.npz)
    decoding = Decoding(
        top_k=top_k,
        vectors=vectors,
        beam=beam,
        alpha=alpha,
        min_length=min_length,
        max_length=max_length,
        n_best=n_best,
        device=device.value,
        threads=threads,
    )
    with as_usage_error(ViewChoiceError), as_usage_error(EditError):  # a layer or head it lacks; a bad --edit
        if input is not None:
            dump_file(checkpoint, input, output, form, decoding, batch_size=batch_size, view=view)
        else:
            assert sentence is not None  # given exactly one of the two, checked above
            dump_sentence(
                checkpoint, sentence, output, form, decoding, target=target, view=view, edits=tuple(edit or ())
            )


@app.command(cls=Command)
def probe(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="CHECKPOINT",
            help="A checkpoint to probe (repeatable: side by side), e.g. zoo/dot zoo/general zoo/concat zoo/additive; one without attention (zoo/none) is listed as having nothing to edit. Default: fr-en.",
        ),
    ] = None,
    input: Annotated[
        Path | None,
        typer.Option("--input", "-i", metavar="FILE", help="Probe these sentences, one a line, instead of --split."),
    ] = None,
    split: Annotated[
        str, typer.Option(metavar="SPLIT", help="The sentences of SPLIT.{source language}[.gz] in --data.")
    ] = "test_2016_flickr",
    data: Annotated[
        Path, typer.Option(metavar="DIR", help="Folder with {split}.{lang}[.gz] (default: Multi30k's).")
    ] = MULTI30K,
    limit: Annotated[int | None, typer.Option(metavar="N", help="Only the first N sentences.", min=1)] = None,
    batch_size: Annotated[int, typer.Option(metavar="N", help="Sentences decoded together.", min=1)] = 64,
    seed: Annotated[int, typer.Option(metavar="SEED", help="Seeds the random weight and permutations.", min=0)] = 0,
    plot: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Save the by-length chart as FILE.svg, or FILE.png (needs matplotlib)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every count as one JSON object instead.")] = False,
    threads: Threads = 0,
    device: OnDevice = Device.auto,
) -> None:
    """Does the attention explain the translation? Probe each step.

    At each step of each sentence's greedy decoding, one manipulation of that step's attention only: zero the largest weight (renormalised), zero a random one (the baseline), uniform, a random permutation. How often the word changes and the Jensen-Shannon divergence of the distribution (bits), split by content and function words (English targets, a stated list) and by source length: a table and a chart."""
    from attnstep.commands.probe import run_probe
    from attnstep.data.corpus import read_text_lines
    from attnstep.data.downloads import check_splits
    from attnstep.data.multi30k import split_sentences

    if as_json and plot is not None:
        raise UsageError("--json is the whole of stdout: it goes without --plot")
    paths = [resolve_checkpoint(path) for path in checkpoint or [DEFAULT_CHECKPOINT]]

    def sentences_in(language: str) -> tuple[str, list[str]]:
        if input is not None:
            name, lines = str(input), read_text_lines(input)
        else:
            check_splits(data, [split], [language])
            name, lines = split, split_sentences(data, split, language)
        return name, lines[:limit]

    run_probe(
        paths,
        sentences_in,
        batch_size=batch_size,
        seed=seed,
        as_json=as_json,
        plot=plot,
        device=device.value,
        threads=threads,
        to=sys.stdout,
    )


@app.command(cls=Command)
def compare(
    sentence: Annotated[str, typer.Argument(metavar="SENTENCE", help="Sentence to translate with every checkpoint.")],
    checkpoint: Annotated[
        list[str],
        typer.Option(
            metavar="CHECKPOINT",
            help="A checkpoint to compare (give two or more): a directory, or a name under checkpoints/ such as zoo/general.",
        ),
    ],
) -> None:
    """Translate one sentence with several models, side by side. Their translations, each step's top choice, and their alignment grids."""
    from attnstep.commands.compare import compare as comparison

    Console(highlight=False, markup=False).print(comparison(sentence, checkpoint))


@app.command(cls=Command)
def plot(
    trace_file: Annotated[
        Path, typer.Argument(metavar="TRACE.json", help="A trace written by `attnstep dump` (one JSON object).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help='FILE.svg, or FILE.png (needs matplotlib: pip install -e ".[plot]"); written atomically.',
        ),
    ],
    numbers: Annotated[bool, typer.Option("--numbers", help="Write each weight in its cell.")] = False,
    words: Annotated[
        bool,
        typer.Option(
            "--words/--pieces",
            help="A subword model's pieces gathered into words, or its pieces as the model saw them.",
        ),
    ] = True,
    align_layer: AlignLayer = None,
    align_head: AlignHead = None,
) -> None:
    """Draw a trace's alignment as a picture for slides. Source words across, output words down, a cell shaded by each weight."""
    from attnstep.report.plot import check_picture_path, write_alignment
    from attnstep.trace.reader import load

    check_picture_path(output)
    with as_usage_error(ViewChoiceError):  # an RNN's trace, or a layer or head it lacks
        trace = ViewChoice(align_layer, align_head).applied(load(trace_file))
    write_alignment(trace, output, words=words, numbers=numbers)
    print(f"alignment written to {visible(str(output))}")


@app.command("schema", cls=Command)
def print_schema() -> None:
    """Print the JSON Schema of the traces `attnstep dump` writes."""
    from attnstep.data.files import output
    from attnstep.trace.reader import schema

    with output(None, "w") as handle:
        handle.write(json.dumps(schema(), indent=2, ensure_ascii=False) + "\n")


@app.command(cls=Command)
def convert(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            metavar="CHECKPOINT",
            help="Checkpoint directory (or name under checkpoints/) to read.",
            callback=resolve_checkpoint,
        ),
    ],
    dtype: Annotated[
        StorageType, typer.Option(help="Storage type for the weights: float16, bfloat16 or float32.")
    ] = StorageType["float16"],
    out: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Write here instead of replacing CHECKPOINT (atomically).")
    ] = None,
) -> None:
    """Re-store a checkpoint's weights in another float type. They are always computed in float32."""
    from attnstep.commands.convert import convert as restore

    restore(checkpoint, dtype.value, out or checkpoint)
    print(f"wrote {visible(str(out or checkpoint))} with {dtype.value} weights")


serve_app = typer.Typer(invoke_without_command=True)
app.add_typer(serve_app, name="serve")


@serve_app.callback()
def serve(
    context: typer.Context,
    checkpoint: Annotated[
        Path,
        typer.Option(
            metavar="CHECKPOINT",
            help=CHECKPOINT_HELP + " Loaded once for the whole class.",
            callback=resolve_checkpoint,
        ),
    ] = DEFAULT_CHECKPOINT,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="SSH port.", min=0, max=65535)] = 8022,
    web: Annotated[
        int | None,
        typer.Option(
            metavar="PORT", help="Also serve the app to browsers on this port, on the same accounts.", min=0, max=65535
        ),
    ] = None,
    no_ssh: Annotated[bool, typer.Option("--no-ssh", help="Serve browsers only (with --web): no SSH port.")] = False,
    certfile: Annotated[
        Path | None, typer.Option(metavar="FILE", help="With --web: serve HTTPS with this certificate (PEM).")
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option(metavar="FILE", help="With --certfile: its private key, if not in the same file.")
    ] = None,
    authorized_keys: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="OpenSSH authorized_keys file; a path with %u is one file per user."),
    ] = None,
    passwords: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Passwords file (scrypt hashes), made with `attnstep serve add-user`."),
    ] = None,
    teacher: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="A teacher's user name (repeatable): students can follow their screen."),
    ] = None,
    allow_anonymous: Annotated[
        bool,
        typer.Option("--allow-anonymous", help="Let anyone in without a key or password (teachers still need one)."),
    ] = False,
    host_key: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Server key, made once (ed25519, mode 0600) and reused.")
    ] = None,
    max_sessions: Annotated[
        int, typer.Option(metavar="N", help="Sessions at once; more are refused with a message.", min=1)
    ] = 40,
    spares: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Student sessions started ahead, so that a class logging in at once sees the app at once (default: --max-sessions; ~20 MB each).",
            min=0,
        ),
    ] = None,
    idle_timeout: Annotated[
        float,
        typer.Option(
            metavar="MINUTES",
            help="Minutes without a key press before a session is closed (following a teacher is not idle).",
            min=0.05,
        ),
    ] = 60.0,
    session_memory: Annotated[
        int,
        typer.Option(metavar="MB", help="MB of memory a session may use before it is closed with a message.", min=100),
    ] = 400,
    session_cpu: Annotated[
        int,
        typer.Option(
            metavar="MINUTES", help="Minutes of CPU time a session may use before it is closed with a message.", min=1
        ),
    ] = 15,
    top_k: Annotated[int, typer.Option(metavar="N", help="Next-word candidates shown per step.", min=1, max=20)] = 5,
    beam: Annotated[int | None, typer.Option(metavar="K", help=BEAM_HELP, min=1, max=MAX_BEAM)] = None,
    threads: Annotated[
        int,
        typer.Option(metavar="N", help="CPU threads for the model (0: one, leaving the cores to the sessions).", min=0),
    ] = 0,
    device: OnDevice = Device.auto,
) -> None:
    """Serve the stepping app to a class over SSH. One model, one session per student, and a teacher to follow."""
    if context.invoked_subcommand is not None:
        return
    if web is None and (no_ssh or certfile or keyfile):
        raise UsageError(f"{'--no-ssh' if no_ssh else '--certfile' if certfile else '--keyfile'} goes with --web PORT")
    if keyfile is not None and certfile is None:
        raise UsageError("--keyfile goes with --certfile FILE")
    import logging

    from attnstep.serve.auth import default_host_key, load_accounts
    from attnstep.serve.auth import host_key as read_host_key
    from attnstep.serve.server import ServeSettings, run
    from attnstep.serve.zygote import Limits

    web_tls = None
    if certfile is not None:
        from attnstep.serve.web import tls_context

        web_tls = tls_context(certfile, keyfile)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    accounts = load_accounts(authorized_keys, passwords, teacher or [], allow_anonymous)
    key = read_host_key(host_key or default_host_key())
    if not (checkpoint / "config.json").is_file():
        raise AttnstepError(f"no checkpoint at {checkpoint}")
    ports = " or ".join([*([] if no_ssh else [str(port)]), *([] if web is None else [str(web)])])
    if allow_anonymous:
        logging.getLogger("attnstep.serve").warning(
            "WARNING: --allow-anonymous: anyone who can reach %s:%s gets a session without a key or password",
            host,
            ports,
        )
    settings = ServeSettings(
        checkpoint=checkpoint,
        accounts=accounts,
        host_key=key,
        host=host,
        port=None if no_ssh else port,
        web_port=web,
        web_tls=web_tls,
        max_sessions=max_sessions,
        idle_timeout=idle_timeout * 60,
        limits=Limits(memory_mb=session_memory, cpu_seconds=session_cpu * 60),
        spares=max_sessions if spares is None else spares,
    )
    try:
        signum = run(settings, top_k, beam, device=device.value, threads=threads)
    except OSError as exc:
        raise AttnstepError(f"cannot serve on {host}:{ports}: {exc.strerror or exc}") from None
    raise Stopped(signum)  # the class was ended cleanly; the status and the line say how, as for any command


@serve_app.command("add-user", cls=Command)
def serve_add_user(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user name to log in with.")],
    passwords: Annotated[
        Path, typer.Option(metavar="FILE", help="Passwords file to write the scrypt hash to (made mode 0600).")
    ],
) -> None:
    """Add NAME to the passwords file, or change its password. It is asked for twice, never echoed."""
    from attnstep.serve.auth import add_user, check_new_user

    check_new_user(passwords, name)  # before the password is asked for, twice
    password = typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    add_user(passwords, name, password)
    print(f"{name} can log in with that password (stored as a scrypt hash in {passwords})")


data_app = typer.Typer(
    help="Public corpora for training and evaluation. `attnstep data get NAME` fetches one into your cache."
)
app.add_typer(data_app, name="data")


@data_app.command("get", cls=Command)
def data_get(
    name: Annotated[str, typer.Argument(metavar="NAME", help=f"Which corpus: {' or '.join(DATASETS)}.")],
    mirror: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Fetch the same files from this base URL instead of their origin (sha256s are still checked).",
        ),
    ] = None,
) -> None:
    """Download a corpus into your cache and check every sha256. It goes from its origin into $XDG_CACHE_HOME/attnstep/data/NAME (~/.cache/…), with its license and citation beside it."""
    from attnstep.data.downloads import get

    get(name, mirror=mirror, say=lambda line: print(visible(line)))


class Stopped(SystemExit):
    """A stop signal. A SystemExit because Click would swallow a KeyboardInterrupt without a word, and
    asyncio would keep any other exception inside the task it hit: the app would not stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


# Each ends a command as Ctrl-C does: partial output is discarded, and one line says why.
STOP_SIGNALS: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


def _stop(signum, frame) -> None:
    asyncio = sys.modules.get("asyncio")
    try:
        loop = asyncio.get_running_loop() if asyncio else None
    except RuntimeError:
        loop = None
    if loop is None:
        raise Stopped(signum)
    # The app's event loop runs here: raise from a loop callback, not from wherever the signal
    # landed, which may be one of Textual's message handlers (it would report the app as crashed).
    loop.call_soon_threadsafe(_raise, Stopped(signum))


def _raise(exc: BaseException) -> None:
    raise exc


def main() -> None:
    """Console entry point: a stop signal ends with one line and status 128 + its number."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    try:
        app()
    except Stopped as stop:
        with contextlib.suppress(OSError, ValueError):  # after SIGHUP the terminal may be gone
            err.print(f"attnstep: {STOP_SIGNALS[stop.signum]}", markup=False)
            sys.stdout.flush()
            sys.stderr.flush()
        # Partial files are already removed (the exception unwound through their writers). Exit
        # now: interpreter shutdown would report each of a stopped app's asyncio tasks as lost.
        os._exit(128 + stop.signum)
    finally:
        _flush_stdout()


def _flush_stdout() -> None:
    """Output printed to a full disk or a closed pipe fails here, not in Python's shutdown with a traceback."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        discard_stdout()
        if not isinstance(exc, BrokenPipeError):  # a reader that stopped reading (`| head`) needs no word
            say_error(f"cannot write standard output: {exc.strerror or exc}")
        raise SystemExit(1) from None
