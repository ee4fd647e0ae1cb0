"""The `specc` command line. Only `build`-like commands import torch."""
from __future__ import annotations

import functools
import sys

import click

from . import __version__
from .lang.errors import SpecError, TrainError

EXAMPLE_SPEC = """\b
  input 1x28x28
  conv 5x5 6 p2 -> sigmoid -> avgpool 2 s2
  -> conv 5x5 16 -> sigmoid -> avgpool 2 s2   : 16x5x5
  -> flatten -> fc 120 -> sigmoid -> fc 84 -> sigmoid -> fc 10"""


@click.group(help=f"""specc compiles .cnn architecture specs: checks every shape statically,
reports parameters and cost, builds PyTorch modules and trains them.

A spec reads like the paper's diagram:

{EXAMPLE_SPEC}

\b
Examples:
  specc check specs/*.cnn
  specc summary specs/alexnet.cnn --batch 128
  specc summary specs/lenet.cnn --input 1x32x32 --set classes=100 --format json
  specc train specs/lenet.cnn
  specc eval runs/lenet-20261124-101500

The language is described in docs/language.md.""")
@click.version_option(__version__, prog_name="specc")
def main() -> None:
    pass


def parse_assignments(pairs: tuple[str, ...]) -> dict:
    """--set NAME=VALUE pairs -> {name: int | float | bool}."""
    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--set")
        values[name.strip()] = parse_value(text.strip())
    return values


def parse_value(text: str):
    if text in ("true", "false"):
        return text == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    raise click.BadParameter(f"{text!r} is not a number, true or false", param_hint="--set")


def parse_shape(ctx, param, text: str | None):
    if text is None:
        return None
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected CxHxW or a number of features, got {text!r}") from None
    return shape


set_option = click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE",
                          help="Override a `param` of the spec, e.g. --set classes=100 (repeatable).")
input_option = click.option("--input", "input_shape", callback=parse_shape, metavar="CxHxW",
                            help="Override the spec's `input` line, e.g. --input 3x32x32.")


def _recipe_or_exit(net):
    from .train.recipe import resolve

    try:
        resolve(net)
    except SpecError as err:
        click.echo(str(err), err=True)
        return None
    return net


def load_or_exit(path: str, input_shape, assignments) -> "Network | None":
    from .network import load

    try:
        return load(path, input_shape=input_shape, **parse_assignments(assignments))
    except SpecError as err:
        click.echo(str(err), err=True)
        return None


@main.command(help=f"""Check specs statically and print one line each.

Parses every FILE, infers every layer's shape and reports parameters and
multiply-accumulates (MACs) per sample, without loading PyTorch. Mistakes are
reported as FILE:LINE:COL: error: ... and make the exit status 1.

\b
Example:
  $ specc check specs/lenet.cnn
  specs/lenet.cnn: ok  1x28x28 -> 10  61,706 params  416.52K MACs  12 layers""")
# Plain paths: specc.load refuses directories, devices and FIFOs itself, with exit status 1 like any unreadable spec.
@click.argument("files", nargs=-1, required=True, type=click.Path())
@input_option
@set_option
@click.option("--recipe", is_flag=True,
              help="Also validate each spec's `train { }` section against the recipe schema.")
def check(files, input_shape, assignments, recipe) -> None:
    from .tools.summary import check_line

    failed = 0
    for path in files:
        net = load_or_exit(path, input_shape, assignments)
        if net is not None and recipe:
            net = _recipe_or_exit(net)
        if net is None:
            failed += 1
        else:
            click.echo(check_line(net))
    sys.exit(1 if failed else 0)


@main.command(help="""Print the per-layer table of a spec and its totals.

For every layer: its path in the built module, the op as written, output
shape, parameters, MACs and activation memory at --batch; then totals and an
estimate of float32 training memory (weights, gradients, SGD momentum,
saved activations).

\b
Examples:
  specc summary specs/vgg16.cnn --batch 64
  specc summary specs/resnet18.cnn --format markdown
  specc summary specs/lenet.cnn --set classes=100 --format json""")
@click.argument("file", type=click.Path())
@input_option
@set_option
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Batch size for activation and training memory.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="table for people, json for tools, markdown for READMEs.")
def summary(file, input_shape, assignments, batch, fmt) -> None:
    from .tools.summary import summary_json, summary_table

    net = load_or_exit(file, input_shape, assignments)
    if net is None:
        sys.exit(1)
    click.echo(summary_json(net, batch) if fmt == "json" else summary_table(net, batch, fmt == "markdown"))


# --- training -------------------------------------------------------------------------
def _training_errors(fn):
    """Turns the training phases' errors into a message and exit status 1, Ctrl-C into status 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecError as err:
            click.echo(str(err), err=True)
            sys.exit(1)
        except TrainError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)
    return wrapper


def recipe_options(fn):
    """One flag per key of the recipe schema (specc/train/train.schema.json)."""
    flags = [
        click.option("--dataset", "data_name", metavar="NAME",
                     help="Overrides the recipe's `data`: fashion-mnist (default), mnist, cifar10 or imagefolder:PATH."),
        click.option("--batch", type=int, help="Examples per step (over all processes)."),
        click.option("--epochs", type=int, help="Passes over the training set."),
        click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]), help="Default: sgd (d2l's)."),
        click.option("--lr", type=float, help="Learning rate."),
        click.option("--momentum", type=float, help="SGD momentum (default 0, as in d2l)."),
        click.option("--weight-decay", type=float, help="L2 penalty (decoupled for adamw)."),
        click.option("--schedule", type=click.Choice(["constant", "cosine", "step"]), help="Learning-rate schedule."),
        click.option("--step-size", type=int, help="Epochs between decays of the step schedule."),
        click.option("--gamma", type=float, help="Decay factor of the step schedule."),
        click.option("--label-smoothing", type=float, help="Cross-entropy label smoothing."),
        click.option("--init", type=click.Choice(["xavier", "default"]),
                     help="xavier (d2l's, default) or PyTorch's default initialisation."),
        click.option("--seed", type=int, help="Seed of initialisation, shuffling and dropout."),
        click.option("--channels", type=click.Choice(["refuse", "replicate", "average"]),
                     help="Fit the data's channels to the spec's: replicate 1->3, average 3->1."),
    ]
    for flag in reversed(flags):
        fn = flag(fn)
    return fn


@main.command(help="""Train a spec on real data and write a run directory.

The recipe comes from the spec's `train { }` section (d2l's defaults where it
is silent: plain SGD, cross-entropy, xavier init) and any flag below
overrides it (`data` is --dataset). Fashion-MNIST is found via --data DIR, $SPECC_DATA, Debian's
package dataset-fashion-mnist, or torchvision's usual folders.

The run directory (--out, default runs/NETWORK-TIMESTAMP/) gets
metrics.jsonl, curves.png and last/best.safetensors checkpoints (each with a
sha256 of its tensors, checked on every load) and readable JSON copies of
their metadata. An --out that already holds a run is refused unless
--overwrite is given. Ctrl-C saves a checkpoint; --resume RUN_DIR continues a
run with the recipe, --limit and --data it started with: only --epochs may
change, and --data may point at the same data in a new place.

\b
Examples:
  specc train specs/lenet.cnn
  specc train specs/alexnet.cnn --epochs 2 --batch 64 --device cuda
  specc train specs/lenet.cnn --lr 0.1 --optimizer adam --schedule cosine
  specc train --resume runs/lenet-20261124-101500 --epochs 20
  specc train specs/resnet18.cnn --nproc 2      (DistributedDataParallel)
  specc train specs/lenet.cnn --init-from runs/lenet-20261124-101500/best.safetensors""")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@recipe_options
@set_option
@input_option
@click.option("--data", "data_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Directory holding the dataset's files (for Fashion-MNIST: the four IDX files).")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default runs/NETWORK-TIMESTAMP).")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out (its checkpoints and metrics).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), metavar="RUN_DIR",
              help="Continue the run in RUN_DIR from its last checkpoint, with its recipe, --limit and --data "
                   "(only --epochs may change; --data may name the data's new place).")
@click.option("--init-from", type=click.Path(dir_okay=False, exists=True), metavar="PATH",
              help="Start from these weights (.safetensors or .pt state_dict, e.g. a torchvision "
                   "model's), matched to the spec by order and shape.")
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the model.")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Memory format of activations (default: channels_last on CUDA only).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, help="Processes (DistributedDataParallel via torchrun).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Use only the first N training and N test examples (quick trials).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stdout is a terminal; plain lines otherwise).")
@_training_errors
def train(spec, data_name, assignments, input_shape, data_dir, device, out, overwrite, resume, init_from,
          use_compile, channels_last, nproc, limit, progress, **recipe_flags) -> None:
    if nproc > 1:
        _relaunch_with_torchrun(nproc)
    if (spec is None) == (resume is None):
        raise click.UsageError("give a SPEC to start a run, or --resume RUN_DIR to continue one")
    starting_only = {"--out": out, "--overwrite": overwrite or None, "--set": assignments or None,
                     "--input": input_shape, "--init-from": init_from}
    if resume and any(v is not None for v in starting_only.values()):
        given = ", ".join(k for k, v in starting_only.items() if v is not None)
        raise click.UsageError(f"{given}: only for starting a run; --resume continues {resume} as it started")
    overrides = {**recipe_flags, "data": data_name}  # recipe_options: one flag per schema key
    from .train import loop as training  # imports torch

    options = training.Options(data_dir=data_dir, device=device, out=out, compile=use_compile,
                               channels_last=channels_last, init_from=init_from, overwrite=overwrite,
                               train_limit=limit, test_limit=limit, progress=progress, echo=click.echo)
    if resume:
        run = training.resume(resume, overrides, options)
    else:
        run = training.start(spec, parse_assignments(assignments), overrides, options, input_shape)
    run.fit()


def _relaunch_with_torchrun(nproc: int) -> None:
    """--nproc N: run this same command under torchrun with N processes."""
    import os
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        args.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "specc", *args]
    os.execv(sys.executable, command)


which_option = click.option("--checkpoint", "which", type=click.Choice(["best", "last"]), default="best",
                            show_default=True, help="Which checkpoint of the run to use.")


@main.command("eval", help="""Evaluate a run's checkpoint on the test set.

Prints test accuracy, per-class accuracy and the confusion matrix (rows:
true class, columns: predicted).

\b
Example:
  specc eval runs/lenet-20261124-101500""")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@which_option
@click.option("--data", "data_dir", type=click.Path(file_okay=False), metavar="DIR", help="Dataset directory.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@_training_errors
def evaluate_command(run_dir, which, data_dir, device, as_json) -> None:
    import json
    from tabulate import tabulate
    from .train.evaluate import evaluate

    result = evaluate(run_dir, which, data_dir, device)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['checkpoint']} (epoch {result['epoch']}): test accuracy {result['accuracy']:.4f} "
               f"on {result['examples']:,} examples\n")
    click.echo(tabulate([(c, f"{a:.3f}") for c, a in zip(result["classes"], result["per_class"])],
                        headers=["class", "accuracy"]))
    click.echo("\nconfusion matrix (rows: true class, columns: predicted)")
    short = [str(i) for i in range(len(result["classes"]))]
    rows = [[f"{i} {c}", *row] for i, (c, row) in enumerate(zip(result["classes"], result["confusion"]))]
    click.echo(tabulate(rows, headers=["", *short]))


@main.command(help="""Classify image files with a run's checkpoint.

Each image is converted to the spec's channels (grey or RGB) and resized to
its input; prints the top classes with their probabilities.

\b
Example:
  specc predict runs/lenet-20261124-101500 shoe.png shirt.jpg --top 3""")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--top", default=3, show_default=True, type=click.IntRange(min=1), help="Classes to show per image.")
@which_option
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@_training_errors
def predict(run_dir, images, top, which, device) -> None:
    from .train.evaluate import predict as predict_images

    for result in predict_images(run_dir, list(images), top, which, device):
        ranked = ", ".join(f"{name} {p:.3f}" for name, p in result["top"])
        click.echo(f"{result['image']}: {ranked}")
