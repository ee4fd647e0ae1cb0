"""The training recipe: defaults, the spec's `train { }` section, then CLI flags.

The section is validated against train.schema.json (shipped in the package)
with jsonschema, and a failure is a SpecError located at the offending line.
jsonschema costs ~60 ms to import, so `specc check` leaves the recipe to
`specc check --recipe` and `specc train`.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..lang.errors import SpecError, did_you_mean

# d2l's train_ch6: plain SGD, cross-entropy, xavier-uniform init, 10 epochs.
DEFAULTS: dict[str, Any] = {
    "data": "fashion-mnist", "batch": 256, "epochs": 10, "optimizer": "sgd", "lr": 0.1,
    "momentum": 0.0, "weight_decay": 0.0, "schedule": "constant", "step_size": 30, "gamma": 0.1,
    "label_smoothing": 0.0, "init": "xavier", "seed": 0, "channels": "refuse",
}


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads((Path(__file__).with_name("train.schema.json")).read_text())


def _validator():
    import jsonschema
    return jsonschema.Draft202012Validator(schema())


def resolve(net, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full recipe for `net`: defaults < its train section < overrides (CLI flags)."""
    settings = net.train_settings
    from_spec = {key: s.value for key, s in settings.items()}
    error = next(iter(sorted(_validator().iter_errors(from_spec), key=lambda e: list(e.path))), None)
    if error is not None:
        raise _located(error, settings).located(net.path, net.source)
    given = check_overrides(overrides)
    return {**DEFAULTS, **from_spec, **given}


def check_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The flags that were given (not None), each checked against the schema like the spec's settings."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    error = next(iter(_validator().iter_errors(given)), None)
    if error is not None:
        key = error.path[0] if error.path else "?"
        raise SpecError(f"--{str(key).replace('_', '-')} {given.get(key)!r}: {_plain(error)}")
    return given


def problem(resolved: Any) -> str | None:
    """What is wrong with a resolved recipe read back from a checkpoint (every key present), or None.

    A checkpoint's metadata is data from a file, not from a spec we parsed, so
    resume and eval check it again before any value reaches the loop.
    """
    if not isinstance(resolved, dict):
        return f"the recipe is a {type(resolved).__name__}, not an object"
    missing = [key for key in DEFAULTS if key not in resolved]
    if missing:
        return "the recipe lacks " + ", ".join(missing)
    error = next(iter(sorted(_validator().iter_errors(resolved), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = f"'{error.path[0]}'" if error.path else "itself"
    return f"recipe setting {where}: {_plain(error)}"


def _located(error, settings) -> SpecError:
    if error.validator == "additionalProperties":
        unknown = next(k for k in settings if k not in schema()["properties"])
        return SpecError(f"unknown train setting '{unknown}'", settings[unknown].key_span,
                         hint=did_you_mean(unknown, schema()["properties"]) or
                         "known settings: " + ", ".join(schema()["properties"]))
    key = error.path[0]
    return SpecError(f"train setting '{key}': {_plain(error)}", settings[key].value_span,
                     hint=schema()["properties"][key]["description"])


def _plain(error) -> str:
    """jsonschema's message, phrased for a .cnn user (no JSON quoting of enums)."""
    if error.validator == "enum":
        return f"{error.instance!r} is not one of " + ", ".join(map(str, error.validator_value))
    if error.validator == "pattern":
        return f"{error.instance!r} is not a known dataset"
    if error.validator == "type":
        return f"{error.instance!r} is not {'an' if error.validator_value == 'integer' else 'a'} {error.validator_value}"
    return error.message
