#!/usr/bin/env bash
# bench/gpu.sh: specc's CUDA path, checked and measured in one short run: after the set-up, steps
# 3-5 share a budget of 7.5 minutes (each is cut off by `timeout` when it is spent).
#
#   1. CPU set-up: a Python with specc (.venv if there is one, else a new .venv that reuses the
#      machine's own torch if it has one, then `pip install -e ".[dev]"`) and Fashion-MNIST
#      (--data DIR, else $SPECC_DATA, else Debian's dataset-fashion-mnist).
#   2. Stops with a message where there is no CUDA device.
#   3. The suite's CUDA tests (tests that mention CUDA, selected by name).
#   4. `specc train` end to end on the GPU: LeNet, one epoch, eager and --compile, then `specc eval`.
#   5. AlexNet at 224 px, ResNet-18 at 96 px and VGG-11 at 224 px (the specs' own inputs and d2l's
#      batch sizes) on Fashion-MNIST: --steps timed steps after as many warm-up steps, with d2l's
#      loop (bench/train_speed.py's d2l_data, d2l_model, d2l_step) and with specc's loop in five variants (float32 or
#      bf16 autocast, NCHW or channels_last, and bf16 + channels_last + torch.compile); prints
#      examples/sec, the ratio to d2l's loop, and specc's memory estimate against
#      torch.cuda.max_memory_allocated() over the timed steps, as markdown tables.
#
# Usage: bash bench/gpu.sh [--data DIR] [--steps N] [--skip-tests] [--python PY] [--cpu-rehearsal]
#
# --cpu-rehearsal runs steps 4-5 on the CPU at toy sizes (batch 4, 2 steps unless --steps is given,
# no bf16, no compile, LeNet on 512 examples): it checks the script itself; its numbers mean nothing.
#
# On a machine without internet, bring the data along: copy the four IDX files into data/fashion-mnist/
# (ignored by git) and pass --data data/fashion-mnist.
set -uo pipefail

STEPS=
DATA_DIR=${SPECC_DATA:-}
PYTHON=
SKIP_TESTS=0
REHEARSAL=0

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench/gpu.sh: $*" >&2; exit 2; }
phase() { printf '\n== %s  (%d s so far)\n' "$1" "$SECONDS"; }

while [ $# -gt 0 ]; do
    case $1 in
        --steps) [ $# -ge 2 ] || die "--steps needs a number"; STEPS=$2; shift 2 ;;
        --steps=*) STEPS=${1#*=}; shift ;;
        --data) [ $# -ge 2 ] || die "--data needs a directory"; DATA_DIR=$2; shift 2 ;;
        --data=*) DATA_DIR=${1#*=}; shift ;;
        --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PYTHON=$2; shift 2 ;;
        --python=*) PYTHON=${1#*=}; shift ;;
        --skip-tests) SKIP_TESTS=1; shift ;;
        --cpu-rehearsal) REHEARSAL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ -n "$STEPS" ] || { [ "$REHEARSAL" = 1 ] && STEPS=2 || STEPS=20; }
case $STEPS in ''|*[!0-9]*) die "--steps wants a whole number from 1 to 500, got '$STEPS'" ;; esac
[ "$STEPS" -ge 1 ] && [ "$STEPS" -le 500 ] || die "--steps wants a whole number from 1 to 500, got '$STEPS'"
[ -z "$DATA_DIR" ] || [ -d "$DATA_DIR" ] || die "--data $DATA_DIR: no such directory"
[ -z "$DATA_DIR" ] || DATA_DIR=$(cd "$DATA_DIR" && pwd)
cd "$(dirname "$0")/.." || die "cannot enter the repository"

# Fail fast: no NVIDIA driver means nothing below can run, so nothing is installed either.
if [ "$REHEARSAL" = 0 ] && ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia0 >/dev/null 2>&1; then
    die "no CUDA device here (no nvidia-smi, no /dev/nvidia0). This script measures specc on a GPU;
on a CPU, bench/train_speed.py measures the training loop and bench/memory.py the memory estimate."
fi

phase "1. set-up (CPU)"
if [ -z "$PYTHON" ]; then
    if [ ! -x .venv/bin/python ]; then
        # A torch the machine already has (often a CUDA build) is reused instead of downloaded again.
        if python3 -c "import torch" >/dev/null 2>&1; then site=--system-site-packages; else site=; fi
        echo "creating .venv ${site:+($site)}"
        python3 -m venv $site .venv || die "python3 -m venv failed"
    fi
    PYTHON=.venv/bin/python
fi
if ! "$PYTHON" -c "import specc, torch, torchvision, pytest" >/dev/null 2>&1; then
    echo "installing specc with its test extras into $PYTHON's environment"
    "$PYTHON" -m pip install -q -e ".[dev]" || die "pip install -e '.[dev]' failed (is a package registry reachable?)"
fi
"$PYTHON" -c "import specc, torch, torchvision; print('specc', specc.__version__, '| torch', torch.__version__,
'(CUDA build', torch.version.cuda, ') | torchvision', torchvision.__version__)" || die "$PYTHON cannot import specc"

if ! "$PYTHON" -c "from specc.train import data; data.load('fashion-mnist', '${DATA_DIR}' or None)" >/dev/null 2>&1; then
    if [ -z "$DATA_DIR" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Fashion-MNIST not found: trying apt-get install dataset-fashion-mnist"
        timeout 180 apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
            timeout 180 sh -c 'apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist' >/dev/null 2>&1
    fi
    "$PYTHON" -c "from specc.train import data; data.load('fashion-mnist', '${DATA_DIR}' or None)" ||
        die "no Fashion-MNIST: pass --data DIR with its four IDX files (train-images-idx3-ubyte.gz, ...)"
fi

if [ "$REHEARSAL" = 0 ]; then
    DEVICE=cuda
    "$PYTHON" - <<'PY' || die "no CUDA device usable by torch (see above). Is this torch a CUDA build, and the driver loaded?"
import sys, torch
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees no CUDA device", file=sys.stderr)
    sys.exit(1)
name = torch.cuda.get_device_name(0)
free, total = torch.cuda.mem_get_info(0)
print(f"device: {name}, {total / 2**30:.0f} GiB, cuDNN {torch.backends.cudnn.version()}, "
      f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'NO'}")
PY
else
    DEVICE=cpu
    echo "CPU rehearsal: steps 4-5 on the CPU at toy sizes; the numbers mean nothing"
fi

failed=0
DEADLINE=$((SECONDS + 450))  # phases 3-5 share 7.5 minutes; the set-up above takes what pip needs
# A phase's time limit: its own cap, or what is left before the deadline if that is less.
limit_s() { local left=$((DEADLINE - SECONDS)); [ "$left" -gt 5 ] || left=5; [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/specc-gpu.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT
export SPECC_DATA=${DATA_DIR:-${SPECC_DATA:-}}
[ -n "$SPECC_DATA" ] || unset SPECC_DATA

phase "3. the suite's CUDA tests"
if [ "$SKIP_TESTS" = 1 ] || [ "$REHEARSAL" = 1 ]; then
    echo "skipped"
else
    mapfile -t files < <(grep -l -i -E "cuda|gpu" tests/test_*.py)
    if [ ${#files[@]} = 0 ]; then
        echo "no test file mentions CUDA"
    else
        timeout "$(limit_s 120)" "$PYTHON" -m pytest -q -rs -p no:cacheprovider -k "cuda or gpu or bf16 or autocast" "${files[@]}"
        rc=$?
        case $rc in
            0) ;;
            5) echo "no test of ${files[*]} is selected by 'cuda or gpu or bf16 or autocast'" ;;
            *) echo "CUDA tests FAILED (exit $rc)"; failed=1 ;;
        esac
    fi
fi

phase "4. specc train end to end on $DEVICE (LeNet, one epoch)"
few=(); [ "$REHEARSAL" = 1 ] && few=(--limit 512)
for extra in "" --compile; do
    [ "$REHEARSAL" = 1 ] && [ -n "$extra" ] && continue
    out="$WORK/lenet${extra:+-compiled}"
    echo "\$ specc train specs/lenet.cnn --device $DEVICE --epochs 1 ${few[*]} $extra"
    timeout "$(limit_s 90)" "$PYTHON" -m specc train specs/lenet.cnn --device "$DEVICE" --epochs 1 "${few[@]}" $extra \
        --out "$out" --no-progress || { echo "FAILED"; failed=1; }
done
echo "\$ specc eval RUN --device $DEVICE"
if timeout "$(limit_s 45)" "$PYTHON" -m specc eval "$WORK/lenet" --device "$DEVICE" >"$WORK/eval.txt"; then
    head -n 1 "$WORK/eval.txt"
else
    cat "$WORK/eval.txt"; echo "FAILED"; failed=1
fi

phase "5. AlexNet 224 px, ResNet-18 96 px, VGG-11 224 px: d2l's loop and specc's, $STEPS steps"
timeout "$(limit_s 450)" "$PYTHON" - "$DEVICE" "$STEPS" "$REHEARSAL" "$WORK" <<'PY' || failed=1
import contextlib, gc, inspect, shutil, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, "bench")
import train_speed  # d2l's data, model and step live there; reused, not copied
import specc
from specc.tools.summary import human_bytes, training_memory
from specc.train import data as datasets, loop, recipe as recipes

device, steps, rehearsal, work = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
NETS = ["specs/alexnet.cnn", "specs/resnet18.cnn", "specs/vgg11.cnn"]
VARIANTS = [  # label, bf16 autocast, channels_last, torch.compile
    ("specc, float32", False, False, False),
    ("specc, bf16", True, False, False),
    ("specc, float32, channels_last", False, True, False),
    ("specc, bf16, channels_last (its CUDA default)", True, True, False),
    ("specc, bf16, channels_last, --compile", True, True, True),
]
if rehearsal:  # the CPU has no bf16 autocast in specc's loop, and compiling takes minutes there
    VARIANTS = [v for v in VARIANTS if not v[1]]


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


def free_memory():
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def estimate(net, recipe, batch, bf16, channels_last):
    """specc's static estimate, with the optimizer, autocast and layout where training_memory models them."""
    accepts = inspect.signature(training_memory).parameters
    extra = {}
    if "optimizer" in accepts:
        extra.update(optimizer=recipe["optimizer"], momentum=recipe["momentum"])
    if "autocast" in accepts:
        extra["autocast"] = bf16
    if "channels_last" in accepts:
        extra["channels_last"] = channels_last
    return training_memory(net, batch, **extra).total


def specc_run(spec, batch, bf16, channels_last, compile_):
    options = loop.Options(device=device, out=tempfile.mkdtemp(dir=work), compile=compile_,
                           channels_last=channels_last, train_limit=batch * steps, test_limit=batch,
                           progress=False, echo=lambda *_: None)
    run = loop.start(spec, {}, {"batch": batch}, options)
    if not bf16:  # `specc train` has no switch for it: on CUDA its loop always autocasts to bf16
        run.autocast = contextlib.nullcontext
    run.train_epoch(0)  # warm-up: cuDNN's algorithm search, torch.compile's compilation
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stats = run.train_epoch(1)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    row = {"examples_per_sec": stats["examples_per_sec"], "peak": peak,
           "estimate": estimate(run.net, run.recipe, batch, bf16, run.channels_last)}
    del run
    free_memory()
    return row


def d2l_run(spec, batch, lr, root):
    """d2l's train_ch6 on `device`: bench/train_speed.py's pieces of it (data, model, step), plus the
    two .to(device) calls train_ch6 makes."""
    train_iter, _ = train_speed.d2l_data(root, batch, specc.load(spec).input_shape[1:], 4)
    model = train_speed.d2l_model(spec).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss = torch.nn.CrossEntropyLoss()
    model.train()
    metric, done, started = [0.0, 0.0, 0], 0, None
    while done < 2 * steps:  # as many warm-up steps as timed ones
        for X, y in train_iter:
            if done == steps:
                sync()
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                started = time.perf_counter()
            train_speed.d2l_step(model, optimizer, loss, X.to(device), y.to(device), metric)
            done += 1
            if done == 2 * steps:
                break
    sync()  # d2l_step's float() has synchronised already; this keeps the timer honest regardless
    speed = steps * batch / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    del model, optimizer
    free_memory()
    return {"examples_per_sec": speed, "estimate": None, "peak": peak}


def row(label, result, base):
    """One markdown row; printed as soon as it is measured, so a timeout keeps what was done."""
    speed, est, peak = result["examples_per_sec"], result["estimate"], result["peak"]
    ratio = f"{speed / base:.2f}x" if base else "—"
    shown = lambda n: "—" if n is None else human_bytes(n)
    error = f"{100 * (est - peak) / peak:+.1f}%" if est is not None and peak else "—"
    print(f"| {label} | {speed:,.0f} | {ratio} | {shown(est)} | {shown(peak)} | {error} |", flush=True)


def measure(spec, recipe, root):
    """The table of one network; returns how many of its rows failed."""
    batch = 4 if rehearsal else recipe["batch"]
    print(f"\n{spec}, batch {batch}, {steps} steps timed after {steps} warm-up, {device}\n\n"
          "| loop | examples/sec | vs d2l | memory estimate | max_memory_allocated | error |\n"
          "|---|---|---|---|---|---|", flush=True)
    jobs = [("d2l loop, DataLoader with 4 workers, float32", lambda: d2l_run(spec, batch, recipe["lr"], root))]
    jobs += [(label, lambda v=variant: specc_run(spec, batch, *v)) for label, *variant in VARIANTS]
    base, failures = None, 0
    for label, job in jobs:
        try:
            result = job()
        except Exception as exc:  # one failed variant must not hide the others' numbers
            failures += 1
            print(f"| {label} | failed: {type(exc).__name__}: {str(exc)[:200]} | — | — | — | — |", flush=True)
            free_memory()
            continue
        if label.startswith("d2l"):
            base = result["examples_per_sec"]
        row(label, result, base)
    return failures


root = train_speed.unpacked_fashion_root(Path(datasets.load("fashion-mnist").source))  # torchvision's layout
failures = 0
try:
    for spec in NETS:
        started = time.perf_counter()
        failures += measure(spec, recipes.resolve(specc.load(spec)), root)
        print(f"({time.perf_counter() - started:.0f} s)", flush=True)
finally:
    shutil.rmtree(root, ignore_errors=True)
sys.exit(1 if failures else 0)
PY

phase "done"
[ "$failed" = 0 ] && echo "all phases passed" || echo "some phase FAILED (see above)"
exit $failed
