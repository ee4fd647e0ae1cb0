"""Runs, checkpoints and data: nothing lost, nothing silently wrong (issue 9).

Each test reproduces one way a run directory, a checkpoint or a dataset could
be lost or silently wrong (an overwrite, flipped bytes, malformed metadata, a
kill between two writes, a full disk, odd IDX files, hostile images) and
checks that specc says so in one line, or recovers, instead.
"""
import errno
import json
import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from specc.cli import main
from specc.train import checkpoint, data
from specc.train.loop import Options, TrainError, resume, start
from test_train import TINY, make_dataset, write_idx


def quiet(**kw) -> Options:
    return Options(device="cpu", progress=False, echo=lambda *_: None, **kw)


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("fashion"), train=128, test=32)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, fake_data) -> Path:
    """A 1-epoch run of TINY (2 epochs in its recipe), copied by `run_copy` for each test."""
    root = tmp_path_factory.mktemp("finished")
    spec = root / "tiny.cnn"
    spec.write_text(TINY)
    start(str(spec), {}, {"epochs": 1}, quiet(data_dir=str(fake_data), out=str(root / "run"))).fit()
    return root / "run"


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    path = tmp_path / "tiny.cnn"
    path.write_text(TINY)
    return path


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def rewrite_meta(path: Path, change) -> None:
    """Replaces a checkpoint's metadata (its tensors, and so their digest, unchanged)."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["specc"])
    save_file(tensors, str(path), metadata={"specc": json.dumps(change(meta))})


def flip_tensor_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    data_start = 8 + struct.unpack("<Q", raw[:8])[0]
    raw[data_start + 17] ^= 0xFF
    path.write_bytes(bytes(raw))


# --- an existing run directory ----------------------------------------------------------
def test_train_refuses_an_existing_run_unless_overwrite(run_copy, tiny_spec, fake_data):
    before = (run_copy / "best.safetensors").read_bytes()
    with pytest.raises(TrainError, match=f"already holds a run .*specc train --resume {run_copy}.*--overwrite"):
        start(str(tiny_spec), {}, {"epochs": 1}, quiet(data_dir=str(fake_data), out=str(run_copy)))
    result = cli("train", tiny_spec, "--data", fake_data, "--device", "cpu", "--out", run_copy, "--no-progress")
    assert result.exit_code == 1 and "already holds a run" in result.output
    assert (run_copy / "best.safetensors").read_bytes() == before
    (run_copy / "notes.txt").write_text("mine")
    start(str(tiny_spec), {}, {"epochs": 1, "lr": 1e-6},
          quiet(data_dir=str(fake_data), out=str(run_copy), overwrite=True)).fit()
    assert checkpoint.read_meta(run_copy / "best.safetensors")["recipe"]["lr"] == 1e-6  # no stale best
    assert (run_copy / "notes.txt").read_text() == "mine"  # only the run's own files are replaced


# --- integrity ----------------------------------------------------------------------
def test_flipped_tensor_bytes_are_caught_on_every_load(run_copy, tiny_spec, fake_data, tmp_path):
    from PIL import Image
    for stem in ("best", "last"):
        flip_tensor_byte(run_copy / f"{stem}.safetensors")
    damaged = f"{run_copy / 'best.safetensors'} is damaged"
    result = cli("eval", run_copy, "--data", fake_data, "--device", "cpu")
    assert result.exit_code == 1 and damaged in result.output
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    result = cli("predict", run_copy, tmp_path / "x.png", "--device", "cpu")
    assert result.exit_code == 1 and damaged in result.output
    with pytest.raises(TrainError, match="last.safetensors is damaged"):
        resume(str(run_copy), {}, quiet())
    with pytest.raises(TrainError, match="--init-from .*best.safetensors is damaged"):
        start(str(tiny_spec), {}, {}, quiet(data_dir=str(fake_data), out=str(tmp_path / "b"),
                                            init_from=str(run_copy / "best.safetensors")))


@pytest.mark.parametrize("change, message", [
    (lambda m: [m], "not written by specc"),
    (lambda m: {k: v for k, v in m.items() if k != "recipe"}, "'recipe' is a required property"),
    (lambda m: {k: v for k, v in m.items() if k != "spec"}, "'spec' is a required property"),
    (lambda m: {**m, "params": None}, "params: None is not of type 'object'"),
    (lambda m: {**m, "params": [1]}, "params: .* is not of type 'object'"),
    (lambda m: {**m, "input_shape": "abc"}, "input_shape: 'abc' is not of type 'array'"),
    (lambda m: {**m, "recipe": {**m["recipe"], "lr": -1}}, "recipe setting 'lr'"),
    (lambda m: {**m, "recipe": {**m["recipe"], "batch": "x"}}, "recipe setting 'batch': 'x' is not an integer"),
    (lambda m: {**m, "recipe": {**m["recipe"], "step_size": 0}}, "recipe setting 'step_size'"),
    (lambda m: {**m, "epoch": -3}, "epoch: -3 is less than the minimum"),
    (lambda m: {**m, "epoch": 10 ** 30}, "epoch: 1000000000000000000000000000000 is greater than the maximum"),
    (lambda m: {**m, "epoch": 0}, "history does not list epochs 1..0"),
    (lambda m: {**m, "tensors_sha256": None}, "tensors_sha256"),
])
def test_malformed_metadata_is_a_clear_error(run_copy, fake_data, change, message):
    for stem in ("best", "last"):
        rewrite_meta(run_copy / f"{stem}.safetensors", change)
    with pytest.raises(TrainError, match=message):
        resume(str(run_copy), {"epochs": 2}, quiet(data_dir=str(fake_data)))
    result = cli("eval", run_copy, "--data", fake_data, "--device", "cpu")
    assert result.exit_code == 1 and result.output.startswith("error: ") and len(result.output.splitlines()) == 1


# --- resume restores what shaped the run -------------------------------------------------
def test_resume_restores_limit_and_data(tiny_spec, fake_data, tmp_path, monkeypatch):
    out = tmp_path / "r"
    start(str(tiny_spec), {}, {"epochs": 1},
          quiet(data_dir=str(fake_data), out=str(out), train_limit=40, test_limit=20)).fit()
    monkeypatch.chdir(tmp_path)  # and SPECC_DATA/Debian must not be used instead of the run's --data
    monkeypatch.setenv("SPECC_DATA", str(tmp_path / "elsewhere"))
    run = resume(str(out), {"epochs": 2}, quiet())
    assert (len(run.dataset.train_labels), len(run.dataset.test_labels)) == (40, 20)
    assert run.dataset.source == str(fake_data)
    run.fit()
    assert [row["examples"] for row in run.history] == [40, 40]
    with pytest.raises(TrainError, match="keeps the examples it started with \\(--limit 40\\)"):
        resume(str(out), {"epochs": 3}, quiet(train_limit=100, test_limit=100))
    with pytest.raises(TrainError, match="completed 2 of 2 epochs"):
        resume(str(out), {}, quiet())
    other = make_dataset(tmp_path / "other", train=30, test=10)
    with pytest.raises(TrainError, match="trained on 40 train / 20 test examples"):
        resume(str(out), {"epochs": 3}, quiet(data_dir=str(other)))


def test_resume_refuses_options_that_only_start_a_run(run_copy):
    result = cli("train", "--resume", run_copy, "--set", "classes=10")
    assert result.exit_code == 2 and "--set: only for starting a run" in result.output


# --- crashes between writes, Ctrl-C, full disks -------------------------------------------
def test_a_crash_between_checkpoint_and_sidecar_is_repaired(run_copy, fake_data, monkeypatch):
    (run_copy / "last.safetensors.tmp").write_bytes(b"x" * 1000)  # what a kill -9 mid-save leaves
    real_sidecar = checkpoint.write_sidecar

    def killed_before_sidecar(path, meta):
        if path.name == "last.safetensors" and meta["epoch"] == 2:
            raise SystemExit(137)  # the process dies after the checkpoint's rename
        real_sidecar(path, meta)

    monkeypatch.setattr(checkpoint, "write_sidecar", killed_before_sidecar)
    with pytest.raises(SystemExit):
        resume(str(run_copy), {"epochs": 3}, quiet(data_dir=str(fake_data))).fit()
    assert not (run_copy / "last.safetensors.tmp").exists()  # cleaned when the resume started
    assert json.loads((run_copy / "last.json").read_text())["epoch"] == 1  # stale: the kill came first
    monkeypatch.setattr(checkpoint, "write_sidecar", real_sidecar)
    run = resume(str(run_copy), {"epochs": 3}, quiet(data_dir=str(fake_data)))
    assert run.start_epoch == 2  # the checkpoint is the authority, not its sidecar
    run.fit()
    for stem in ("last", "best"):
        assert json.loads((run_copy / f"{stem}.json").read_text()) == checkpoint.read_meta(run_copy / f"{stem}.safetensors")
    assert not list(run_copy.glob("*.tmp"))


def test_ctrl_c_in_the_first_epoch_resumes_with_the_printed_command(tiny_spec, fake_data, tmp_path, monkeypatch):
    straight = start(str(tiny_spec), {}, {}, quiet(data_dir=str(fake_data), out=str(tmp_path / "a")))
    straight.fit()
    said = []
    run = start(str(tiny_spec), {}, {}, Options(device="cpu", progress=False, echo=said.append,
                                                data_dir=str(fake_data), out=str(tmp_path / "b")))

    def interrupted(epoch, bar=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    command = next(line for line in "\n".join(said).splitlines() if "specc train --resume" in line)
    args = command.split("specc ", 1)[1].split()
    result = cli(*args, "--device", "cpu", "--no-progress")
    assert result.exit_code == 0, result.output
    a, b = load_file(str(tmp_path / "a" / "last.safetensors")), load_file(str(tmp_path / "b" / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # as if never interrupted


def test_a_full_disk_is_an_error_and_keeps_the_checkpoint(run_copy, fake_data, monkeypatch):
    before = (run_copy / "last.safetensors").read_bytes()

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    with pytest.raises(TrainError, match="cannot write .*last.safetensors: No space left on device; "
                                         "the previous last.safetensors is intact"):
        resume(str(run_copy), {"epochs": 2}, quiet(data_dir=str(fake_data))).fit()
    assert (run_copy / "last.safetensors").read_bytes() == before
    assert not list(run_copy.glob("*.tmp"))


def test_a_read_only_out_is_an_error_before_training(tiny_spec, fake_data, tmp_path, monkeypatch):
    def read_only(tensors, filename, metadata=None):
        raise OSError(errno.EROFS, "Read-only file system", filename)

    monkeypatch.setattr(checkpoint, "save_file", read_only)
    result = cli("train", tiny_spec, "--data", fake_data, "--device", "cpu", "--out", tmp_path / "ro", "--no-progress")
    assert result.exit_code == 1 and "error: cannot write" in result.output and "Read-only file system" in result.output
    assert "epoch 1/" not in result.output  # no epoch was spent before the directory proved unwritable


# --- data -----------------------------------------------------------------------------
@pytest.mark.parametrize("name, array, message", [
    ("train-images-idx3-ubyte", torch.zeros(128, 784), "images must be N x rows x columns .* 128x784"),
    ("train-images-idx3-ubyte", torch.zeros(128, 1, 28, 28), "images must be N x rows x columns .* 128x1x28x28"),
    ("train-labels-idx1-ubyte", torch.zeros(128, 2), "labels must be one value per example .* 128x2"),
    ("t10k-images-idx3-ubyte", torch.zeros(0, 28, 28), "holds no examples"),
    ("t10k-images-idx3-ubyte", torch.zeros(32, 20, 20), "holds 20x20 images but .* holds 28x28"),
])
def test_odd_idx_files_are_refused_by_name(tmp_path, name, array, message):
    directory = make_dataset(tmp_path / "d", train=128, test=32)
    write_idx(directory / name, array)
    with pytest.raises(data.DataError, match=message) as err:
        data.load("fashion-mnist", str(directory))
    assert str(err.value).startswith(str(directory)) and name in str(err.value)


def test_data_dir_means_that_directory(tmp_path, fake_data):
    partial = tmp_path / "partial"
    shutil.copytree(fake_data, partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match=f"lacks {partial / 't10k-labels-idx1-ubyte'}"):
        data.load("fashion-mnist", str(partial))  # not Debian's copy, installed or not
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="holds no fashion-mnist IDX files"):
        data.load("fashion-mnist", str(tmp_path / "empty"))


# --- predict and plots ------------------------------------------------------------------
def test_predict_refuses_a_checkpoint_whose_classes_do_not_fit(run_copy, tmp_path):
    from PIL import Image
    rewrite_meta(run_copy / "best.safetensors", lambda m: {**m, "classes": ["only"]})
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    result = cli("predict", run_copy, tmp_path / "x.png", "--device", "cpu")
    assert result.exit_code == 1 and "names 1 class(es) but its network outputs 10" in result.output


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width x height: enough for PIL to read its header, and no pixels to decode."""
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [15000, 8000])
def test_predict_bounds_image_size_before_decoding(run_copy, tmp_path, side):
    png_header_only(tmp_path / "big.png", side, side)
    result = cli("predict", run_copy, tmp_path / "big.png", "--device", "cpu")
    assert result.exit_code == 1 and "too large to classify" in result.output


def test_plot_titles_are_plain_text(fake_data, tmp_path):
    spec = tmp_path / "le$\\x$.cnn"
    spec.write_text(TINY.replace("network tiny\n", ""))  # the network is then named after the file
    start(str(spec), {}, {"epochs": 1}, quiet(data_dir=str(fake_data), out=str(tmp_path / "run"))).fit()
    assert (tmp_path / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_checkpoint_carries_the_text_of_its_imports(tmp_path):
    """eval and --resume compile the checkpoint's own copy of every imported file, never the one on disk."""
    import specc
    from specc.train import checkpoint
    (tmp_path / "lib").mkdir()
    library = tmp_path / "lib" / "units.cnn"
    library.write_text("param eps = 1e-5\nblock unit(c) { conv 3x3 c p1 -> bn eps=eps -> relu }\n")
    spec = tmp_path / "net.cnn"
    spec.write_text('import "lib/units.cnn"\ninput 1x8x8\nunit(4) -> gap -> flatten -> fc 3\n')
    net = specc.load(spec)
    assert net.sources == {"lib/units.cnn": library.read_text()}
    library.write_text("this file changed after training")  # or vanished: the checkpoint must not care
    meta = {"spec": net.source, "sources": net.sources, "spec_path": str(spec), "network": net.name,
            "params": {}, "input_shape": list(net.input_shape)}
    again = checkpoint.network(meta)
    assert again.param_count == net.param_count and [r.path for r in again.layers] == [r.path for r in net.layers]
    library.unlink()
    assert checkpoint.network(meta).output_shape == (3,)
    with pytest.raises(checkpoint.CheckpointError, match="does not carry lib/units.cnn") as err:
        checkpoint.network({**meta, "sources": {}}, tmp_path / "run" / "last.safetensors")
    assert str(err.value).startswith(f"the spec embedded in {tmp_path / 'run' / 'last.safetensors'}")


# --- Ctrl-C at any moment (issue 11) ------------------------------------------------------
# Runs `specc train` with one phase made to last: `busy` is Python code (the KeyboardInterrupt
# arrives between its bytecodes), `stuck` one long C call, as a big network's step is on a CPU
# (Python cannot run its SIGINT handler until the call returns).
DRIVER = r'''
import atexit, signal, sys, time
phase = sys.argv[1]

def announce():
    print("PHASE " + phase, flush=True)

def stuck(*args, **kwargs):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # as if inside one long C++ call
    announce()
    time.sleep(120)

def busy(*args, **kwargs):
    announce()
    while True:
        pass

import specc.train.checkpoint as checkpoint, specc.train.data as data, specc.train.loop as loop
import specc.train.measure as measure
if phase == "loading":
    data.load = busy
elif phase == "measuring":
    measure.time_step = stuck
elif phase == "saving":
    checkpoint.save_file = stuck
elif phase == "long step":
    real_epoch = loop.Run.train_epoch
    loop.Run.train_epoch = lambda self, epoch, bar=None: stuck() if epoch == 1 else real_epoch(self, epoch, bar)
atexit.register(lambda: print("IMPORTED", [m for m in ("torch._dynamo", "matplotlib") if m in sys.modules],
                              flush=True))
from specc.cli import main
sys.argv = ["specc", *sys.argv[2:]]
main()
'''


def interrupt_when(tmp_path, fake_data, phase: str, wanted: str, *args) -> tuple[int, str, float]:
    """Starts the driver, sends SIGINT once `wanted` is printed; (exit status, output, seconds to exit)."""
    import queue
    import signal
    import subprocess
    import sys
    import threading
    import time
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "tiny.cnn").write_text(TINY)
    command = [sys.executable, str(tmp_path / "driver.py"), phase, "train", str(tmp_path / "tiny.cnn"), "--data",
               str(fake_data), "--device", "cpu", "--out", str(tmp_path / "run"), "--no-progress", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True).start()
    seen = []
    try:
        while not seen or wanted not in seen[-1]:  # each line arrives as it is printed: flushed into the pipe
            line = lines.get(timeout=120)
            assert line is not None, "".join(seen)
            seen.append(line)
        if wanted == "PHASE":
            time.sleep(0.5)  # until the phase is under way: the driver prints the line just before it
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        proc.wait(timeout=60)
        seconds = time.monotonic() - sent
    finally:
        proc.kill()
    while (line := lines.get(timeout=10)) is not None:
        seen.append(line)
    return proc.returncode, "".join(seen), seconds


NOTHING_SAVED = "nothing was saved and no run directory was made; run the same command to start again"


@pytest.mark.parametrize("phase, said", [
    ("loading", "interrupted while loading the data: " + NOTHING_SAVED),  # Python code: handled at once
    ("saving", "interrupted while saving the initial weights: " + NOTHING_SAVED),  # a long C call: the watchdog
])
def test_ctrl_c_before_training_leaves_nothing(tmp_path, fake_data, phase, said):
    status, output, seconds = interrupt_when(tmp_path, fake_data, phase, "PHASE")
    assert status == 130 and said in output and "Traceback" not in output, output
    assert seconds < 10, seconds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driver.py", "tiny.cnn"]  # no run directory


def test_ctrl_c_while_measuring_saves_nothing(tiny_spec, fake_data, tmp_path, monkeypatch):
    from specc.train import interrupt, measure

    def ctrl_c(run, batch):
        raise KeyboardInterrupt

    monkeypatch.setattr(measure, "time_step", ctrl_c)
    run = start(str(tiny_spec), {}, {}, quiet(data_dir=str(fake_data), out=str(tmp_path / "run")))
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    assert interrupt.status.message() == "\ninterrupted while measuring a step: " + NOTHING_SAVED
    assert not (tmp_path / "run").exists()


def test_ctrl_c_in_a_long_step_ends_within_seconds(tmp_path, fake_data):
    status, output, seconds = interrupt_when(tmp_path, fake_data, "long step", "PHASE", "--epochs", "3")
    run = tmp_path / "run"
    assert status == 130 and seconds < 10, (output, seconds)
    assert (f"interrupted while training epoch 2: {run}/last.safetensors holds epoch 1; continue with: "
            f"specc train --resume {run}") in output, output
    assert checkpoint.read_meta(run / "last.safetensors")["epoch"] == 1


def test_ctrl_c_while_training_saves_and_explains(tmp_path, fake_data):
    status, output, seconds = interrupt_when(tmp_path, fake_data, "training", "epoch 1/1000", "--epochs", "1000")
    run = tmp_path / "run"
    assert status == 130 and seconds < 10, (output, seconds)
    lines = output.splitlines()
    assert [line.split()[0] for line in lines[:5]] == ["network", "recipe", "data", "device", "memory"]
    said = next(line for line in lines if line.startswith("interrupted in epoch"))
    assert f"weights saved to {run}/interrupted.safetensors; {run}/last.safetensors holds epoch" in said
    assert f"continue with: specc train --resume {run}" in output and output.count("interrupted") == 2
    done = checkpoint.read_meta(run / "last.safetensors")["epoch"]
    assert done >= 1 and checkpoint.read_meta(run / "interrupted.safetensors")["interrupted_in_epoch"] == done + 1
    assert "IMPORTED []" in output  # neither the compiler stack (torch._dynamo) nor matplotlib was loaded here


def test_a_failed_start_makes_no_run_directory(tiny_spec, fake_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrainError, match="outputs 5 values"):
        start(str(tiny_spec), {"classes": 5}, {}, quiet(data_dir=str(fake_data)))
    result = cli("train", tiny_spec, "--device", "cpu", "--data", tmp_path / "nothing-here", "--no-progress")
    assert result.exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.cnn"]  # no runs/ nor runs/tiny-*/


# --- specc train SPEC --resume RUN_DIR ------------------------------------------------------
def test_resume_with_the_runs_own_spec(run_copy, tiny_spec, fake_data):
    result = cli("train", tiny_spec, "--resume", run_copy, "--epochs", "2", "--data", fake_data, "--device", "cpu",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.output and checkpoint.read_meta(run_copy / "last.safetensors")["epoch"] == 2


def test_resume_refuses_a_different_spec_naming_the_difference(run_copy, tiny_spec, fake_data):
    tiny_spec.write_text(TINY.replace("conv 3x3 4 p1", "conv 3x3 8 p1"))
    before = (run_copy / "last.safetensors").read_bytes()
    result = cli("train", tiny_spec, "--resume", run_copy, "--data", fake_data, "--device", "cpu")
    assert result.exit_code == 1
    line = TINY.splitlines().index("conv 3x3 4 p1 -> bn -> relu -> maxpool 2 s2 -> flatten -> dropout 0.3 -> fc classes") + 1
    assert result.output.startswith(f"error: {tiny_spec} is not the spec {run_copy} was trained from: line {line} "
                                    f"reads `conv 3x3 8 p1")
    assert f"in the run. --resume continues the run's own copy (`specc train --resume {run_copy}`)" in result.output
    assert (run_copy / "last.safetensors").read_bytes() == before


def test_resume_compares_the_imports_too(tmp_path):
    from specc.train.launch import check_same_spec
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "units.cnn").write_text("block unit(c) { conv 3x3 c p1 -> relu }\n")
    spec = tmp_path / "net.cnn"
    spec.write_text('import "lib/units.cnn"\ninput 1x8x8\nunit(4) -> gap -> flatten -> fc 3\n')
    import specc
    net = specc.load(spec)
    meta = {"spec": net.source, "sources": net.sources, "params": {}, "input_shape": list(net.input_shape)}
    check_same_spec(str(spec), meta, "runs/x")  # the same texts: accepted
    (tmp_path / "lib" / "units.cnn").write_text("block unit(c) { conv 3x3 c p1 -> relu }\n# tuned\n")
    with pytest.raises(TrainError, match=rf"{tmp_path / 'lib' / 'units.cnn'} is not the spec runs/x was trained "
                                         r"from: line 2 `# tuned` is only here"):
        check_same_spec(str(spec), meta, "runs/x")


# --- eval and predict wording --------------------------------------------------------------
def test_eval_prints_every_accuracy_with_one_format(run_copy, fake_data):
    result = cli("eval", run_copy, "--data", fake_data, "--device", "cpu")
    assert result.exit_code == 0, result.output
    first, table = result.output.split("\n", 1)
    assert re.search(r"test accuracy \d\.\d{3} on 32 examples$", first)
    rows = [line for line in table.split("confusion")[0].splitlines()[3:] if line.strip()]
    assert len(rows) == 10 and all(re.fullmatch(r".+\s\d\.\d{3}\s+\d+", row) for row in rows), rows


def test_predict_explains_and_inverts(run_copy, tmp_path):
    from PIL import Image
    dark_on_light = Image.new("L", (40, 40), 230)
    dark_on_light.paste(20, (10, 5, 30, 35))
    dark_on_light.save(tmp_path / "photo.png")
    Image.eval(dark_on_light, lambda v: 255 - v).save(tmp_path / "inverted.png")
    plain = cli("predict", run_copy, tmp_path / "photo.png", "--device", "cpu")
    assert plain.exit_code == 0, plain.output
    assert "each image is made grey-scale and resized to 28x28, the spec's input; fashion-mnist items are " \
           "light on a dark background: pass --invert" in plain.stderr
    assert f"note: {tmp_path / 'photo.png'} has a light border" in plain.stderr
    inverted = cli("predict", run_copy, tmp_path / "photo.png", "--device", "cpu", "--invert")
    by_hand = cli("predict", run_copy, tmp_path / "inverted.png", "--device", "cpu")
    assert inverted.stdout.split(": ", 1)[1] == by_hand.stdout.split(": ", 1)[1] != plain.stdout.split(": ", 1)[1]
    assert "made grey-scale, inverted and resized" in inverted.stderr and "light border" not in inverted.stderr
