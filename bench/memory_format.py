"""One training step in NCHW against channels_last, per spec, side by side.

The numbers behind the CPU's default memory format (specc.lang.memory.
train_channels_last): each spec's module, a random batch, SGD, forward +
cross-entropy + backward + step, timed in rounds alternated between the two
formats; the best round of each. Run:

    python bench/memory_format.py                     # the d2l specs at their own inputs
    python bench/memory_format.py specs/vgg11.cnn:32:2 --input 1x64x64

Each argument is SPEC:BATCH:STEPS (steps per round).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's specc, not an installed copy

D2L = ["specs/lenet.cnn:256:10", "specs/lenet_bn.cnn:256:10", "specs/alexnet.cnn:16:2", "specs/vgg11.cnn:4:2",
       "specs/nin.cnn:8:2", "specs/resnet18.cnn:32:2", "specs/densenet.cnn:32:2", "specs/googlenet.cnn:16:2"]


def step_function(net, channels_last: bool, batch: int):
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = net.build()
    x = torch.rand(batch, *net.input_shape)
    y = torch.randint(0, net.output_shape[0], (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    return step


def best_round_ms(steps: dict, per_round: int, rounds: int) -> dict:
    for step in steps.values():
        step()  # the first call at a shape pays one-off costs
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(per_round):
                step()
            times[name].append((time.perf_counter() - started) / per_round * 1000)
    return {name: min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", default=D2L, metavar="SPEC:BATCH:STEPS")
    parser.add_argument("--input", default=None, help="CxHxW for every spec (default: each spec's own)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    import torch
    import specc
    from specc.lang.memory import train_channels_last
    shape = tuple(int(v) for v in args.input.split("x")) if args.input else None
    print(f"torch {torch.__version__}, cpu {torch.get_num_threads()} threads, best of {args.rounds} rounds\n")
    print("| spec (batch) | NCHW | channels_last | speed-up | specc's default |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        path, batch, per_round = run.rsplit(":", 2)
        net = specc.load(path, input_shape=shape) if shape else specc.load(path)
        steps = {layout: step_function(net, layout, int(batch)) for layout in (False, True)}
        ms = best_round_ms(steps, int(per_round), args.rounds)
        default = "channels_last" if train_channels_last(net, "cpu") else "NCHW"
        print(f"| {Path(path).stem} ({batch}) | {ms[False]:.1f} ms | {ms[True]:.1f} ms | "
              f"{ms[False] / ms[True]:.2f}x | {default} |", flush=True)


if __name__ == "__main__":
    main()
