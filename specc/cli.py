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

MACs count the multiply-adds of conv and fc layers only (1 MAC = 2 FLOPs:
torchvision's documented GFLOPS, and PyTorch's FlopCounterMode / 2); layers
whose cost is not counted show – in `specc summary`.

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
@click.option("--sizes", is_flag=True,
              help="Instead of one line, the input sizes each spec accepts: per axis (C, H, W, and square "
                   "HxW), the sizes in 1..--max-side that pass shape inference, as ranges, and the layer "
                   "that refuses the others.")
# 16384 is specc.tools.sizes.MAX_SIDE_LIMIT (not imported here, to keep `specc --help` light).
@click.option("--max-side", type=click.IntRange(1, 16384), default=1024, show_default=True,
              help="With --sizes: the largest size searched on each axis.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="With --sizes: text for people, json for tools.")
def check(files, input_shape, assignments, recipe, sizes, max_side, fmt) -> None:
    from .tools.summary import check_line

    if sizes:
        sys.exit(_check_sizes(files, input_shape, parse_assignments(assignments), recipe, max_side, fmt))
    if fmt != "text":
        raise click.UsageError("--format json goes with --sizes")
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


def _check_sizes(files, input_shape, params, recipe, max_side, fmt) -> int:
    """`check --sizes`: each spec's accepted sizes; the exit status is 1 when a spec fails at its own input."""
    import json
    from .tools.sizes import report_dict, report_text, size_report

    failed, documents = 0, []
    for path in files:
        try:
            report = size_report(path, input_shape, params, max_side)
        except SpecError as err:  # it does not parse or expand: there is no network to search
            click.echo(str(err), err=True)
            failed += 1
            documents.append({"path": path, "ok": False, "error": str(err), "axes": None})
            continue
        if report.declared_error is not None:
            click.echo(str(report.declared_error), err=True)
        bad_recipe = recipe and report.net is not None and _recipe_or_exit(report.net) is None
        failed += report.declared_error is not None or bad_recipe
        if fmt == "json":
            documents.append(report_dict(report))
        else:
            click.echo(report_text(report))
    if fmt == "json":
        click.echo(json.dumps(documents, indent=2))
    return 1 if failed else 0


@main.command(help="""Print the per-layer table of a spec and its totals.

For every layer: its path in the built module, the op with its values
(--as-written: as the spec writes it), output shape, parameters, MACs, its output's memory at --batch and what autograd
keeps of it for backward (each tensor counted once, at the first layer that
keeps it); then totals and the estimated peak of a float32 training step
(weights, gradients, optimizer state, saved tensors, the batch and backward's
gradients in flight) for --optimizer, by default the spec's train recipe's.

MACs are multiply-accumulates of conv and linear layers only (1 MAC = 2
FLOPs; torchvision's GFLOPS, PyTorch's FlopCounterMode / 2); layers whose
cost is not counted show '–'.

\b
Examples:
  specc summary specs/vgg16.cnn --batch 64
  specc summary specs/resnet18.cnn --format markdown
  specc summary specs/torchvision/resnet50.cnn --depth 1
  specc summary specs/lenet.cnn --set classes=100 --format json

--format json writes the IR (docs/ir.md) with a 'training' section.""")
@click.argument("file", type=click.Path())
@input_option
@set_option
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Batch size for activation and training memory.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="table for people, json for tools, markdown for READMEs.")
@click.option("--optimizer", type=click.Choice(["sgd", "sgd-momentum", "adam", "adamw"]), default=None,
              help="Optimizer the memory estimate assumes: its state is none (sgd), one value per parameter "
                   "(sgd-momentum) or two (adam, adamw). Default: the spec's train recipe's, else sgd.")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Fold everything deeper than N module-path names into one row with its totals (like "
                   "torchinfo's depth): --depth 1 shows each block call once. Default: every layer.")
@click.option("--as-written", is_flag=True,
              help="Show each op as the spec writes it (conv 1x1 c1) instead of with its values (conv 1x1 64).")
def summary(file, input_shape, assignments, batch, fmt, optimizer, depth, as_written) -> None:
    from .tools.summary import summary_json, summary_table

    net = load_or_exit(file, input_shape, assignments)
    if net is None:
        sys.exit(1)
    click.echo(summary_json(net, batch, optimizer) if fmt == "json"
               else summary_table(net, batch, fmt == "markdown", optimizer, depth, as_written))


# --- draw -------------------------------------------------------------------------------
DRAW_SUFFIXES = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}


@main.command(help="""Draw a spec as a diagram: SVG, PNG or Graphviz DOT.

One box per layer, labelled the way the d2l figures read (`3x3 conv, 384,
pad 1`, `fc 4096`), the output shape on every arrow, the input at the bottom
(or on the left with --horizontal), the branches of a merge side by side, a
colour per kind of layer, activations attached to the layer before them.
Block calls are dashed frames, or one box each at --depth. A spec whose shapes
do not check is drawn up to the failing layer, highlighted, with the
diagnostic after it; the diagnostic is printed and the exit status is 1.
SVG and DOT need neither torch nor graphviz; PNG is rendered with matplotlib.

\b
Examples:
  specc draw specs/alexnet.cnn -o alexnet.svg
  specc draw specs/torchvision/densenet201.cnn --depth 1 -o densenet201.png
  specc draw specs/googlenet.cnn --horizontal --params -o googlenet.svg
  specc draw specs/resnet18.cnn --format dot | dot -Tpdf -o resnet18.pdf""")
@click.argument("file", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write: FILE.svg, FILE.png or FILE.dot. Without it SVG or DOT goes to stdout.")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "dot"]),
              help="Default: from the suffix of -o, else svg.")
@click.option("--depth", type=click.IntRange(min=1), metavar="N",
              help="Draw block calls nested N deep as one box each (name, arguments, output shape, xK for "
                   "K repetitions); --depth 1: every top-level call. Default: every layer.")
@click.option("--horizontal", is_flag=True, help="The input on the left, flowing right (default: at the bottom).")
@click.option("--params", is_flag=True, help="Show the parameter count of each box.")
@input_option
@set_option
def draw(file, output, fmt, depth, horizontal, params, input_shape, assignments) -> None:
    from .tools.draw import DrawError, draw_spec

    fmt = _draw_format(output, fmt)
    try:
        drawn = draw_spec(file, fmt, depth, horizontal, params, input_shape, parse_assignments(assignments))
    except DrawError as err:
        raise click.ClickException(str(err)) from None
    if drawn.content is not None:
        _write_drawing(drawn.content, output)
        if output is not None:
            click.echo(f"wrote {output}" + (" (drawn up to the error below)" if drawn.error else ""))
    if drawn.error is not None:
        click.echo(str(drawn.error), err=True)
        sys.exit(1)


def _draw_format(output: str | None, fmt: str | None) -> str:
    from pathlib import Path

    named = DRAW_SUFFIXES.get(Path(output).suffix.lower()) if output else None
    if fmt is None:
        if output and named is None:
            raise click.UsageError(f"cannot tell the format from the name {output!r}: "
                                   f"write to FILE.svg, FILE.png or FILE.dot, or give --format")
        fmt = named or "svg"
    elif named is not None and named != fmt:
        raise click.UsageError(f"--format {fmt} but {output!r} ends in {Path(output).suffix}")
    if fmt == "png" and not output:
        raise click.UsageError("a PNG is written to a file: give -o FILE.png")
    return fmt


def _write_drawing(content, output: str | None) -> None:
    if output is None:
        click.echo(content, nl=False)
        return
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with open(output, "wb") as file:
            file.write(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None


# --- fmt ------------------------------------------------------------------------------
@main.command("fmt", help="""Rewrite specs in specc's one layout, in place (like black).

Keeps the line breaks (a line is a stage) and the comments; starts
continuation lines with `->`, normalises spacing, indents block bodies by 4,
aligns `: SHAPE` annotations and trailing comments within a chain. Only the
layout changes, never a token, so the spec describes the same network; a spec
that fails shape analysis is formatted all the same. A DIRECTORY stands for
its .cnn files (recursively); - reads stdin and writes stdout. A file that
does not parse is left as it is, with its diagnostic, and the exit status is 1.

\b
Examples:
  specc fmt specs/lenet.cnn
  specc fmt --check specs/      (CI: exit 1, listing the files that would change)
  specc fmt --diff net.cnn
  specc fmt - < net.cnn > formatted.cnn""")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--check", is_flag=True, help="Write nothing; list the files that would change and exit 1 if any.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
def fmt(files, check, show_diff) -> None:
    from .tools.fmt import format_paths

    sys.exit(format_paths(files, check=check, diff=show_diff, out=lambda text: click.echo(text, nl=False),
                          err=lambda text: click.echo(text, err=True)))


# --- training -------------------------------------------------------------------------
def _training_errors(fn):
    """Turns the training phases' errors into a message and exit status 1, Ctrl-C into a message
    saying what was saved and exit status 130 (see specc/train/interrupt.py)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .train import interrupt
        try:
            with interrupt.guard(click.echo):
                return fn(*args, **kwargs)
        except SpecError as err:
            click.echo(str(err), err=True)
            sys.exit(1)
        except TrainError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            if not interrupt.status.explained:
                click.echo(interrupt.status.message())
            sys.exit(interrupt.EXIT_STATUS)
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
--overwrite is given. The directory is made when the initial weights are
saved, after the header and the step-time measurement. Ctrl-C at any moment
stops within seconds and says what was saved; --resume RUN_DIR (or SPEC
--resume RUN_DIR, where SPEC must be the run's own spec) continues a run with
the recipe, --limit and --data it started with: only --epochs may change, and
--data may point at the same data in a new place.

The header's time estimate comes from one measured step (at a smaller batch,
scaled, where a full step would be long). Progress: a bar when stdout is a
terminal, otherwise a line every 30 s or every tenth of an epoch.

\b
Examples:
  specc train specs/lenet.cnn
  specc train specs/alexnet.cnn --epochs 2 --batch 64 --device cuda
  specc train specs/lenet.cnn --lr 0.1 --optimizer adam --schedule cosine
  specc train --resume runs/lenet-20261124-101500 --epochs 20
  specc train specs/lenet.cnn --resume runs/lenet-20261124-101500 --epochs 20
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
              help="Memory format of activations and weights (default: channels_last for image inputs on CUDA "
                   "and the CPU, where oneDNN's convolutions run faster on it; a resumed run keeps its own).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, help="Processes (DistributedDataParallel via torchrun).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Use only the first N training and N test examples (quick trials).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stdout is a terminal; plain lines otherwise); "
                   "--no-progress prints only the epoch lines.")
@_training_errors
def train(spec, data_name, assignments, input_shape, data_dir, device, out, overwrite, resume, init_from,
          use_compile, channels_last, nproc, limit, progress, **recipe_flags) -> None:
    if nproc > 1:
        _relaunch_with_torchrun(nproc)
    if spec is None and resume is None:
        raise click.UsageError("give a SPEC to start a run, or --resume RUN_DIR to continue one")
    starting_only = {"--out": out, "--overwrite": overwrite or None, "--set": assignments or None,
                     "--input": input_shape, "--init-from": init_from}
    if resume and any(v is not None for v in starting_only.values()):
        given = ", ".join(k for k, v in starting_only.items() if v is not None)
        raise click.UsageError(f"{given}: only for starting a run; --resume continues {resume} as it started")
    overrides = {**recipe_flags, "data": data_name}  # recipe_options: one flag per schema key
    from .train import interrupt, launch
    from .train.plot import plotter

    if launch.is_main_process():
        plotter.start()  # its matplotlib import runs on the idle core while this process imports PyTorch
    if not resume:  # the network and recipe lines come before the seconds PyTorch takes to import
        net, recipe = launch.open_spec(spec, parse_assignments(assignments), overrides, input_shape, click.echo,
                                       init_from)
        from .train import data
        data.read_ahead(recipe["data"], data_dir)  # decompressed on the second core while torch imports
    interrupt.doing("importing PyTorch")
    from .train import loop as training

    options = training.Options(data_dir=data_dir, device=device, out=out, compile=use_compile,
                               channels_last=channels_last, init_from=init_from, overwrite=overwrite,
                               train_limit=limit, test_limit=limit, progress=progress, echo=click.echo)
    if resume:
        run = training.resume(resume, overrides, options, spec_path=spec)
    else:
        run = training.begin(net, recipe, parse_assignments(assignments), options)
    import gc
    gc.freeze()  # what exists now (PyTorch's modules, the model) lives to the end: the exit skips collecting it
    run.fit()
    if _specc_is_the_program() and run.procs.world == 1 and not use_compile:
        _exit_without_teardown()


def _specc_is_the_program() -> bool:
    """True when this process is `specc ...` or `python -m specc ...`, not a test runner or a script
    that called the command as a function (it must get control back)."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if main_spec is not None:
        return main_spec.name == "specc.__main__"
    import os
    return os.path.basename(sys.argv[0]) == "specc"  # the console script


def _exit_without_teardown() -> None:
    """Ends a finished run at once: the interpreter's teardown of PyTorch takes ~0.4 s and has nothing
    left to do (the run's files are written and closed, the plotting helper has answered, and a
    single process on a CPU or GPU holds nothing that needs releasing). Output is flushed first."""
    import os
    from .train.plot import plotter
    plotter.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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
    click.echo(f"{result['checkpoint']} (epoch {result['epoch']}): test accuracy {result['accuracy']:.3f} "
               f"on {result['examples']:,} examples\n")
    counts = [sum(row) for row in result["confusion"]]
    # floatfmt: every accuracy with three decimals (tabulate would print 0.9 next to 0.875)
    click.echo(tabulate(list(zip(result["classes"], result["per_class"], counts)),
                        headers=["class", "accuracy", "examples"], floatfmt=".3f", intfmt=","))
    click.echo("\nconfusion matrix (rows: true class, columns: predicted)")
    short = [str(i) for i in range(len(result["classes"]))]
    rows = [[f"{i} {c}", *row] for i, (c, row) in enumerate(zip(result["classes"], result["confusion"]))]
    click.echo(tabulate(rows, headers=["", *short]))


@main.command(help="""Classify image files with a run's checkpoint.

Each image is converted to the spec's channels (grey-scale or RGB) and resized
(bilinearly) to its input; prints the top classes with their probabilities.
Fashion-MNIST and MNIST items are light on a dark background: for a photo of
a dark item on a light background pass --invert (specc says so when an
image's border is light).

\b
Example:
  specc predict runs/lenet-20261124-101500 shoe.png shirt.jpg --top 3
  specc predict runs/lenet-20261124-101500 boot-photo.jpg --invert""")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--top", default=3, show_default=True, type=click.IntRange(min=1), help="Classes to show per image.")
@click.option("--invert", is_flag=True, help="Invert each image (255 - value) first: dark items on a light "
                                             "background become light on dark, like Fashion-MNIST's.")
@which_option
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@_training_errors
def predict(run_dir, images, top, invert, which, device) -> None:
    from .train.evaluate import predict as predict_images

    predicted = predict_images(run_dir, list(images), top, which, device, invert=invert)
    click.echo(predicted["preparation"], err=True)  # stderr: stdout stays one line per image
    for result in predicted["results"]:
        ranked = ", ".join(f"{name} {p:.3f}" for name, p in result["top"])
        click.echo(f"{result['image']}: {ranked}")
        if result["light_border"]:
            click.echo(f"note: {result['image']} has a light border, unlike the training images' dark "
                       f"background; if it shows a dark item on a light background, try --invert", err=True)


@main.command(help="""Run the language server (LSP) on stdin/stdout, for editors.

Diagnostics as you type (the errors `specc check` reports), each line's output
shape as an inlay hint, hovers with shapes, parameters, MACs and the PyTorch
module, completion, go to definition, symbols, rename and formatting.
Editors start it as `specc lsp` for *.cnn files; see docs/editors.md.""")
@click.option("--stdio", is_flag=True, help="Accepted for clients that pass it; stdio is the only transport.")
def lsp(stdio) -> None:
    from .tools.lsp.server import serve

    sys.exit(serve())


@main.command(help="""Export a spec, or a run's trained network, to PyTorch code, ONNX or specc's JSON IR.

\b
--to pytorch  a standalone .py (needs only torch): an nn.Module class named
              after the network whose state_dict keys are specc's, so specc's
              weights load with strict=True; from a RUN_DIR the checkpoint's
              weights are written beside it as .safetensors.
--to onnx     torch.onnx.export with a dynamic batch axis, checked with
              onnxruntime (needs: pip install "specc[onnx]").
--to json     the layer tree with shapes, arguments and costs (docs/ir.md),
              to -o or to stdout.

From a spec, --seed N fixes the initial weights (those of net.build() under
torch.manual_seed(N)); from a RUN_DIR the --checkpoint (best by default) is used.

\b
Examples:
  specc export specs/resnet18.cnn --to pytorch -o resnet18.py
  specc export runs/lenet-20261124-101500 --to onnx -o lenet.onnx
  specc export specs/lenet.cnn --to json""")
@click.argument("source", type=click.Path(exists=True), metavar="SPEC|RUN_DIR")
@click.option("--to", "target", required=True, type=click.Choice(["pytorch", "onnx", "json"]), help="What to write.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The file to write (json: stdout without it).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1),
              help="Seed of the initial weights (from a spec).")
@which_option
@input_option
@set_option
@_training_errors
def export(source, target, output, seed, which, input_shape, assignments) -> None:
    from pathlib import Path

    run_dir = Path(source).is_dir()
    if run_dir and (input_shape or assignments):
        raise click.UsageError("--input and --set are for a spec; a run directory's network is fixed by its checkpoint")
    suffix = {"pytorch": ".py", "onnx": ".onnx"}.get(target)
    if output is None and target != "json":
        raise click.UsageError(f"--to {target} needs -o FILE{suffix}")
    if suffix and Path(output).suffix != suffix:
        raise click.BadParameter(f"--to {target} writes a {suffix} file, got {output!r}", param_hint="-o")
    net = None if run_dir else load_or_exit(source, input_shape, assignments)
    if not run_dir and net is None:
        sys.exit(1)
    if target == "json" and net is not None:  # torch-free: a spec's IR needs only the static analysis
        _write_ir(net, output)
        return
    from .runtime.export import ExportError, run_command

    try:
        lines = run_command(source, target, Path(output) if output else None, seed, which, net)
    except ExportError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)


def _write_ir(net, output: str | None) -> None:
    from .tools.ir import ir_json

    if output is None:
        click.echo(ir_json(net))
        return
    try:
        with open(output, "w") as f:
            f.write(ir_json(net) + "\n")
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {output} (specc-ir/1)")
