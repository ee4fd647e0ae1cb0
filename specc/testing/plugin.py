"""The pytest plugin (entry point `pytest11`): `pytest --specc DIR` checks every spec under DIR.

Each `*.cnn` under DIR becomes a test file with two tests:

- `declared`: the spec loads, and at its declared input its static shapes, parameters, buffers and
  MACs equal a real forward of the built module, layer by layer (specc.testing.assert_matches_torch);
- `sizes`: the same at a few input sizes the spec accepts, drawn by hypothesis from the ranges
  `specc check --sizes` finds (`--specc-examples N`, sides up to `--specc-max-side`).

A file with no `input` line is a library of blocks and params that other specs import: it gets one
test, `library`, that it parses and that its own imports resolve (its blocks are checked where
they are used). A failing test shows the spec's diagnostic (`file:line:col: error: ...`) or the
layers where specc and PyTorch disagree, never a traceback into specc.

Every pytest run in an environment with specc installed loads this module, so it imports nothing
heavy: torch and hypothesis are imported by the tests, when a spec is checked.
"""
from __future__ import annotations

from pathlib import Path

import pytest

DIRS = pytest.StashKey[list]()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("specc", "checking .cnn specs against PyTorch (specc.testing)")
    group.addoption("--specc", action="append", default=[], metavar="DIR",
                    help="check every *.cnn under DIR against PyTorch (repeatable)")
    group.addoption("--specc-examples", type=int, default=3, metavar="N",
                    help="input sizes drawn per spec besides the declared one (default 3; 0: no `sizes` tests)")
    group.addoption("--specc-max-side", type=int, default=64, metavar="N",
                    help="the largest side (and channel count: at most 8) of a drawn input size (default 64)")
    group.addoption("--specc-device", default="cpu", metavar="DEVICE",
                    help="where the modules run (default cpu; meta checks the same shapes without computing "
                         "values or allocating weights, for large specs)")


def pytest_configure(config) -> None:
    dirs = []
    for given in config.getoption("specc", default=None) or []:
        path = (Path(config.invocation_params.dir) / given).resolve()
        if not path.is_dir():
            raise pytest.UsageError(f"--specc {given}: not a directory")
        dirs.append(path)
    for name, low in (("specc_examples", 0), ("specc_max_side", 1)):
        if config.getoption(name, default=low) < low:
            raise pytest.UsageError(f"--{name.replace('_', '-')} must be at least {low}")
    config.stash[DIRS] = dirs
    # The directories are collected even when the run's own arguments (or testpaths) do not reach them.
    reached = [_argument_path(config, arg) for arg in config.args]
    config.args.extend(str(d) for d in dirs if not any(_within(d, r) for r in reached))


def _argument_path(config, arg: str) -> Path:
    return (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def pytest_collect_file(file_path: Path, parent):
    dirs = parent.config.stash.get(DIRS, [])
    if file_path.suffix == ".cnn" and any(_within(file_path.resolve(), d) for d in dirs):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFile(pytest.File):
    """A .cnn file: `declared` and `sizes` for a spec, `library` for a file without an `input` line."""

    def collect(self):
        if _is_library(self.path):
            yield SpecItem.from_parent(self, name="library", check=_check_library)
            return
        yield SpecItem.from_parent(self, name="declared", check=_check_declared)
        if self.config.getoption("specc_examples") > 0:
            yield SpecItem.from_parent(self, name="sizes", check=_check_sizes)


def _is_library(path: Path) -> bool:
    """No `input` line. A file that cannot be read or parsed is not a library: its tests show why."""
    from specc.lang.errors import SpecError
    from specc.lang.files import Unreadable, read_spec
    from specc.lang.parse import parse
    try:
        return parse(read_spec(path), str(path)).input is None
    except (SpecError, Unreadable):
        return False


class SpecItem(pytest.Item):
    def __init__(self, *, check, **kwargs):
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        self.check(self.path, self.config)

    def repr_failure(self, excinfo, style=None):
        from specc.lang.errors import SpecError
        if excinfo.errisinstance((SpecError, AssertionError)):
            notes = getattr(excinfo.value, "__notes__", [])  # hypothesis adds the falsifying example
            return "\n".join([str(excinfo.value), *notes])
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        # The failure's headline: "broken.cnn: declared" (with "::" pytest would respell the file's dots)
        return self.path, None, f"{self.path.name}: {self.name}"


def _shown(path: Path) -> str:
    """The path as diagnostics show it: relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_library(path: Path, config) -> None:
    from specc.lang.errors import SpecError
    from specc.lang.files import read_spec
    from specc.lang.imports import link
    from specc.lang.parse import parse
    source, shown = read_spec(path), _shown(path)
    try:
        link(parse(source, shown), shown)
    except SpecError as err:
        raise err.located(shown, source) from None


def _check_declared(path: Path, config) -> None:
    import specc
    from specc.testing import assert_matches_torch
    assert_matches_torch(specc.load(_shown(path)), device=config.getoption("specc_device"))


def _check_sizes(path: Path, config) -> None:
    import specc
    from hypothesis import HealthCheck, Phase, given, settings
    from specc.testing import assert_matches_torch, input_sizes

    net = specc.load(_shown(path))
    examples, device = config.getoption("specc_examples"), config.getoption("specc_device")
    sizes = input_sizes(net, max_side=config.getoption("specc_max_side"))

    # Derandomised, without a database: the same sizes on every run, so a failure reproduces. A failure
    # is shrunk to the smallest size that fails, but not "explained": that traces coverage, for seconds.
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck))
    @given(sizes)
    def at_size(shape):
        assert_matches_torch(net, shape, device=device)

    at_size()
