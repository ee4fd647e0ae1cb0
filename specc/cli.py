"""The `specc` command line. Only `build`-like commands import torch."""
from __future__ import annotations

import sys

import click

from . import __version__
from .errors import SpecError

EXAMPLE_SPEC = """\b
  input 1x28x28
  conv 5x5 6 p2 -> sigmoid -> avgpool 2 s2
  -> conv 5x5 16 -> sigmoid -> avgpool 2 s2   : 16x5x5
  -> flatten -> fc 120 -> sigmoid -> fc 84 -> sigmoid -> fc 10"""


@click.group(help=f"""specc compiles .cnn architecture specs: checks every shape statically,
reports parameters and cost, and builds PyTorch modules.

A spec reads like the paper's diagram:

{EXAMPLE_SPEC}

\b
Examples:
  specc check specs/*.cnn
  specc summary specs/alexnet.cnn --batch 128
  specc summary specs/lenet.cnn --input 1x32x32 --set classes=100 --format json

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
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@input_option
@set_option
def check(files, input_shape, assignments) -> None:
    from .report import check_line

    failed = 0
    for path in files:
        net = load_or_exit(path, input_shape, assignments)
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
@click.argument("file", type=click.Path(dir_okay=False))
@input_option
@set_option
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Batch size for activation and training memory.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="table for people, json for tools, markdown for READMEs.")
def summary(file, input_shape, assignments, batch, fmt) -> None:
    from .report import summary_json, summary_table

    net = load_or_exit(file, input_shape, assignments)
    if net is None:
        sys.exit(1)
    click.echo(summary_json(net, batch) if fmt == "json" else summary_table(net, batch, fmt == "markdown"))
