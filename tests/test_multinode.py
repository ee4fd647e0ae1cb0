"""Multi-node training, as docs/training.md documents it: two "nodes" of one process each.

Both nodes run on 127.0.0.1 with gloo, each in its own working directory (on two
machines they would not share one): node 0 must write the single run directory,
node 1 nothing, and the run must equal a two-process run on one node
(`specc train --nproc 2`) exactly, metrics and final weights alike: the ranks,
the world size and each rank's share of every batch are the same, only the
rendezvous differs.
"""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from test_train import TINY, make_dataset

TIMEOUT_S = 240
SAME_METRICS = ("epoch", "train_loss", "train_acc", "test_acc", "examples", "lr")


def free_port() -> int:
    """A port nothing listens on now (the OS's pick; another process could still take it first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(spec: Path, data: Path) -> list[str]:
    # --limit keeps it to seconds; --out is relative, so each node's directory shows what it wrote.
    return ["-m", "specc", "train", str(spec), "--device", "cpu", "--data", str(data), "--out", "run",
            "--epochs", "2", "--limit", "128", "--no-progress"]


def node_command(rank: int, port: int, spec: Path, data: Path) -> list[str]:
    """`torchrun --nnodes 2 --node-rank R --master-addr ... -m specc train SPEC ...` (torchrun is
    torch.distributed.run; called through this interpreter so the test needs nothing on PATH)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
            "--master-addr", "127.0.0.1", "--master-port", str(port), "--nproc-per-node", "1",
            *train_args(spec, data)]


def run_all(commands: list[tuple[list[str], Path]]) -> list[subprocess.CompletedProcess]:
    """Starts every command at once (the nodes wait for each other) and waits for all of them;
    on a timeout, kills each one's whole process group (torchrun and its worker)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) for cmd, cwd in commands]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT_S)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return results


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{key: row[key] for key in SAME_METRICS} for row in rows]


@pytest.fixture
def workspace(tmp_path):
    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    data = make_dataset(tmp_path / "data")
    dirs = {name: tmp_path / name for name in ("node0", "node1", "single")}
    for d in dirs.values():
        d.mkdir()
    return spec, data, dirs


def test_two_nodes_equal_two_processes_on_one_node(workspace):
    spec, data, dirs = workspace
    port = free_port()
    node0, node1 = run_all([(node_command(rank, port, spec, data), dirs[f"node{rank}"]) for rank in (0, 1)])
    for rank, result in enumerate((node0, node1)):
        assert result.returncode == 0, f"node {rank}:\n{result.stdout}\n{result.stderr}"
    (single,) = run_all([([sys.executable, *train_args(spec, data), "--nproc", "2"], dirs["single"])])
    assert single.returncode == 0, single.stdout + single.stderr

    # One run directory, on node 0; node 1's rank prints and writes nothing.
    assert "2 process" in node0.stdout and node0.stdout.count("epoch 1/2") == 1  # the header's device line
    assert "epoch" not in node1.stdout
    assert [p.name for p in dirs["node0"].iterdir()] == ["run"]
    assert list(dirs["node1"].iterdir()) == []

    multi, one = metrics(dirs["node0"] / "run"), metrics(dirs["single"] / "run")
    assert [row["examples"] for row in multi] == [128, 128]
    assert multi == one
    weights_multi = load_file(dirs["node0"] / "run" / "last.safetensors")
    weights_one = load_file(dirs["single"] / "run" / "last.safetensors")
    assert weights_multi.keys() == weights_one.keys()
    differ = [name for name in weights_one if not weights_multi[name].equal(weights_one[name])]
    assert not differ, f"tensors that differ from the single-node run: {differ}"
