"""Checkpoints: safetensors (no pickle) with the run's state in the file's metadata.

One `<stem>.safetensors` holds everything a resume needs: the model's
state_dict under its own names (so the file loads into a hand-written module
too), optimizer tensors as `optimizer/<param index>/<key>`, RNG states as
`rng/<device>`, and in its metadata the spec text, the resolved recipe, the
epoch, the metrics so far and a sha256 of the tensors, checked on every load.

The file is written to a temporary name and renamed, so a kill during a save
leaves the previous checkpoint intact; a kill -9 can still leave the
temporary file, which `tidy` removes on the next run. `<stem>.json` is a
readable copy of the metadata with no authority: it is written after the
checkpoint, loading never reads it, and `tidy` rewrites it from the
checkpoint, so a crash between the two writes cannot leave them disagreeing
for longer than until the next run.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .files import CheckpointError, atomic_write  # torch-free, so the plotting helper process can use them

FORMAT = "specc-checkpoint/2"
STEMS = ("last", "best", "interrupted")
# Everything a run writes into its directory (besides temporary files): what --overwrite replaces.
RUN_FILES = tuple(f"{stem}.{ext}" for stem in STEMS for ext in ("safetensors", "json")) + ("metrics.jsonl", "curves.png")
TEMP_SUFFIXES = (".tmp", ".tmp.png")


# --- writing ---------------------------------------------------------------------
def save(run_dir: Path, stem: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
         meta: dict[str, Any]) -> Path:
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    if optimizer is not None:
        tensors.update(_optimizer_tensors(optimizer))
        meta = {**meta, "optimizer": _optimizer_scalars(optimizer)}
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    meta = {"format": FORMAT, **meta, "tensors_sha256": digest(tensors)}
    path = run_dir / f"{stem}.safetensors"
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"specc": json.dumps(meta)}))
    write_sidecar(path, meta)
    return path


def write_sidecar(path: Path, meta: dict) -> None:
    # a readable copy, rewritten from the checkpoint by tidy(): it need not survive a power cut
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"),
                 durable=False)


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


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order (safetensors sorts its own)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b""
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0{t.numel() * t.element_size()}\0".encode())
        h.update(memoryview(raw))
    return h.hexdigest()


# --- the run directory -----------------------------------------------------------
def tidy(run_dir: Path) -> list[str]:
    """Removes temporary files a killed save left and rewrites each sidecar from its checkpoint.

    Returns what it did, one line each, for the run's header.
    """
    done = []
    for entry in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if entry.is_file() and entry.name.endswith(TEMP_SUFFIXES):
            entry.unlink()
            done.append(f"removed {entry.name} (left by an interrupted save)")
    for stem in STEMS:
        path, sidecar = run_dir / f"{stem}.safetensors", run_dir / f"{stem}.json"
        if path.is_file():
            try:
                meta = read_meta(path)
            except CheckpointError:
                continue  # loading it reports the damage; nothing to copy from
            if not sidecar.is_file() or _read_json(sidecar) != meta:
                write_sidecar(path, meta)
                done.append(f"rewrote {sidecar.name} from {path.name}")
        elif sidecar.is_file():
            sidecar.unlink()
            done.append(f"removed {sidecar.name} (its checkpoint is gone)")
    return done


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def holds_run(run_dir: Path) -> list[str]:
    """The run files already in `run_dir` (empty when it is new or holds none)."""
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def clear_run(run_dir: Path) -> None:
    """--overwrite: removes the previous run's files (only those), so no stale `best` survives."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    tidy(run_dir)


# --- reading ---------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _meta_validator():
    import jsonschema
    schema = json.loads(Path(__file__).with_name("checkpoint.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def read_meta(path: Path) -> dict[str, Any]:
    """The checkpoint's metadata, checked against checkpoint.schema.json and for consistency."""
    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get("specc")
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except (OSError, SafetensorError, ValueError) as exc:  # safetensors' errors for damaged files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({exc})") from None
    try:
        meta = json.loads(text) if text is not None else None
    except ValueError as exc:
        raise CheckpointError(f"{path}: its specc metadata is not JSON ({exc})") from None
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt == "specc-checkpoint/1":
        raise CheckpointError(f"{path} was written by an older specc (specc-checkpoint/1, without an integrity "
                              f"digest); retrain, or load its weights with --init-from")
    if fmt != FORMAT:
        raise CheckpointError(f"{path} was not written by specc train (no '{FORMAT}' metadata)")
    problem = meta_problem(meta)
    if problem:
        raise CheckpointError(f"{path}: invalid checkpoint metadata: {problem}")
    return meta


def meta_problem(meta: Any) -> str | None:
    """The first thing wrong with checkpoint metadata, or None: schema, then recipe, then cross-field rules."""
    from . import recipe
    error = next(iter(sorted(_meta_validator().iter_errors(meta), key=lambda e: [str(k) for k in e.absolute_path])), None)
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "the metadata"
        return f"{where}: {_short(error.message)}"
    problem = recipe.problem(meta["recipe"])
    if problem:
        return problem
    if meta["epoch"] > meta["recipe"]["epochs"]:
        return f"epoch {meta['epoch']} is past the recipe's {meta['recipe']['epochs']} epochs"
    if [row["epoch"] for row in meta["history"]] != list(range(1, meta["epoch"] + 1)):
        return f"the history does not list epochs 1..{meta['epoch']}"
    return None


def _short(message: str, limit: int = 160) -> str:
    return message if len(message) <= limit else message[:limit] + "..."


def load(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a checkpoint whose tensors match the digest its metadata carries."""
    meta = read_meta(path)
    try:
        tensors = load_tensors(path)
    except (OSError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read its tensors ({exc})") from None
    if digest(tensors) != meta["tensors_sha256"]:
        raise CheckpointError(f"{path} is damaged: its tensors do not match the sha256 recorded when it was "
                              f"written (the file was modified or corrupted)")
    return meta, tensors


def network(meta: dict[str, Any], origin: Path | None = None):
    """The checked Network a checkpoint was trained from: its embedded spec, params and input.

    A mistake in it is reported as the embedded spec's (`origin` names the checkpoint), not the file on disk's.
    """
    from ..lang.errors import SpecError
    from ..network import loads
    try:
        # Imports come from the checkpoint's own copies: the files on disk may have changed or gone.
        return loads(meta["spec"], name=meta["network"], path=meta["spec_path"], sources=meta.get("sources", {}),
                     input_shape=tuple(meta["input_shape"]), **meta["params"])
    except SpecError as err:
        where = f"the spec embedded in {origin}" if origin is not None else "the checkpoint's embedded spec"
        raise CheckpointError(f"{where} (written from {meta['spec_path']}) does not compile:\n{err}") from None


def check_classes(path: Path, meta: dict[str, Any], net) -> None:
    """The metadata's class names must match the network's outputs, or predictions index past them."""
    if tuple(net.output_shape) != (len(meta["classes"]),):
        shape = "x".join(map(str, net.output_shape))
        raise CheckpointError(f"{path}: its metadata names {len(meta['classes'])} class(es) but its network "
                              f"outputs {shape} values per sample")


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    out = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            out[key] = f.get_tensor(key)
    return out


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's entries: state_dict names never contain '/'."""
    return {k: v for k, v in tensors.items() if "/" not in k}


def load_model(path: Path, tensors: dict, model: torch.nn.Module) -> None:
    try:
        model.load_state_dict(model_state(tensors))
    except (RuntimeError, ValueError, KeyError) as exc:  # what load_state_dict raises for a mismatch
        raise CheckpointError(f"{path}: its weights do not fit its network ({_short(str(exc))})") from None


def restore(path: Path, tensors: dict, meta: dict, model: torch.nn.Module, optimizer) -> None:
    load_model(path, tensors, model)
    try:
        if optimizer is not None and "optimizer" in meta:
            optimizer.load_state_dict(_optimizer_state(tensors, meta))
        torch.set_rng_state(tensors["rng/cpu"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{path}: its optimizer or RNG state does not fit ({_short(str(exc))})") from None
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])


def _optimizer_state(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, scalars in meta["optimizer"]["state"].items():
        state.setdefault(int(index), {}).update(scalars)
    return {"state": state, "param_groups": meta["optimizer"]["param_groups"]}


def verify_if_ours(path: Path) -> None:
    """--init-from: a current specc checkpoint is verified like any load; other weights files are taken as they are.

    (An older specc-checkpoint/1 file has no digest to check, and a torchvision
    or hand-made .safetensors file has no specc metadata at all.)
    """
    if path.suffix != ".safetensors":
        return
    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get("specc")
    except (OSError, SafetensorError, ValueError):
        return  # the weights reader reports an unreadable file in its own words
    try:
        meta = json.loads(text) if text is not None else None
    except ValueError:
        meta = None
    if text is not None and (not isinstance(meta, dict) or meta.get("format") != "specc-checkpoint/1"):
        load(path)  # ours (or claims to be): the same checks as eval and resume
