"""The CLI, through click's CliRunner."""
import json

from click.testing import CliRunner

from conftest import SPECS
from specc.cli import main
from test_errors import ALEXNET_227


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_check_prints_the_published_counts():
    result = run("check", *sorted(str(p) for p in SPECS.glob("*.cnn")))
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ok  ", 1) for line in result.output.splitlines())
    assert "1x224x224 -> 10  46,764,746 params" in lines[str(SPECS / "alexnet.cnn")]
    assert "1x28x28 -> 10  61,706 params" in lines[str(SPECS / "lenet.cnn")]
    assert "758,226 params" in lines[str(SPECS / "densenet.cnn")]


def test_check_renders_the_alexnet_227_error(spec_file):
    path = spec_file(ALEXNET_227, "alexnet.cnn")
    result = run("check", str(path))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}:7:4: error: fc expects 6400 input features (in=6400) but gets 9216 = 256x6x6",
        "    7 | -> fc 4096 in=6400 -> relu",
        "      |    ^^^^^^^^^^^^^^^",
        "hint: flatten at line 6 turns 256x6x6 into 9216",
    ]


def test_check_continues_after_a_bad_file(spec_file):
    bad = spec_file("input 1x8x8\nrleu", "bad.cnn")
    result = run("check", str(bad), str(SPECS / "lenet.cnn"))
    assert result.exit_code == 1
    assert "unknown layer 'rleu'" in result.output and "lenet.cnn: ok" in result.output


def test_check_missing_file_is_a_clean_error(tmp_path):
    result = run("check", str(tmp_path / "none.cnn"))
    assert result.exit_code == 1 and "no such spec file" in result.output and "Traceback" not in result.output


def test_summary_table_and_overrides(spec_file):
    path = spec_file("network tiny\ninput 1x28x28\nparam classes = 10\nconv 3x3 4 -> flatten -> fc classes")
    result = run("summary", str(path), "--set", "classes=100", "--input", "1x32x32", "--batch", "4")
    assert result.exit_code == 0, result.output
    assert "tiny: 1x32x32 -> 100" in result.output
    assert "fc1" in result.output and "activations (batch 4)" in result.output
    assert "training memory at batch 4" in result.output


def test_input_override_skips_annotations_but_not_in(spec_file):
    # The example in `specc --help`: annotations describe the declared input, so another input is analysed
    # without re-asserting them, and the summary says so.
    result = run("summary", str(SPECS / "lenet.cnn"), "--input", "1x32x32", "--set", "classes=100")
    assert result.exit_code == 0, result.output
    assert "lenet: 1x32x32 -> 100" in result.output and "annotations were not checked" in result.output
    data = json.loads(run("summary", str(SPECS / "lenet.cnn"), "--input", "1x32x32", "--format", "json").output)
    assert data["annotations_checked"] is False
    # At the declared input they are checked ...
    bad = spec_file("input 1x28x28\nconv 5x5 6 p2 : 6x27x28 -> flatten")
    assert "shape annotation says 6x27x28 but the shape here is 6x28x28" in run("check", str(bad)).output
    # ... while in= fixes a weight's shape and holds at every input.
    alexnet = spec_file((SPECS / "alexnet.cnn").read_text().replace("-> fc 4096 -> relu -> dropout 0.5\n-> fc 4096",
                                                                     "-> fc 4096 in=6400 -> relu -> dropout 0.5\n-> fc 4096"))
    assert "in=6400" in alexnet.read_text()
    result = run("check", str(alexnet), "--input", "1x227x227")
    assert result.exit_code == 1 and "fc expects 6400 input features (in=6400) but gets 9216" in result.output


def test_summary_json_is_complete():
    result = run("summary", str(SPECS / "resnet18.cnn"), "--format", "json", "--batch", "2")
    data = json.loads(result.output)
    assert data["params"] == 11_178_378 and data["output_shape"] == [10] and data["batch"] == 2
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]
    memory = data["training_memory_bytes"]
    assert memory["total"] == memory["weights"] + memory["gradients"] + memory["optimizer"] + memory["activations"]
    assert memory["gradients"] == 4 * data["params"]


def test_summary_markdown():
    result = run("summary", str(SPECS / "lenet.cnn"), "--format", "markdown")
    assert result.output.startswith("## lenet") and "| conv1 " in result.output


def test_bad_set_value_is_a_usage_error():
    result = run("summary", str(SPECS / "lenet.cnn"), "--set", "classes")
    assert result.exit_code == 2 and "NAME=VALUE" in result.output


def test_help_shows_examples():
    assert "specc check specs/*.cnn" in run("--help").output
    assert "Example" in run("check", "--help").output
    assert "--format" in run("summary", "--help").output
