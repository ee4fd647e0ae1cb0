"""Training throughput: specc's loop against a faithful d2l train_ch6 loop, same model, same steps.

(a) specc: the dataset decoded once into a uint8 tensor, batches sliced and
    converted on the device (specc.train.loop.Run.train_epoch).
(b) d2l: torchvision.datasets.FashionMNIST + [Resize] + ToTensor +
    DataLoader(shuffle=True, num_workers=4), then d2l's step: zero_grad,
    forward, CrossEntropyLoss, backward, SGD step, and d2l.accuracy's
    per-step float() of the loss sum and correct count.

Both models are built from the same spec with d2l's xavier init; both time
the whole loop (data loading included) over the same number of steps after
warm-up steps. Run:

    python bench/train_speed.py specs/lenet.cnn --batch 256 --steps 150
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import specc
from specc.train import data, recipe as recipes
from specc.train.loop import Options, Run, init_weights, start_processes


def unpacked_fashion_root(source: Path) -> Path:
    """torchvision wants ROOT/FashionMNIST/raw/<unpacked IDX files>."""
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


def d2l_loop(spec: str, batch: int, lr: float, steps: int, warmup: int, root: Path, workers: int) -> dict:
    import torchvision
    from torchvision import transforms

    net = specc.load(spec)
    size = net.input_shape[1:]
    trans = [transforms.ToTensor()]
    if tuple(size) != (28, 28):
        trans.insert(0, transforms.Resize(size))
    train = torchvision.datasets.FashionMNIST(str(root), train=True, transform=transforms.Compose(trans),
                                              download=False)
    loader = torch.utils.data.DataLoader(train, batch, shuffle=True, num_workers=workers)
    torch.manual_seed(0)
    model = net.build()
    init_weights(model, "xavier")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    model.train()
    metric = [0.0, 0.0, 0]
    done, started, compute = 0, None, 0.0
    while done < warmup + steps:
        for X, y in loader:
            if done == warmup:
                started = time.perf_counter()
            t0 = time.perf_counter()
            optimizer.zero_grad()
            y_hat = model(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():  # d2l.accuracy + Accumulator.add: Python floats every step
                metric[0] += float(l * X.shape[0])
                metric[1] += float((y_hat.argmax(axis=1).type(y.dtype) == y).type(y.dtype).sum())
                metric[2] += X.shape[0]
            if done >= warmup:
                compute += time.perf_counter() - t0
            done += 1
            if done == warmup + steps:
                break
    wall = time.perf_counter() - started
    return {"examples_per_sec": steps * batch / wall, "compute_only": steps * batch / compute}


def specc_loop(spec: str, batch: int, lr: float, steps: int, warmup: int, source: Path,
               channels_last: bool = False) -> dict:
    net = specc.load(spec)
    recipe = {**recipes.DEFAULTS, "batch": batch, "lr": lr, "epochs": 1}
    options = Options(data_dir=str(source), device="cpu", progress=False, echo=lambda *_: None,
                      channels_last=channels_last,
                      train_limit=batch * (warmup + steps), out=tempfile.mkdtemp(prefix="specc-bench-run-"))
    run = Run(net, recipe, {}, options, start_processes("cpu"))
    full = run.dataset
    part = lambda lo, hi: full._replace(train_images=full.train_images[lo:hi], train_labels=full.train_labels[lo:hi])
    run.dataset = part(0, batch * warmup)
    run.train_epoch(0)  # warm-up
    run.dataset = part(batch * warmup, batch * (warmup + steps))
    stats = run.train_epoch(1)
    return {"examples_per_sec": stats["examples_per_sec"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", default="specs/lenet.cnn")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.9)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="d2l's DataLoader workers (d2l uses 4)")
    parser.add_argument("--data", default=None, help="directory of the Fashion-MNIST IDX files")
    args = parser.parse_args()
    source = Path(data.load("fashion-mnist", args.data).source)
    root = unpacked_fashion_root(source)
    print(f"{args.spec}, batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"cpu {torch.get_num_threads()} threads, torch {torch.__version__}")
    try:
        d2l = d2l_loop(args.spec, args.batch, args.lr, args.steps, args.warmup, root, args.workers)
        ours = specc_loop(args.spec, args.batch, args.lr, args.steps, args.warmup, source)
        ours_cl = specc_loop(args.spec, args.batch, args.lr, args.steps, args.warmup, source, channels_last=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'d2l loop (DataLoader, %d workers):' % args.workers:37s} {d2l['examples_per_sec']:10,.0f} examples/sec "
          f"(d2l's own timer, data loading excluded: {d2l['compute_only']:,.0f})")
    base = d2l["examples_per_sec"]
    for label, result in (("specc loop", ours), ("specc loop, --channels-last", ours_cl)):
        print(f"{label + ':':37s} {result['examples_per_sec']:10,.0f} examples/sec   "
              f"{result['examples_per_sec'] / base:.2f}x d2l")


if __name__ == "__main__":
    main()
