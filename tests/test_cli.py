"""The CLI, through click's CliRunner."""
import json

import jsonschema

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
    assert "fc1" in result.output and "output at batch 4" in result.output and "saved for backward" in result.output
    assert ("estimated peak of a float32 training step on the CPU (channels_last) at batch 4 with plain SGD without "
            "momentum") in result.output


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
    from specc.tools.ir import schema
    jsonschema.validate(data, schema())  # the IR, with its training section
    totals, training = data["totals"], data["training"]
    assert totals["params"] == 11_178_378 and data["output_shape"] == [10] and training["batch"] == 2
    assert 0.99 * training["memory_bytes"]["saved"] <= sum(training["saved_bytes"].values()) <= training["memory_bytes"]["saved"]
    memory = training["memory_bytes"]
    # the total is the step's peak: at least everything held at the end of the forward pass
    assert memory["peak"] >= memory["weights"] + memory["gradients"] + memory["optimizer"] + memory["saved"]
    assert memory["gradients"] == 4 * totals["params"] and memory["optimizer"] == 0  # d2l's plain SGD
    assert training["optimizer"] == "plain SGD without momentum" and "1 MAC = 2 FLOPs" in data["mac_convention"]
    assert training["macs_per_batch"] == 2 * totals["macs"] and training["input_bytes"] == 2 * 4 * 96 * 96


def test_summary_depth_folds_block_calls_and_ops_show_their_values():
    folded = run("summary", str(SPECS / "resnet18.cnn"), "--depth", "1")
    assert folded.exit_code == 0, folded.output
    line = next(line for line in folded.output.splitlines() if line.startswith("residual1 "))
    assert line.split()[1:4] == ["residual(64)", "64x24x24", "74,112"]
    assert not any(line.startswith("residual1.") for line in folded.output.splitlines())
    mobilenet = SPECS / "torchvision" / "mobilenet_v3_small.cnn"
    resolved, written = run("summary", str(mobilenet)).output, run("summary", str(mobilenet), "--as-written").output
    assert "conv 3x3 16 s2 p1 bias=false" in resolved and "divisible(c * width_mult, 8)" not in resolved
    assert "conv 3x3 (divisible(c * width_mult, 8)) s2 p1" in written
    assert "for the batch of 1" in resolved and "non-trainable" in resolved


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
