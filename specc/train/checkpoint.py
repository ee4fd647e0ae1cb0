"""Checkpoints: safetensors (no pickle) with the run's state in the file's metadata.

One `<stem>.safetensors` holds everything a resume needs: the model's
state_dict under its own names (so the file loads into a hand-written module
too), optimizer tensors as `optimizer/<param index>/<key>`, RNG states as
`rng/<device>`, and in its metadata the spec text, the resolved recipe, the
epoch and the metrics so far. The file is written to a temporary name and
renamed, so a kill during a save leaves the previous checkpoint intact.
`<stem>.json` is a readable copy of the metadata, written the same way.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "specc-checkpoint/1"


class CheckpointError(Exception):
    pass


def save(run_dir: Path, stem: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
         meta: dict[str, Any]) -> Path:
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    if optimizer is not None:
        tensors.update(_optimizer_tensors(optimizer))
        meta = {**meta, "optimizer": _optimizer_scalars(optimizer)}
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    meta = {"format": FORMAT, **meta}
    path = run_dir / f"{stem}.safetensors"
    _atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata={"specc": json.dumps(meta)}))
    _atomic(run_dir / f"{stem}.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return path


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _optimizer_tensors(optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                out[f"optimizer/{index}/{key}"] = value.detach().cpu().contiguous()
    return out


def _optimizer_scalars(optimizer) -> dict:
    sd = optimizer.state_dict()
    scalars = {str(i): {k: v for k, v in s.items() if not torch.is_tensor(v)} for i, s in sd["state"].items()}
    return {"param_groups": sd["param_groups"], "state": scalars}


def read_meta(path: Path) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("specc", "{}"))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by specc train (no '{FORMAT}' metadata)")
    return meta


def network(meta: dict[str, Any]):
    """The checked Network a checkpoint was trained from: its embedded spec, params and input."""
    from ..network import loads
    return loads(meta["spec"], name=meta["network"], path=meta["spec_path"],
                 input_shape=tuple(meta["input_shape"]), **meta["params"])


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    out = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            out[key] = f.get_tensor(key)
    return out


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's entries: state_dict names never contain '/'."""
    return {k: v for k, v in tensors.items() if "/" not in k}


def restore(tensors: dict, meta: dict, model: torch.nn.Module, optimizer) -> None:
    model.load_state_dict(model_state(tensors))
    if optimizer is not None and "optimizer" in meta:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer/"):
                _, index, name = key.split("/", 2)
                state.setdefault(int(index), {})[name] = value
        for index, scalars in meta["optimizer"]["state"].items():
            state.setdefault(int(index), {}).update(scalars)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    torch.set_rng_state(tensors["rng/cpu"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
