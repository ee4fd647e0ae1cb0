"""Full torchvision parity for the models too large for the suite (over 150M parameters).

tests/test_torchvision.py checks these models only statically and on the meta
device (test_large_models_on_meta); this script runs on them the same full
check as its test_parity, with the test module's own helpers (randomize_norms,
relative_diff, train_step, _flat_shapes): the parameter count, the shapes of
the parameters and buffers (build(weights=) pairs them and refuses a
mismatch), eval outputs within 1e-5 relative, training-mode outputs (same
random draws), running statistics, and eval outputs after one SGD step.

Each model runs in a child process, so that its peak RSS is its own. A model
whose spec is missing (specs/torchvision/NAME.cnn) is skipped with a message.
Needs torch, torchvision and, for both models at 64 px, about 12 GB of memory.

    python bench/parity_large.py [--size 64] [MODEL ...]     (default: regnet_y_128gf convnext_large)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs" / "torchvision"
MODELS = ("regnet_y_128gf", "convnext_large")


def check(name: str, size: int) -> dict:
    """test_parity's steps for one model; every check runs, and each failure is recorded rather than raised."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    import torchvision
    import specc
    from test_torchvision import KWARGS, _flat_shapes, expected_params, randomize_norms, relative_diff, train_step

    start = time.perf_counter()
    failures = []
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None, **KWARGS.get(name, {}))
    randomize_norms(reference)
    net = specc.load(SPECS / f"{name}.cnn", input_shape=(3, size, size))
    counts = (net.param_count, sum(p.numel() for p in reference.parameters()), expected_params(name))
    if len(set(counts)) != 1:
        failures.append(f"parameter counts (spec, torchvision, documented) differ: {counts}")

    model = net.build(weights=reference)
    if _flat_shapes(model) != _flat_shapes(reference):
        failures.append("the parameter and buffer shapes differ")

    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, want = model.eval()(x), reference.eval()(x)
    eval_diff, eval_rel = relative_diff(out, want)
    if not (out.shape == want.shape == (2, 1000) == (2, *net.output_shape)):
        failures.append(f"output shapes differ: {tuple(out.shape)} against {tuple(want.shape)}")
    if eval_rel > 1e-5:
        failures.append(f"eval outputs differ by {eval_diff:.3g} ({eval_rel:.3g} relative)")
    del out, want

    train_diff = None
    try:
        train_diff = train_step(model, reference, x, name)
    except AssertionError as err:
        failures.append(str(err).splitlines()[0])
    return {"params": net.param_count, "eval_diff": eval_diff, "train_diff": train_diff,
            "seconds": time.perf_counter() - start, "failures": failures}


def run_child(name: str, size: int) -> dict:
    """check() in a child process (which adds its own peak RSS, in GB): the result, or {"error": ...}."""
    proc = subprocess.run([sys.executable, __file__, "--child", name, "--size", str(size)],
                          capture_output=True, cwd=ROOT, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(MODELS))
    parser.add_argument("--size", type=int, default=64, help="input size in pixels (default 64, as the suite)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one model, in this process; the last line is the result as JSON
        import resource
        result = check(args.child, args.size)
        result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(result))
        return 0

    failed = False
    print(f"full parity with torchvision at {args.size} px, batch 2 (tests/test_torchvision.py::test_parity's checks)")
    for name in args.models:
        if not (SPECS / f"{name}.cnn").is_file():
            print(f"{name}: skipped: no spec at {(SPECS / f'{name}.cnn').relative_to(ROOT)}", flush=True)
            continue
        print(f"{name}: running ...", flush=True)
        result = run_child(name, args.size)
        if "error" in result:
            failed = True
            print(f"{name}: ERROR: {result['error']}", flush=True)
            continue
        train = "—" if result["train_diff"] is None else f"{result['train_diff']:.1e}"
        print(f"{name}: params {result['params']:,}  eval max abs diff {result['eval_diff']:.1e}  "
              f"train max abs diff {train}  {result['seconds']:.0f} s  peak RSS {result['peak_rss_gb']:.1f} GB  "
              + ("ok" if not result["failures"] else "FAILED"), flush=True)
        for failure in result["failures"]:
            failed = True
            print(f"    {failure}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
