"""specc in Jupyter: a Network displays as its diagram and summary, a SpecError as its diagnostic, the
%%cnn magic binds a checked network (or shows the mistake, never a traceback); a real notebook runs."""
import html
import json
import sys
import xml.etree.ElementTree as ET

import pytest

import specc
from conftest import SPECS

SVG = "{http://www.w3.org/2000/svg}"
TINY = "param classes = 10\ninput 1x28x28\nconv 5x5 6 p2 -> relu -> avgpool 2 s2 -> flatten -> fc classes\n"
BROKEN = "input 1x28x28\nconv 5x5 6 p2 -> relu -> flatten -> conv 3x3 4\n"


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    """An in-process IPython shell that keeps no history and writes nothing under ~/."""
    import os

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    old = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "specc")
    yield shell
    InteractiveShell.clear_instance()
    if old is None:
        os.environ.pop("IPYTHONDIR")
    else:
        os.environ["IPYTHONDIR"] = old


def test_network_displays_as_its_diagram_and_summary(shell):
    net = specc.load(SPECS / "googlenet.cnn")
    data, _ = shell.display_formatter.format(net)
    assert data["text/plain"] == repr(net)
    root = ET.fromstring(data["image/svg+xml"])
    drawn = {g.get("data-path") for g in root.iter(f"{SVG}g") if g.get("class") in ("layer", "merge")}
    assert drawn == {row.path for row in net.layers}
    page = data["text/html"]
    assert page.count("<svg") == 1 and 'class="specc-summary"' in page
    assert all(row.path in page for row in net.layers) and "5,977,530" in page  # the table's rows and totals


def test_a_large_network_is_shown_with_its_blocks_collapsed(shell):
    net = specc.load(SPECS / "torchvision/densenet201.cnn")
    data, _ = shell.display_formatter.format(net)
    root = ET.fromstring(data["image/svg+xml"])
    boxes = [g for g in root.iter(f"{SVG}g") if g.get("data-path")]
    assert len(boxes) <= 400 and any(g.get("class") == "block" for g in boxes)
    assert "drawn as one box each" in data["text/html"]


def test_spec_error_displays_as_its_escaped_diagnostic(shell):
    with pytest.raises(specc.SpecError) as info:
        specc.loads(BROKEN, path="<a & b>")
    data, _ = shell.display_formatter.format(info.value)
    assert data["text/html"].count(html.escape(str(info.value))) == 1
    assert "<a & b>" not in data["text/html"] and "-&gt; conv 3x3 4" in data["text/html"]


def test_cnn_magic_checks_the_cell_and_binds_the_network(shell):
    result = shell.run_cell("%%cnn tiny --set classes=3 --input 1x32x32\n" + TINY)
    assert result.success
    net = shell.user_ns["tiny"]
    assert result.result is net and isinstance(net, specc.Network)
    assert (net.name, net.input_shape, net.output_shape) == ("tiny", (1, 32, 32), (3,))
    assert net.param_count == specc.loads(TINY, input_shape=(1, 32, 32), classes=3).param_count


def test_cnn_magic_shows_a_mistake_not_a_traceback(shell):
    from IPython.utils.capture import capture_output

    shell.user_ns.pop("broken", None)
    with capture_output() as captured:
        result = shell.run_cell("%%cnn broken\n" + BROKEN)
    assert result.error_in_exec is None and result.result is None and "broken" not in shell.user_ns
    assert "Traceback" not in captured.stdout + captured.stderr
    (shown,) = captured.outputs
    assert "<cell>:2:37: error: conv needs a CxHxW input but gets the flat shape 4704" in shown.data["text/plain"]
    page = shown.data["text/html"]
    assert "&lt;cell&gt;:2:37: error:" in page
    drawing = ET.fromstring(page[page.index("<svg"):])  # the network drawn up to the mistake
    failed = [g.get("data-path") for g in drawing.iter(f"{SVG}g") if "failed" in (g.get("class") or "")]
    assert failed == ["conv2"]
    with capture_output() as captured:
        result = shell.run_cell("%%cnn broken\ninput 1x28x28\nconv 5x5 6 -> -> relu")
    assert result.error_in_exec is None and "<svg" not in captured.outputs[0].data["text/html"]


def test_cnn_magic_usage_mistakes(shell):
    from IPython.core.error import UsageError

    for line, message in (("", "give the Python name"), ("1net", "give the Python name"),
                          ("net --input", "--input needs a value"), ("net --input 3xy", "--input takes CxHxW"),
                          ("net --set classes", "expected NAME=VALUE"), ("net --depth 2", "unknown option")):
        result = shell.run_cell(f"%%cnn {line}\n" + TINY)
        assert isinstance(result.error_in_exec, UsageError) and message in str(result.error_in_exec), line


def test_a_notebook_runs_with_the_magic(tmp_path, monkeypatch):
    """A real kernel (the venv's python, named by a kernelspec in a temporary directory), run by nbclient."""
    import nbformat
    from nbclient import NotebookClient

    kernels = tmp_path / "jupyter" / "kernels" / "specc-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "specc test", "language": "python"}))
    for variable, folder in (("JUPYTER_PATH", "jupyter"), ("JUPYTER_DATA_DIR", "data"),
                             ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                             ("IPYTHONDIR", "ipython")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    cells = ["%load_ext specc", "%%cnn tiny --set classes=3\n" + TINY, "print(tiny.param_count, tiny.output_shape)",
             "%%cnn broken\n" + BROKEN, "print('broken' in globals())", "tiny"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    NotebookClient(notebook, timeout=120, kernel_name="specc-test",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [cell.outputs for cell in notebook.cells]
    assert all(out.output_type != "error" for cell in outputs for out in cell)
    assert outputs[2][0].text == f"{specc.loads(TINY, classes=3).param_count} (3,)\n"
    assert "specc-error" in outputs[3][0].data["text/html"]
    assert outputs[4][0].text == "False\n"
    shown = outputs[5][0].data
    assert {"text/html", "image/svg+xml"} <= set(shown) and ET.fromstring(shown["image/svg+xml"]).tag == f"{SVG}svg"
