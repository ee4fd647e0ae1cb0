"""Nothing a spec or the file system does can run code, leak a file, hang specc or exhaust memory (issue 9)."""
import json
import os
import pickle
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

import specc
from conftest import ROOT, SPECS
from specc.cli import main
from specc.lang import tables
from specc.lang.files import MAX_SPEC_BYTES
from specc.lang.parse import grammar_text


class _Plant:
    """A pickle whose loading creates `marker`: what an attacker would leave in a shared directory."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _lark_cache_name(tmp_path) -> str:
    """The file name Lark's `cache=True` reads from the temp dir, found by letting it write one."""
    probe = tmp_path / "probe"
    probe.mkdir()
    code = ("import lark; from specc.lang.parse import grammar_text\n"
            "lark.Lark(grammar_text(), parser='lalr', propagate_positions=True, maybe_placeholders=False, cache=True)")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(probe)}, check=True, cwd=ROOT)
    (name,) = [p.name for p in probe.iterdir() if p.name.startswith(".lark")]
    return name


def _plant(directory, name, marker) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(b"x\n" + pickle.dumps(_Plant(marker)) + pickle.dumps(_Plant(marker)))


def test_a_planted_parser_cache_is_never_loaded(tmp_path):
    """Lark's cache=True unpickles $TMPDIR/.lark_cache_*; specc ships its tables and reads no cache."""
    temp, cache, marker = tmp_path / "tmp", tmp_path / "cache", tmp_path / "pwned"
    name = _lark_cache_name(tmp_path)
    _plant(temp, name, marker)
    _plant(cache / "specc", name, marker)
    _plant(cache / "lark", name, marker)
    env = {**os.environ, "TMPDIR": str(temp), "XDG_CACHE_HOME": str(cache)}
    # The plant works: Lark's own cache would have run it.
    code = ("import lark; from specc.lang.parse import grammar_text\n"
            "lark.Lark(grammar_text(), parser='lalr', propagate_positions=True, maybe_placeholders=False, cache=True)")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
    assert marker.exists()
    marker.unlink()
    _plant(temp, name, marker)  # Lark replaced the planted file with its own cache: plant it again
    out = subprocess.run([sys.executable, "-m", "specc", "check", str(SPECS / "lenet.cnn")], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not marker.exists()


AUDIT = """
import sys, tempfile
events = []
temp = tempfile.gettempdir()
def hook(event, args):
    if event.startswith("pickle."):
        events.append(event)
    if event == "open" and isinstance(args[0], str) and args[0].startswith(temp):
        events.append("open " + args[0])
sys.addaudithook(hook)
import specc
specc.load(sys.argv[1])
print(events)
"""


def test_loading_a_spec_unpickles_nothing_and_opens_nothing_in_the_temp_dir(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", AUDIT, str(SPECS / "resnet18.cnn")], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_shipped_parser_tables_match_the_grammar():
    """Fails when grammar/cnn.lark (or a merge in the registry) changes: run `python -m specc.lang.tables`."""
    shipped = json.loads(tables.TABLES_PATH.read_text())
    assert shipped["grammar_sha256"] == tables.grammar_sha256(grammar_text()), \
        "the parser tables are stale: regenerate them with `python -m specc.lang.tables`"


def test_the_shipped_tables_parse_like_a_freshly_built_parser():
    import lark
    fresh = lark.Lark(grammar_text(), **tables.OPTIONS)
    shipped = tables.load_parser(grammar_text())
    files = sorted(SPECS.glob("**/*.cnn"))
    assert len(files) > 40
    for path in files:
        text = path.read_text()
        assert shipped.parse(text) == fresh.parse(text), path


def test_stale_tables_are_not_used():
    parser = tables.load_parser(grammar_text() + "\n// changed\n")
    assert parser.parse("input 4\nfc 2") is not None


# --- what specc reads --------------------------------------------------------------------
def _refused(text: str, tmp_path, name="net.cnn") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(specc.SpecError) as err:
        specc.load(path)
    return str(err.value)


def test_importing_proc_environ_never_prints_the_canary(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECC_CANARY", "canary-3f9a1c")
    link = tmp_path / "env.cnn"
    link.symlink_to("/proc/self/environ")
    for target in ("/proc/self/environ", "env.cnn", "/proc/self/environ/../environ"):
        shown = _refused(f'import "{target}"\ninput 4\nfc 2', tmp_path)
        assert "canary-3f9a1c" not in shown and "cannot import" in shown
    shown = CliRunner().invoke(main, ["check", str(link)]).output
    assert "canary-3f9a1c" not in shown and "error" in shown


def test_imports_must_name_cnn_files(tmp_path):
    (tmp_path / "secret.txt").write_text("block b { relu }\n")
    shown = _refused('import "secret.txt"\ninput 4\nfc 2', tmp_path)
    assert "cannot import 'secret.txt': it is not a .cnn file" in shown
    (tmp_path / "lib.cnn").symlink_to(tmp_path / "secret.txt")
    shown = _refused('import "lib.cnn"\ninput 4\nfc 2', tmp_path)
    assert "secret.txt): it is not a .cnn file" in shown and "block b" not in shown


def _within_a_second(fn):
    """Run fn in a thread; fail if it has not finished in a second (a hang must not hang the suite)."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn()), daemon=True)
    start = time.perf_counter()
    thread.start()
    thread.join(1.0)
    assert not thread.is_alive(), "still running after a second"
    assert time.perf_counter() - start < 1.0
    return result["value"]


def _error_of(fn):
    def run():
        try:
            fn()
        except specc.SpecError as err:
            return str(err)
        return "no error"
    return run


def test_dev_zero_and_a_fifo_are_refused_within_a_second(tmp_path):
    fifo = tmp_path / "pipe.cnn"
    os.mkfifo(fifo)
    (tmp_path / "zero.cnn").symlink_to("/dev/zero")
    for target in ("/dev/zero", "zero.cnn", "pipe.cnn"):
        spec = tmp_path / "net.cnn"
        spec.write_text(f'import "{target}"\ninput 4\nfc 2')
        shown = _within_a_second(_error_of(lambda: specc.load(spec)))
        assert "cannot import" in shown
    for target in (fifo, tmp_path / "zero.cnn"):
        shown = _within_a_second(_error_of(lambda: specc.load(target)))
        assert "not a regular file" in shown
        result = _within_a_second(lambda: CliRunner().invoke(main, ["check", str(target)]))
        assert result.exit_code == 1 and "not a regular file" in result.output


def test_a_fifo_given_to_the_check_process_is_refused(tmp_path):
    fifo = tmp_path / "pipe.cnn"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-m", "specc", "check", str(fifo)], capture_output=True, text=True,
                         timeout=20, cwd=ROOT)
    assert out.returncode == 1 and "not a regular file" in out.stderr


def test_a_spec_over_the_size_cap_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.cnn"
    with open(big, "w") as f:
        f.write("input 4\nfc 2")
        f.truncate(MAX_SPEC_BYTES + 1)
    assert "more than specc's limit" in _within_a_second(_error_of(lambda: specc.load(big)))
    spec = tmp_path / "net.cnn"
    spec.write_text('import "big.cnn"\ninput 4\nfc 2')
    assert "more than specc's limit" in _within_a_second(_error_of(lambda: specc.load(spec)))


def test_a_directory_and_a_symlink_loop_are_unreadable_specs(tmp_path):
    (tmp_path / "loop.cnn").symlink_to(tmp_path / "loop.cnn")
    (tmp_path / "dir.cnn").mkdir()
    assert "symlink loop" in _refused('import "loop.cnn"\ninput 4\nfc 2', tmp_path)
    assert "directory" in _refused('import "dir.cnn"\ninput 4\nfc 2', tmp_path)
    for target in (tmp_path / "loop.cnn", tmp_path / "dir.cnn", tmp_path):
        result = CliRunner().invoke(main, ["check", str(target)])
        assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output
        assert CliRunner().invoke(main, ["summary", str(target)]).exit_code == 1


def test_unusable_import_paths_are_located_errors(tmp_path):
    shown = _refused('import "a\\u0000b.cnn"\ninput 4\nfc 2'.replace("\\u0000", "\0"), tmp_path)
    assert "NUL byte" in shown and ":1:1:" in shown


def test_an_unencodable_path_renders():
    with pytest.raises(specc.SpecError) as err:
        specc.loads("", path="\ud800.cnn")
    assert "no layers" in str(err.value)
    str(err.value).encode("utf-8")
    with pytest.raises(specc.SpecError) as err:
        specc.load("\ud800.cnn")
    str(err.value).encode("utf-8")


# --- tiny specs that would hang or exhaust memory ------------------------------------------
def _fast_error(text: str, seconds: float = 2.0) -> str:
    start = time.perf_counter()
    with pytest.raises(specc.SpecError) as err:
        specc.loads(text)
    assert time.perf_counter() - start < seconds
    return str(err.value)


def test_fifty_megabytes_of_relu_is_refused_before_parsing():
    assert "more than specc's limit" in _fast_error("input 4\nfc 2" + " -> relu" * 6_000_000, 1.0)


def test_a_chain_of_squaring_params_stops_at_the_integer_bound():
    text = "input 4\nparam a0 = 3\n" + "".join(f"param a{i + 1} = (a{i} * a{i})\n" for i in range(22)) + "fc (a22)"
    assert "limit is 2**63" in _fast_error(text, 0.5)
    floats = "input 4\nparam a0 = 3.5\n" + "".join(f"param a{i + 1} = (a{i} * a{i})\n" for i in range(40))
    assert "not a finite number" in _fast_error(floats + "fc 2", 0.5)


def test_a_thousand_defaults_on_a_hundred_thousand_layers_is_quick():
    start = time.perf_counter()
    net = specc.loads("input 1x8x8\n" + "default conv bias=false\n" * 1000 + "conv 1x1 1 * 100000")
    assert len(net.layers) == 100_000 and time.perf_counter() - start < 3.0


def _nested(fanout: str, top: str) -> str:
    names = [f"b{i}_" + "x" * 200 for i in range(61)]
    text = f"input 1x4x4\nblock {names[0]} {{ relu * 2 }}\n"
    text += "".join(f"block {names[i]} {{ {fanout.format(names[i - 1])} }}\n" for i in range(1, 61))
    return text + top.format(names[60])


def test_deeply_nested_long_block_names_are_bounded():
    """61 nested blocks with 200-character names: calls are counted, paths share their prefixes."""
    assert "block calls" in _fast_error(_nested("{0}() -> {0}()", "{0}()"), 3.0)
    assert "block calls" in _fast_error(_nested("{0}()", "{0}() * 40000"), 3.0)
    net = specc.loads(_nested("{0}()", "{0}() * 100"))
    assert len(net.layers) == 200 and net.layers[-1].path.count(".") == 61
    assert net.layers[0].path.startswith("b60_") and net.layers[0].path.endswith(".relu1")
    assert net.layers[0].at.parent is net.layers[1].at.parent  # shared, not copied


def test_shapes_that_grow_at_every_layer_stop_at_the_bound():
    assert "over specc's limit of 2**63" in _fast_error("input 1x2x2\nconcat(relu | relu) * 100 -> flatten")


# --- resource bombs --------------------------------------------------------------------------
def test_build_refuses_weights_beyond_available_memory():
    from specc.runtime.memory import NetworkTooLarge, static_bytes
    net = specc.loads("input 3x8x8\nconv 3x3 1000000000000 -> relu")
    assert net.param_count == 28 * 10**12
    with pytest.raises(NetworkTooLarge) as err:
        net.build()
    assert f"{static_bytes(net):,} bytes" in str(err.value) and isinstance(err.value, specc.SpecError)
    assert net.build(device="meta") is not None  # meta allocates nothing: no limit


def test_build_compares_with_free_cuda_memory(monkeypatch):
    import torch
    from specc.runtime import memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 2000))
    assert memory.available_bytes(torch.device("cuda:0")) == 1000
    net = specc.loads("input 4\nfc 100")  # 500 params: 2,000 bytes of float32
    with pytest.raises(memory.NetworkTooLarge, match="2,000 bytes .* of float32, more than the 1000 B available on cuda"):
        memory.check_fits(net, "cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (4000, 8000))
    memory.check_fits(net, "cuda")  # fits: no error, nothing allocated


def test_cpu_memory_is_read_from_meminfo():
    from specc.runtime.memory import available_bytes
    import torch
    free = available_bytes(torch.device("cpu"))
    assert free is not None and free > 0
    assert available_bytes(torch.device("meta")) is None
