"""How fast is `specc check`, and how does static inference compare with PyTorch?

Runs side by side, on every spec in specs/ (or the files given):
  (a) `specc check SPEC` as a whole process: median wall time and peak RSS;
  (b) the same question answered with PyTorch: a process that loads the spec,
      builds the module on the meta device (no weights allocated) and runs a
      forward pass on a meta tensor; its wall time and peak RSS;
  (c) in one warm process: static inference (specc.load) against build + meta
      forward, which isolates the analysis from interpreter and import costs.

    python bench/check_speed.py [--runs 5] [--check-only] [SPEC ...]

--check-only times (a) alone, for a quick sweep over many specs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
META = ("import sys, torch, specc; net = specc.load(sys.argv[1]); "
        "m = net.build(device='meta').eval(); m(torch.empty(2, *net.input_shape, device='meta'))")


def run_process(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def median_process(argv: list[str], runs: int) -> tuple[float, float]:
    samples = [run_process(argv) for _ in range(runs)]
    return statistics.median(w for w, _ in samples), max(r for _, r in samples)


def median_call(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check-only", action="store_true", help="time `specc check` processes only")
    args = parser.parse_args()
    specs = args.specs or sorted((ROOT / "specs").glob("*.cnn"))
    specc_cli = [sys.executable, "-m", "specc", "check"]

    if args.check_only:
        check_only(specs, specc_cli, args.runs)
        return
    # Processes first: a child forked after this process imported torch would
    # count torch's pages in its own peak RSS.
    processes = {spec: (median_process([*specc_cli, str(spec)], args.runs),
                        median_process([sys.executable, "-c", META, str(spec)], args.runs)) for spec in specs}

    import specc
    import torch

    header = (f"{'spec':<12} {'check s':>8} {'check MB':>9} {'meta s':>8} {'meta MB':>8} {'ratio':>6}   "
              f"{'infer ms':>9} {'meta ms':>9} {'ratio':>6}")
    print(f"{args.runs} runs each; medians; whole processes, then in one warm process\n{header}")
    worst_wall = worst_rss = 0.0
    for spec in specs:
        (check_wall, check_rss), (meta_wall, meta_rss) = processes[spec]
        net = specc.load(spec)
        infer_s = median_call(lambda: specc.load(spec), args.runs)
        meta_s = median_call(lambda: net.build(device="meta").eval()(
            torch.empty(2, *net.input_shape, device="meta")), args.runs)
        worst_wall, worst_rss = max(worst_wall, check_wall), max(worst_rss, check_rss)
        print(f"{spec.stem:<12} {check_wall:8.3f} {check_rss:9.1f} {meta_wall:8.3f} {meta_rss:8.1f} "
              f"{meta_wall / check_wall:5.1f}x   {infer_s * 1e3:9.2f} {meta_s * 1e3:9.2f} {meta_s / infer_s:5.1f}x")
    print(f"\nworst `specc check`: {worst_wall:.3f} s wall, {worst_rss:.1f} MB peak RSS "
          f"(target: 0.150 s, 60 MB)")


def check_only(specs: list[Path], specc_cli: list[str], runs: int) -> None:
    print(f"{runs} runs each; medians of whole `specc check` processes")
    results = {spec: median_process([*specc_cli, str(spec)], runs) for spec in specs}
    for spec, (wall, rss) in sorted(results.items(), key=lambda item: item[1][0]):
        print(f"{spec.relative_to(ROOT) if spec.is_absolute() else spec}  {wall:.3f} s  {rss:.1f} MB")
    walls = sorted(wall for wall, _ in results.values())
    print(f"\n{len(specs)} specs: median {statistics.median(walls):.3f} s, worst {walls[-1]:.3f} s, "
          f"peak RSS {max(r for _, r in results.values()):.1f} MB (target: 0.150 s, 60 MB)")


if __name__ == "__main__":
    main()
