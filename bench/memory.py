"""Training memory: specc's static estimate against the PyTorch allocator's measured peak.

For each row, the spec is loaded (at an input size where given), specc.lang.memory.training_memory
estimates a steady training step's peak without torch, and specc.runtime.memory.measure_training_peaks
measures it: float32 on the CPU with one thread, the step specc's loop takes, the peak of the second
step, from the profiler's allocation events (deterministic). The default rows are issue 11's table;
--all adds every spec in specs/ and specs/torchvision/ at batches 2 and 4 on a small input (the test
suite's sizes), including the models the suite leaves to this script as too slow for it. Run:

    python bench/memory.py                      # SGD with momentum 0.9, as issue 11 measured
    python bench/memory.py --momentum 0         # the default recipe's plain SGD
    python bench/memory.py --optimizer adam --all
    python bench/memory.py --layout nchw       # both formats are modelled; the default is specc train's
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own start/stop chatter
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import specc  # noqa: E402
from specc.lang.memory import train_channels_last, training_memory  # noqa: E402

# (spec, input side or None for the spec's own, batch): issue 11's rows
ISSUE_ROWS = [
    ("specs/lenet.cnn", None, 256),
    ("specs/alexnet.cnn", None, 32),
    ("specs/resnet18.cnn", 96, 64),
    ("specs/densenet.cnn", 96, 64),
    ("specs/vgg11.cnn", None, 8),
    ("specs/torchvision/mobilenet_v2.cnn", None, 8),
    ("specs/torchvision/resnet50.cnn", None, 8),
]
SMALL_SIDES = (32, 48, 64, 96)  # --all: the smallest of these each spec accepts (Inception-v3 needs 75)
SMALL_BATCHES = (2, 4)
MIB = 2 ** 20


def load(path: str, side: int | None):
    net = specc.load(ROOT / path)
    if side is None:
        return net
    return specc.load(ROOT / path, input_shape=(net.input_shape[0], side, side))


def smallest_input(path: str):
    for side in SMALL_SIDES:
        try:
            return load(path, side), side
        except specc.SpecError:
            continue
    return load(path, None), None


def all_rows() -> list[tuple[str, int | None, tuple[int, ...]]]:
    paths = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.cnn"))
    paths += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs" / "torchvision").glob("*.cnn"))
    return [(path, smallest_input(path)[1], SMALL_BATCHES) for path in paths]


def measure_row(path: str, side: int | None, batches: tuple[int, ...], args) -> list[str]:
    from specc.runtime.memory import ORACLE_THREADS, measure_training_peaks
    net = load(path, side)
    layout = {"nchw": False, "channels-last": True}.get(args.layout, train_channels_last(net, "cpu"))
    settings = {"optimizer": args.optimizer, "momentum": args.momentum, "channels_last": layout}
    peaks = measure_training_peaks(net, batches, **settings)
    lines = []
    for batch in batches:
        estimate = training_memory(net, batch, threads=ORACLE_THREADS, **settings).total
        name = Path(path).stem if "torchvision" not in path else f"torchvision {Path(path).stem}"
        shown = f"{name} ({side} px)" if side else name
        error = estimate / peaks[batch] - 1
        lines.append(f"| {shown} @{batch} | {'channels_last' if layout else 'NCHW'} | {estimate / MIB:.1f} MiB | "
                     f"{peaks[batch] / MIB:.1f} MiB | {error:+.1%} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9, as issue 11)")
    parser.add_argument("--all", action="store_true", help="also every shipped spec at batches 2 and 4, small input")
    parser.add_argument("--layout", choices=("train", "nchw", "channels-last"), default="train",
                        help="memory format (default: the one specc train uses on the CPU for each spec)")
    args = parser.parse_args()
    rows = [(path, side, (batch,)) for path, side, batch in ISSUE_ROWS]
    if args.all:
        rows += all_rows()
    label = args.optimizer
    if args.optimizer == "sgd" and args.momentum:
        label += f" momentum {args.momentum:g}"
    print(f"float32, CPU, {label}: specc's estimate against the allocator's peak in the second training step",
          flush=True)
    print("| spec @ batch | layout | specc estimate | measured peak | error |\n|---|---|---|---|---|", flush=True)
    started = time.perf_counter()
    for path, side, batches in rows:
        for line in measure_row(path, side, batches, args):
            print(line, flush=True)
    print(f"({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
