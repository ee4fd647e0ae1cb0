"""What `specc train` does before PyTorch is imported (which takes seconds): load and check the
spec, resolve its recipe and print the header's first lines, so that a user sees at once what
will run, and a mistake in the spec or a flag costs no wait. Torch-free.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from . import interrupt
from .header import network_line, recipe_line
from ..lang.errors import TrainError


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch (RANK is set before torch.distributed starts), or a lone process."""
    return os.environ.get("RANK", "0") == "0"


def open_spec(spec_path: str, params: dict, overrides: dict, input_shape, echo: Callable[[str], None],
              init_from: str | None = None):
    """(network, recipe) of a new run, with the network and recipe lines printed."""
    from . import recipe as recipes
    from ..network import load
    interrupt.doing("reading the spec")
    net = load(spec_path, input_shape=input_shape, **params)
    recipe = recipes.resolve(net, overrides)
    if is_main_process():
        echo(network_line(net))
        echo(recipe_line(recipe, init_from))
    return net, recipe


def check_same_spec(spec_path: str, meta: dict, run_dir: str) -> None:
    """`specc train SPEC --resume RUN_DIR`: SPEC's text and its imports' texts must be the run's own.

    --resume continues the run from the copies in its checkpoint, so a SPEC that
    differs would not be what trains; the refusal names the first difference.
    The text is compared before it is compiled: a changed spec need not compile.
    """
    from ..lang.errors import SpecError
    from ..lang.files import Unreadable, read_spec
    from ..network import load
    try:
        text = read_spec(spec_path)
    except Unreadable as exc:  # in load()'s words
        if exc.reason == "no such file":
            raise SpecError(f"no such spec file: {spec_path}", path=spec_path) from None
        raise SpecError(f"cannot read {spec_path}: {exc.reason}", path=spec_path, hint=exc.hint) from None
    _refuse_difference(spec_path, text, meta["spec"], spec_path, run_dir)
    net = load(spec_path, input_shape=tuple(meta["input_shape"]), **meta["params"])
    saved_sources = meta.get("sources", {})
    for name in sorted(set(net.sources) | set(saved_sources)):
        where = str(Path(spec_path).parent / name)
        _refuse_difference(where, net.sources.get(name), saved_sources.get(name), spec_path, run_dir)


def _refuse_difference(where: str, given: str | None, saved: str | None, spec_path: str, run_dir: str) -> None:
    difference = first_difference(given, saved)
    if difference:
        raise TrainError(f"{where} is not the spec {run_dir} was trained from: {difference}. --resume "
                         f"continues the run's own copy (`specc train --resume {run_dir}`); to train the "
                         f"changed spec, start a new run (`specc train {spec_path}`)")


def first_difference(given: str | None, saved: str | None) -> str | None:
    """Where two spec texts first differ, in words, or None when they are equal."""
    if given == saved:
        return None
    if saved is None:
        return "the run's spec does not import it"
    if given is None:
        return "the run's spec imports it but this one does not"
    mine, theirs = given.splitlines(), saved.splitlines()
    for number, (a, b) in enumerate(zip(mine, theirs), start=1):
        if a != b:
            return f"line {number} reads `{_clip(a)}` here but `{_clip(b)}` in the run"
    shorter, longer = (mine, theirs) if len(mine) < len(theirs) else (theirs, mine)
    if len(mine) == len(theirs):
        return "they differ in their line endings or final newline"
    extra = longer[len(shorter)]
    side = "here" if longer is mine else "in the run"
    return f"line {len(shorter) + 1} `{_clip(extra)}` is only {side}"


def _clip(line: str, limit: int = 80) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[:limit] + "..."
