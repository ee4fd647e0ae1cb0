"""Train phase: d2l's train_ch6 semantics without its per-sample Python.

The dataset is decoded once into a uint8 tensor that lives on the training
device; an epoch shuffles indices, slices batches out of that tensor and
converts them (to float, resized, channels adapted) on the device in one go.
Metrics are d2l's: per epoch the mean train loss, train accuracy (dropout
active) and test accuracy in eval() mode; examples/sec counts the whole step
including batch preparation.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint, data, header, interrupt, measure, progress
from .launch import check_same_spec, is_main_process, open_spec
from .plot import plotter
from .rundir import RunDir
from ..lang.errors import TrainError
from ..lang.memory import train_channels_last
from ..tools.summary import human_bytes, training_memory


def say(line: str) -> None:
    """print, flushed: a header line must reach a file or a pipe when it is written, not at exit."""
    print(line, flush=True)


class Options(NamedTuple):
    data_dir: str | None = None
    device: str = "auto"
    out: str | None = None
    compile: bool = False
    init_from: str | None = None  # weights file (.safetensors/.pt) copied in by structure after init
    channels_last: bool | None = None  # None: for image inputs on CUDA and the CPU (see Run.channels_last)
    train_limit: int | None = None  # first N training examples (quick runs, tests)
    test_limit: int | None = None
    progress: bool | None = None  # None: a bar when stdout is a terminal, lines otherwise
    echo: Callable[[str], None] = say
    overwrite: bool = False  # replace the run already in `out` instead of refusing


# What --resume restores from the checkpoint: the options that decide which examples the run sees.
RUN_SHAPING = ("data_dir", "train_limit", "test_limit")


# --- devices and processes ---------------------------------------------------
class Processes(NamedTuple):
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Sums across processes (DistributedDataParallel); the identity for one process."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return t.tolist()


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: no CUDA device is available here (use --device auto or cpu)")
    if choice == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainError("--device mps: Apple's MPS backend is not available here")
    return torch.device(choice)


def start_processes(choice: str) -> Processes:
    """One process, or one rank of a torchrun launch (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(choice)
    if world == 1:
        return Processes(0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:  # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(torch.distributed.get_rank(), world, device)


# --- fitting the data to the spec's input -----------------------------------
class Adapter(NamedTuple):
    """Turns a uint8 batch N x C x H x W into the float input the spec expects."""

    convert: Callable[[torch.Tensor], torch.Tensor]
    notes: tuple[str, ...]  # what was adapted, for the run header

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.convert(images)


def make_adapter(data_shape: tuple[int, ...], input_shape: tuple[int, ...], channels: str) -> Adapter:
    c, h, w = data_shape
    notes: list[str] = []
    if len(input_shape) == 1:
        if input_shape[0] != c * h * w:
            raise TrainError(f"the spec takes {input_shape[0]} flat features but the data's images are "
                             f"{c}x{h}x{w} = {c * h * w}")
        notes.append(f"flattened {c}x{h}x{w} to {c * h * w}")
        return Adapter(lambda x: x.float().div_(255).flatten(1), tuple(notes))
    want_c, want_h, want_w = input_shape
    channel_step = _channel_step(c, want_c, channels, notes)
    resize = (want_h, want_w) != (h, w)
    if resize:
        notes.append(f"resized {h}x{w} to {want_h}x{want_w} bilinearly")
    antialias = want_h < h or want_w < w

    def convert(x: torch.Tensor) -> torch.Tensor:
        x = channel_step(x.float().div_(255))
        if resize:
            x = F.interpolate(x, size=(want_h, want_w), mode="bilinear", align_corners=False, antialias=antialias)
        return x

    return Adapter(convert, tuple(notes))


def _channel_step(have: int, want: int, mode: str, notes: list[str]):
    if have == want:
        return lambda x: x
    if have == 1 and want == 3 and mode == "replicate":
        notes.append("replicated 1 channel to 3")
        return lambda x: x.expand(-1, 3, -1, -1)
    if have == 3 and want == 1 and mode == "average":
        notes.append("averaged 3 channels to 1")
        return lambda x: x.mean(1, keepdim=True)
    fix = {(1, 3): "replicate", (3, 1): "average"}.get((have, want))
    hint = f"; set `channels = {fix}` in the train section or pass --channels {fix}" if fix else ""
    raise TrainError(f"the spec's input has {want} channel(s) but the data has {have}{hint}")


@torch.inference_mode()
def predict_classes(model: nn.Module, convert: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                    batch: int = 1024) -> torch.Tensor:
    """The predicted class of every uint8 image, converted and classified `batch` at a time."""
    outs = [model(convert(images[i:i + batch])).argmax(1) for i in range(0, len(images), batch)]
    return torch.cat(outs) if outs else torch.zeros(0, dtype=torch.long, device=images.device)


# --- the model and its optimizer ---------------------------------------------
def init_weights(model: nn.Module, how: str) -> None:
    """d2l's init_weights: xavier_uniform_ on conv and linear weights; biases and BN keep PyTorch's."""
    if how == "xavier":
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)


def make_optimizer(model: nn.Module, recipe: dict):
    """specc's SGD (torch.optim.SGD's arithmetic without its 1.4 s import of torch._dynamo), torch's Adam(W)."""
    lr, wd = recipe["lr"], recipe["weight_decay"]
    if recipe["optimizer"] == "sgd":
        from .optim import SGD
        return SGD(model.parameters(), lr=lr, momentum=recipe["momentum"], weight_decay=wd)
    cls = torch.optim.Adam if recipe["optimizer"] == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=lr, weight_decay=wd)


def lr_at(recipe: dict, epoch: int) -> float:
    """The learning rate of 0-based `epoch`; stateless, so resuming needs no scheduler state."""
    if recipe["schedule"] == "cosine":
        return recipe["lr"] * 0.5 * (1 + math.cos(math.pi * epoch / recipe["epochs"]))
    if recipe["schedule"] == "step":
        return recipe["lr"] * recipe["gamma"] ** (epoch // recipe["step_size"])
    return recipe["lr"]


# --- the run ------------------------------------------------------------------------
class Run:
    """One training run: the network, the data on the device, the model and where results go."""

    def __init__(self, net, recipe: dict, params: dict, options: Options, procs: Processes,
                 run_dir: Path | None = None, resume_from: dict | None = None):
        self.net, self.recipe, self.params, self.options, self.procs = net, recipe, params, options, procs
        self.device = procs.device
        self.echo = options.echo if procs.main else (lambda *_: None)
        self.resuming = resume_from is not None
        self.run_dir = run_dir or self._new_run_dir()
        self.out = RunDir(self.run_dir, self.echo)
        if procs.main:
            plotter.start()  # matplotlib loads in a helper process while this one loads the data
            if not self.resuming:
                self.out.refuse_existing(options.overwrite)
        self._say_what_is_saved(resume_from["meta"]["epoch"] if resume_from else None)
        self._load_and_describe_data()
        self._build(resume_from)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe["label_smoothing"])

    def _load_and_describe_data(self) -> None:
        """The data on the device, checked against the spec; the data, device and memory lines."""
        interrupt.doing("loading the data")
        self.dataset = self._load_data()
        self.adapt = make_adapter(self.dataset.sample_shape, self.net.input_shape, self.recipe["channels"])
        self._check_classes()
        self.echo(header.data_line(self.dataset, self.adapt.notes))
        self.echo(self._device_line())
        self._check_memory()
        self.echo(self._memory_line())

    def _build(self, resume_from: dict | None) -> None:
        """The model (seeded, initialised, or restored from the checkpoint) and its optimizer."""
        interrupt.doing("building the model")
        torch.manual_seed(self.recipe["seed"])
        self.model = self.net.build(device=self.device)
        init_weights(self.model, self.recipe["init"])
        if self.options.init_from and resume_from is None:
            self._load_initial_weights(self.options.init_from)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, self.recipe)
        self.history: list[dict] = []
        self.start_epoch = 0
        if resume_from is not None:
            self._restore(resume_from)
        self.step_model = self._wrap(self.model)

    def _say_what_is_saved(self, last_epoch: int | None) -> None:
        """What a Ctrl-C before the first save leaves: the resumed run as it was, or nothing at all."""
        self.out.last_epoch = last_epoch
        if last_epoch is None:
            interrupt.on_disk("nothing was saved and no run directory was made; run the same command to start again")
        else:
            interrupt.on_disk(f"{self.out.holds(last_epoch)}, as before; continue with: "
                              f"specc train --resume {self.run_dir}")

    def _restore(self, resume_from: dict) -> None:
        meta = resume_from["meta"]
        try:
            checkpoint.restore(resume_from["path"], resume_from["tensors"], meta, self.model, self.optimizer)
        except checkpoint.CheckpointError as exc:
            raise TrainError(f"cannot resume {self.run_dir}: {exc}") from None
        self.history = meta["history"]
        self.start_epoch = meta["epoch"]
        saved = meta.get("data")
        have = (len(self.dataset.train_labels), len(self.dataset.test_labels))
        if saved and have != (saved["train_examples"], saved["test_examples"]):
            raise TrainError(f"cannot resume {self.run_dir}: it was trained on {saved['train_examples']:,} train / "
                             f"{saved['test_examples']:,} test examples but {self.dataset.source} gives "
                             f"{have[0]:,} / {have[1]:,}")

    def _load_initial_weights(self, path: str) -> None:
        from ..runtime.weights import WeightsError, transfer
        try:
            checkpoint.verify_if_ours(Path(path))
            transfer(self.model, path)
        except (WeightsError, checkpoint.CheckpointError) as exc:
            raise TrainError(f"--init-from {path}: {exc}") from None

    def _load_data(self) -> data.Dataset:
        try:
            ds = data.load(self.recipe["data"], self.options.data_dir)
        except data.DataError as exc:
            raise TrainError(str(exc)) from None
        train_n, test_n = self.options.train_limit, self.options.test_limit
        ds = ds._replace(train_images=ds.train_images[:train_n], train_labels=ds.train_labels[:train_n],
                         test_images=ds.test_images[:test_n], test_labels=ds.test_labels[:test_n])
        # Decoded once, resident on the training device: batches are slices, not per-sample work.
        to = lambda t: t.to(self.device)
        return ds._replace(train_images=to(ds.train_images), train_labels=to(ds.train_labels),
                           test_images=to(ds.test_images), test_labels=to(ds.test_labels))

    def _check_classes(self) -> None:
        want = len(self.dataset.classes)
        if tuple(self.net.output_shape) != (want,):
            shape = "x".join(map(str, self.net.output_shape))
            hint = " (pass --set classes=%d)" % want if "classes" in self.net.params else ""
            raise TrainError(f"the spec outputs {shape} values per sample but {self.dataset.name} has "
                             f"{want} classes{hint}")

    @property
    def local_batch(self) -> int:
        return max(1, self.recipe["batch"] // self.procs.world)

    @property
    def autocast_on(self) -> bool:
        return self.device.type == "cuda"

    def memory_estimate(self, batch: int) -> int:
        return training_memory(self.net, batch, optimizer=self.recipe["optimizer"], momentum=self.recipe["momentum"],
                               autocast=self.autocast_on, channels_last=self.channels_last).total

    def _check_memory(self) -> None:
        available = available_memory(self.device)
        need = self.memory_estimate(self.local_batch)
        if available is None or need <= available:
            return
        fits = next((b for b in (2 ** k for k in range(20, -1, -1)) if self.memory_estimate(b) <= available), None)
        advice = f"try --batch {fits * self.procs.world}" if fits else "the weights alone do not fit"
        raise TrainError(f"training {self.net.name} at batch {self.local_batch} needs about {human_bytes(need)} "
                         f"(static estimate) but {self.device} has {human_bytes(available)} available; {advice}")

    def _device_line(self) -> str:
        return (f"device   {device_name(self.device)}, {header.plural(self.procs.world, 'process')}"
                + (", bf16 autocast" if self.autocast_on else "")
                + (", channels_last" if self.channels_last else "")
                + (", torch.compile" if self.options.compile else ""))

    def _memory_line(self) -> str:
        available = available_memory(self.device)
        return (f"memory   ~{human_bytes(self.memory_estimate(self.local_batch))} estimated for training"
                + (f", {human_bytes(available)} available" if available else ""))

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.procs.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return torch.compile(model) if self.options.compile else model

    def _new_run_dir(self) -> Path:
        if self.options.out:
            return Path(self.options.out)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{self.net.name}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path("runs") / f"{self.net.name}-{stamp}-{n}"
        return path

    # --- batches ---------------------------------------------------------------------
    def batches(self, epoch: int):
        """This process's slice of each shuffled global batch; the order depends only on (seed, epoch)."""
        n, batch, world = len(self.dataset.train_labels), self.recipe["batch"], self.procs.world
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.recipe["seed"] * 100_003 + epoch))
        for chunk in order.to(self.device).split(batch):  # views of one tensor: no per-batch slicing in Python
            if len(chunk) < world:  # every process needs at least one example per step
                break
            yield chunk[self.procs.rank::world] if world > 1 else chunk

    def autocast(self):
        if self.autocast_on:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @functools.cached_property  # read by prepare() at every step: the rule walks the network's layers once
    def channels_last(self) -> bool:
        """Activations and weights in channels_last (NHWC) memory format (the rule: train_channels_last)."""
        wanted = self.options.channels_last
        on = train_channels_last(self.net, self.device.type) if wanted is None else wanted
        return len(self.net.input_shape) == 3 and on

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = self.adapt(images)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # --- one epoch ------------------------------------------------------------
    def train_epoch(self, epoch: int, bar=None) -> dict[str, float]:
        """One pass over the training set. `bar` (a progress bar or lines) gets each step's examples."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.recipe, epoch)
        images, labels = self.dataset.train_images, self.dataset.train_labels
        # Summed on the device, read once at the end: no host sync per step.
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen, world = 0, self.procs.world
        started = time.perf_counter()
        for idx in self.batches(epoch):
            x, y = self.prepare(images[idx]), labels[idx]
            with self.autocast():
                out = self.step_model(x)
                loss = self.loss_fn(out, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum.add_(loss.detach(), alpha=len(y))  # one small op each: they count where steps are short
            correct.add_(out.argmax(1).eq_(y).sum())
            seen += len(y)
            if bar is not None:
                bar.step(seen * world, loss_sum, correct, seen)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        total_loss, total_correct, total_seen = self.procs.sum([loss_sum.item(), float(correct.item()), float(seen)])
        return {"train_loss": total_loss / total_seen, "train_acc": total_correct / total_seen,
                "examples": int(total_seen), "seconds": seconds,
                "examples_per_sec": total_seen / seconds if seconds else 0.0}

    def predict_all(self, images: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return predict_classes(self.model.eval(), self.prepare, images)

    def test_accuracy(self) -> float:
        rank, world = self.procs.rank, self.procs.world
        images, labels = self.dataset.test_images[rank::world], self.dataset.test_labels[rank::world]
        correct = (self.predict_all(images) == labels).sum().item()
        total_correct, total = self.procs.sum([float(correct), float(len(labels))])
        return total_correct / total if total else 0.0

    # --- results ----------------------------------------------------------------
    def meta(self, epoch: int) -> dict[str, Any]:
        return {"spec": self.net.source, "sources": self.net.sources, "spec_path": self.net.path,
                "network": self.net.name,
                "params": self.params, "input_shape": list(self.net.input_shape), "recipe": self.recipe,
                "classes": list(self.dataset.classes), "epoch": epoch, "history": self.history,
                "adapted": list(self.adapt.notes), "init_from": self.options.init_from,
                "options": {**{key: getattr(self.options, key) for key in RUN_SHAPING},
                            "channels_last": self.channels_last,  # the kernels a resume must keep
                            # absolute, so a resume from another working directory finds the same files
                            "data_dir": str(Path(self.options.data_dir).resolve()) if self.options.data_dir else None},
                "data": {"source": self.dataset.source, "train_examples": len(self.dataset.train_labels),
                         "test_examples": len(self.dataset.test_labels)}}

    def save_epoch(self, epoch: int, improved: bool) -> None:
        self.out.save_epoch(self.model, self.optimizer, self.meta(epoch), improved, self.net.name)

    def _start_saving(self) -> None:
        """The run directory, made only now that there is something to put in it: the initial weights."""
        interrupt.doing("saving the initial weights" if not self.resuming else "opening the run directory")
        save_initial = lambda: self.out.save_last(self.model, self.optimizer, self.meta(0))
        self.out.prepare(not self.resuming, self.options.overwrite, save_initial)
        self.echo(f"output   {self.run_dir}/")

    def fit(self) -> list[dict]:
        for line in measure.timing_lines(self, device_name(self.device)):
            self.echo(line)
        if self.start_epoch:
            self.echo(f"resume   from epoch {self.start_epoch} of {self.recipe['epochs']}")
        if self.procs.main:  # a new run's `last` at epoch 0: --resume works from the first Ctrl-C on
            self._start_saving()
        try:
            for epoch in range(self.start_epoch, self.recipe["epochs"]):
                self._run_epoch(epoch)
            if self.procs.main:
                self.out.finish()
        except KeyboardInterrupt:
            interrupt.taken()
            self._save_interrupted()
            raise
        self._say_results()
        return self.history

    def _run_epoch(self, epoch: int) -> None:
        """Trains and tests 0-based `epoch`, records it, saves it and says how it went."""
        best = max((row["test_acc"] for row in self.history), default=-1.0)
        interrupt.doing(f"training epoch {epoch + 1}")
        with self._progress(epoch) as bar:
            stats = self.train_epoch(epoch, bar)
        interrupt.doing(f"testing epoch {epoch + 1}")
        stats["test_acc"] = self.test_accuracy()
        row = {"epoch": epoch + 1, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
               "test_acc": stats["test_acc"], "examples_per_sec": stats["examples_per_sec"],
               "seconds": stats["seconds"], "examples": stats["examples"], "lr": lr_at(self.recipe, epoch)}
        self.history.append(row)
        if self.procs.main:
            interrupt.doing(f"saving epoch {epoch + 1}")
            self.save_epoch(epoch + 1, row["test_acc"] > best)
        self.echo(f"epoch {epoch + 1}/{self.recipe['epochs']}  loss {row['train_loss']:.3f}  "
                  f"train acc {row['train_acc']:.3f}  test acc {row['test_acc']:.3f}  "
                  f"{row['examples_per_sec']:,.0f} examples/sec  {row['seconds']:.1f} s")

    def _save_interrupted(self) -> None:
        """Ctrl-C during an epoch: its weights so far, for inspection (--resume restarts it from `last`)."""
        if not self.procs.main:
            return
        interrupt.doing("saving interrupted.safetensors")
        # the epoch in progress is the one after those completed (the loop's variable may lag behind)
        self.out.save_interrupted(self.model, self.optimizer, self.meta(len(self.history)), len(self.history))
        interrupt.explained()

    def _say_results(self) -> None:
        if not self.history:
            return
        last = self.history[-1]
        self.echo(f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, test acc {last['test_acc']:.3f}")
        speed = sum(r["examples"] for r in self.history) / sum(r["seconds"] for r in self.history)
        self.echo(f"{speed:,.1f} examples/sec on {device_name(self.device)}")
        self.echo(f"run directory: {self.run_dir}/ (metrics.jsonl, curves.png, last/best.safetensors)")

    def _progress(self, epoch: int):
        """A tqdm bar in a terminal, plain lines in a log (a file, a pipe, CI), or nothing (--no-progress)."""
        show = self.options.progress
        if not self.procs.main or show is False:
            return contextlib.nullcontext(None)
        total, label = len(self.dataset.train_labels), f"epoch {epoch + 1}/{self.recipe['epochs']}"
        if show or sys.stdout.isatty():
            return progress.Bar(total, label)
        return contextlib.nullcontext(progress.Lines(total, label, self.echo))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({header.plural(torch.get_num_threads(), 'thread')})"
    return str(device)


def available_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


# --- entry points -------------------------------------------------------------------
def start(spec_path: str, params: dict, overrides: dict, options: Options, input_shape=None) -> Run:
    """A new run of the spec at `spec_path` (recipe: its train section, then `overrides`)."""
    net, recipe = open_spec(spec_path, params, overrides, input_shape, options.echo, options.init_from)
    return begin(net, recipe, params, options)


def begin(net, recipe: dict, params: dict, options: Options) -> Run:
    """A new run of a loaded network and its resolved recipe (see launch.open_spec)."""
    interrupt.doing("starting PyTorch")
    return Run(net, recipe, params, options, start_processes(options.device))


def resume(run_dir: str, overrides: dict, options: Options, spec_path: str | None = None) -> Run:
    """Continue the run in `run_dir` from its `last` checkpoint, with the recipe and options it started with.

    Only `epochs` may change, and `data_dir` (the same data in a new place: the
    example counts are checked); --limit must match the run's own, or be left out.
    `spec_path` (`specc train SPEC --resume RUN_DIR`) must hold the run's own spec.
    """
    interrupt.doing("reading the checkpoint")
    path = Path(run_dir) / "last.safetensors"
    try:
        meta, tensors = checkpoint.load(path)
    except checkpoint.CheckpointError as exc:
        raise TrainError(f"cannot resume {run_dir}: {exc}") from None
    if spec_path is not None:
        check_same_spec(spec_path, meta, run_dir)
    recipe = _resumed_recipe(run_dir, meta, overrides)
    options = _resumed_options(run_dir, meta, options)
    try:
        net = checkpoint.network(meta, path)
    except checkpoint.CheckpointError as exc:
        raise TrainError(f"cannot resume {run_dir}: {exc}") from None
    if is_main_process():
        options.echo(header.network_line(net))
        options.echo(header.recipe_line(recipe, meta.get("init_from")))
    return Run(net, recipe, meta["params"], options, start_processes(options.device),
               run_dir=Path(run_dir), resume_from={"meta": meta, "tensors": tensors, "path": path})


def _resumed_recipe(run_dir: str, meta: dict, overrides: dict) -> dict:
    from . import recipe as recipes
    given = recipes.check_overrides(overrides)
    changed = [k for k, v in given.items() if k != "epochs" and v != meta["recipe"].get(k)]
    if changed:
        raise TrainError("a resumed run keeps its recipe (only --epochs may change); got "
                         + ", ".join(f"--{k.replace('_', '-')}" for k in changed))
    recipe = {**meta["recipe"], **({"epochs": given["epochs"]} if "epochs" in given else {})}
    done = meta["epoch"]
    if recipe["epochs"] <= done:
        more = "" if "epochs" in given else " (its recipe's epochs)"
        raise TrainError(f"{run_dir} has completed {done} of {recipe['epochs']} epochs{more}; pass "
                         f"--epochs N with N > {done} to train it further")
    return recipe


def _resumed_options(run_dir: str, meta: dict, options: Options) -> Options:
    saved = meta["options"]
    for key in ("train_limit", "test_limit"):
        given = getattr(options, key)
        if given is not None and given != saved[key]:
            was = f"--limit {saved[key]}" if saved[key] else "no --limit"
            raise TrainError(f"a resumed run keeps the examples it started with ({was}); got --limit {given}")
    restored = {key: saved[key] for key in RUN_SHAPING}
    if "channels_last" in saved:  # runs saved before it was recorded take the flag or today's default
        restored["channels_last"] = _kept_layout(saved["channels_last"], options.channels_last)
    if options.data_dir is not None:  # the same data moved elsewhere; _restore checks the counts
        restored["data_dir"] = options.data_dir
    return options._replace(**restored)


def _kept_layout(saved: bool, given: bool | None) -> bool:
    """A resumed run computes in the memory format it started with: another would change its weights' bits."""
    if given is not None and given != saved:
        was, got = ("--channels-last", "--no-channels-last") if saved else ("--no-channels-last", "--channels-last")
        raise TrainError(f"a resumed run keeps the memory format it started with ({was}); got {got}")
    return saved
