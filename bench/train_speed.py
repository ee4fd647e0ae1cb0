"""Training speed: specc against a faithful d2l train_ch6 loop, side by side, as two ratios.

(1) One whole-process epoch: `specc train SPEC --epochs 1` as a user runs it
    (start-up, data, measuring, the epoch, the test pass, checkpoints and
    curves.png, exit) against a d2l-style script doing the same epoch
    (`--d2l-epoch`, below), each timed from spawn to exit, alternated, median
    of --repeats runs each.
(2) Examples/sec over --steps steps after --warmup, in one process: specc's
    loop (the dataset decoded once into a uint8 tensor, batches sliced and
    converted on the device: specc.train.loop.Run.train_epoch, in its default
    memory format, channels_last for LeNet on the CPU) against d2l's
    (torchvision.datasets.FashionMNIST + [Resize] + ToTensor +
    DataLoader(shuffle=True, num_workers=4), then zero_grad, forward,
    CrossEntropyLoss, backward, SGD step, and d2l.accuracy's per-step float()
    of the loss sum and correct count), alternated, median of --repeats.

The d2l side is d2l's code (train_ch6, evaluate_accuracy_gpu,
load_data_fashion_mnist, Accumulator), except that its Animator, which
redraws its figure six times an epoch in a notebook, draws it once per epoch
here: the baseline is, if anything, faster than d2l's own. Both build the
model from the same spec with d2l's xavier init and use the spec's lr. Run:

    python bench/train_speed.py specs/lenet.cnn
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's specc, not an installed copy


def unpacked_fashion_root(source: Path) -> Path:
    """torchvision wants ROOT/FashionMNIST/raw/<unpacked IDX files>."""
    from specc.train import data
    root = Path(tempfile.mkdtemp(prefix="specc-bench-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in data.IDX_FILES.values():
        packed = source / (stem + ".gz")
        if packed.is_file():
            with gzip.open(packed) as f_in, open(raw / stem, "wb") as f_out:
                shutil.copyfileobj(f_in, f_out)
        else:
            shutil.copy(source / stem, raw / stem)
    return root


# --- d2l's code ------------------------------------------------------------------------
def d2l_data(root: Path, batch: int, size, workers: int):
    """d2l.load_data_fashion_mnist(batch_size, resize)."""
    import torch
    import torchvision
    from torchvision import transforms
    trans = [transforms.ToTensor()]
    if tuple(size) != (28, 28):
        trans.insert(0, transforms.Resize(size))
    trans = transforms.Compose(trans)
    train = torchvision.datasets.FashionMNIST(str(root), train=True, transform=trans, download=False)
    test = torchvision.datasets.FashionMNIST(str(root), train=False, transform=trans, download=False)
    return (torch.utils.data.DataLoader(train, batch, shuffle=True, num_workers=workers),
            torch.utils.data.DataLoader(test, batch, shuffle=False, num_workers=workers))


def d2l_model(spec: str):
    """The spec's module with d2l's init_weights applied (net.apply(init_weights))."""
    import torch
    from torch import nn
    import specc
    torch.manual_seed(0)
    model = specc.load(spec).build()

    def init_weights(m):
        if type(m) == nn.Linear or type(m) == nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)
    model.apply(init_weights)
    return model


def accuracy(y_hat, y) -> float:
    """d2l.accuracy."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def d2l_step(model, optimizer, loss, X, y, metric: list) -> None:
    """One step of d2l's train_ch6, with its Accumulator.add of Python floats."""
    import torch
    optimizer.zero_grad()
    y_hat = model(X)
    l = loss(y_hat, y)
    l.backward()
    optimizer.step()
    with torch.no_grad():
        for i, v in enumerate((float(l * X.shape[0]), accuracy(y_hat, y), X.shape[0])):
            metric[i] += float(v)


def evaluate_accuracy(model, data_iter) -> float:
    """d2l.evaluate_accuracy_gpu."""
    import torch
    model.eval()
    metric = [0.0, 0.0]
    with torch.no_grad():
        for X, y in data_iter:
            metric[0] += accuracy(model(X), y)
            metric[1] += y.numel()
    return metric[0] / metric[1]


def d2l_epoch_process(spec: str, root: Path, batch: int, lr: float, workers: int) -> None:
    """`--d2l-epoch`: d2l's train_ch6 for one epoch, as a whole process (timed from outside)."""
    import torch
    from torch import nn
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import specc
    size = specc.load(spec).input_shape[1:]
    train_iter, test_iter = d2l_data(root, batch, size, workers)
    model = d2l_model(spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    fig, ax = plt.subplots(figsize=(3.5, 2.5))  # d2l.Animator
    metric, started = [0.0, 0.0, 0], time.perf_counter()
    model.train()
    for X, y in train_iter:
        d2l_step(model, optimizer, loss, X, y, metric)
    seconds = time.perf_counter() - started
    test_acc = evaluate_accuracy(model, test_iter)
    ax.plot([1], [metric[0] / metric[2]], label="train loss")
    ax.plot([1], [test_acc], label="test acc")
    ax.legend()
    fig.savefig(os.devnull, format="png")
    print(f"loss {metric[0] / metric[2]:.3f}, train acc {metric[1] / metric[2]:.3f}, test acc {test_acc:.3f}")
    print(f"{metric[2] / seconds:.1f} examples/sec on cpu")


# --- (1) whole processes ----------------------------------------------------------------
def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - started


def whole_epochs(spec: str, source: Path, root: Path, batch: int, lr: float, workers: int, repeats: int) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = Path(tempfile.mkdtemp(prefix="specc-bench-run-"))
    specc_cmd = [sys.executable, "-m", "specc", "train", spec, "--epochs", "1", "--device", "cpu", "--data",
                 str(source), "--out", str(out / "run"), "--overwrite", "--no-progress"]
    d2l_cmd = [sys.executable, str(Path(__file__).resolve()), spec, "--d2l-epoch", "--root", str(root),
               "--batch", str(batch), "--lr", str(lr), "--workers", str(workers)]
    times = {"d2l": [], "specc": []}
    try:
        for _ in range(repeats):  # alternated, so a change in the machine's load falls on both
            times["d2l"].append(timed(d2l_cmd, env))
            times["specc"].append(timed(specc_cmd, env))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {name: statistics.median(values) for name, values in times.items()} | {"all": times}


# --- (2) steps in one process -------------------------------------------------------------
def d2l_steps(spec: str, batch: int, lr: float, steps: int, warmup: int, root: Path, workers: int) -> float:
    import torch
    from torch import nn
    import specc
    train_iter, _ = d2l_data(root, batch, specc.load(spec).input_shape[1:], workers)
    model = d2l_model(spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    model.train()
    metric, done, started = [0.0, 0.0, 0], 0, None
    while done < warmup + steps:
        for X, y in train_iter:
            if done == warmup:
                started = time.perf_counter()
            d2l_step(model, optimizer, loss, X, y, metric)
            done += 1
            if done == warmup + steps:
                break
    return steps * batch / (time.perf_counter() - started)


def specc_steps(spec: str, batch: int, lr: float, steps: int, warmup: int, source: Path) -> float:
    import specc
    from specc.train import recipe as recipes
    from specc.train.loop import Options, Run, start_processes
    net = specc.load(spec)
    recipe = {**recipes.DEFAULTS, **recipes.resolve(net), "batch": batch, "lr": lr, "epochs": 1}
    out = tempfile.mkdtemp(prefix="specc-bench-run-")
    options = Options(data_dir=str(source), device="cpu", progress=False, echo=lambda *_: None,
                      train_limit=batch * (warmup + steps), out=out)
    try:
        run = Run(net, recipe, {}, options, start_processes("cpu"))
        full = run.dataset
        part = lambda lo, hi: full._replace(train_images=full.train_images[lo:hi], train_labels=full.train_labels[lo:hi])
        run.dataset = part(0, batch * warmup)
        run.train_epoch(0)  # warm-up
        run.dataset = part(batch * warmup, batch * (warmup + steps))
        return run.train_epoch(1)["examples_per_sec"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", default="specs/lenet.cnn")
    parser.add_argument("--batch", type=int, default=None, help="default: the spec's recipe")
    parser.add_argument("--lr", type=float, default=None, help="default: the spec's recipe")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternated, for both ratios")
    parser.add_argument("--workers", type=int, default=4, help="d2l's DataLoader workers (d2l uses 4)")
    parser.add_argument("--data", default=None, help="directory of the Fashion-MNIST IDX files")
    parser.add_argument("--skip-whole", action="store_true", help="only the examples/sec ratio")
    parser.add_argument("--d2l-epoch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.d2l_epoch:  # the baseline's own process, timed by the parent
        d2l_epoch_process(args.spec, Path(args.root), args.batch, args.lr, args.workers)
        return
    import warnings
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers on 2 cores, as d2l does
    import torch
    import specc
    from specc.train import data, recipe as recipes
    recipe = recipes.resolve(specc.load(args.spec))
    batch, lr = args.batch or recipe["batch"], args.lr or recipe["lr"]
    source = Path(data.load("fashion-mnist", args.data).source)
    root = unpacked_fashion_root(source)
    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
    from specc.lang.memory import train_channels_last
    layout = "channels_last" if train_channels_last(specc.load(args.spec), "cpu") else "NCHW"
    print(f"{args.spec}, batch {batch}, lr {lr}, cpu {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"specc's layout {layout} (d2l's NCHW), load average {load}", flush=True)
    try:
        if not args.skip_whole:
            whole = whole_epochs(args.spec, source, root, batch, lr, args.workers, args.repeats)
            runs = lambda name: ", ".join(f"{t:.1f}" for t in whole["all"][name])
            print(f"(1) one epoch as a whole process, median of {args.repeats}:\n"
                  f"    d2l-style script:  {whole['d2l']:6.1f} s  ({runs('d2l')})\n"
                  f"    specc train:       {whole['specc']:6.1f} s  ({runs('specc')})\n"
                  f"    ratio:             {whole['d2l'] / whole['specc']:6.2f}x", flush=True)
        speeds = {"d2l": [], "specc": []}
        for _ in range(args.repeats):  # alternated, as the whole processes are
            speeds["d2l"].append(d2l_steps(args.spec, batch, lr, args.steps, args.warmup, root, args.workers))
            speeds["specc"].append(specc_steps(args.spec, batch, lr, args.steps, args.warmup, source))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    d2l, ours = (statistics.median(speeds[name]) for name in ("d2l", "specc"))
    runs = lambda name: ", ".join(f"{v:,.0f}" for v in speeds[name])
    print(f"(2) examples/sec over {args.steps} steps after {args.warmup} warm-up steps, median of {args.repeats}:\n"
          f"    d2l loop (DataLoader, {args.workers} workers): {d2l:8,.0f}  ({runs('d2l')})\n"
          f"    specc loop:                       {ours:8,.0f}  ({runs('specc')})\n"
          f"    ratio:                            {ours / d2l:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
