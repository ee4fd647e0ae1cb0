"""editors/: the TextMate grammar generated from the registry, the VS Code extension, the Neovim snippet.

The grammar's patterns are run here with Python's `re`, the way an editor runs them with Oniguruma
(textmate.py keeps them to the subset both share): at each point of a line the pattern matching
earliest wins, ties going to the first listed.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import specc
from conftest import ROOT
from specc.lang.evaluate import FUNCTIONS
from specc.lang.registry import MERGES, REGISTRY
from specc.tools import textmate

EDITORS = ROOT / "editors"
GRAMMAR = EDITORS / "textmate" / "cnn.tmLanguage.json"
GRAMMAR_FILES = (GRAMMAR, EDITORS / "vscode" / "syntaxes" / "cnn.tmLanguage.json")
LAYER, MERGE, CALL = "support.type.layer.cnn", "keyword.other.merge.cnn", "entity.name.function.call.cnn"


def scopes(line: str, grammar: dict | None = None) -> list[tuple[str, str]]:
    """(text, scope) for each piece of `line` the grammar names, as a TextMate engine finds them."""
    grammar = grammar or json.loads(GRAMMAR.read_text())
    rules = [grammar["repository"][p["include"][1:]] for p in grammar["patterns"]]
    compiled = [(re.compile(rule["match"]), rule) for rule in rules]
    found, pos = [], 0
    while pos < len(line):
        matches = [(m, rule) for regex, rule in compiled if (m := regex.search(line, pos))]
        if not matches:
            break
        match, rule = min(matches, key=lambda pair: pair[0].start())  # min keeps the first of equals
        if "captures" in rule:
            found += [(match.group(int(g)), c["name"]) for g, c in rule["captures"].items() if match.group(int(g))]
        else:
            found.append((match.group(), rule["name"]))
        pos = max(match.end(), match.start() + 1)
    return found


# --- the grammar ---------------------------------------------------------------------------------
def test_the_grammar_files_are_valid_json_and_up_to_date(monkeypatch):
    expected = textmate.render()
    for path in GRAMMAR_FILES:
        data = json.loads(path.read_text())
        assert data["scopeName"] == "source.cnn" and data["fileTypes"] == ["cnn"]
        assert path.read_text() == expected, "stale: run python -m specc.tools.textmate"
    monkeypatch.setattr(textmate, "GRAMMAR_FILES", GRAMMAR_FILES)  # this checkout's, whichever specc is imported
    assert textmate.main(["--check"]) == 0


def test_the_check_reports_a_stale_grammar_and_the_generator_fixes_it(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "cnn.tmLanguage.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(textmate, "GRAMMAR_FILES", (stale, tmp_path / "vscode" / "cnn.tmLanguage.json"))
    assert textmate.main(["--check"]) == 1
    assert capsys.readouterr().err.count("stale; run python -m specc.tools.textmate") == 2
    assert textmate.main([]) == 0 and textmate.main(["--check"]) == 0
    assert stale.read_text() == textmate.render()
    assert textmate.main(["--bogus"]) == 2
    monkeypatch.setattr(textmate, "GRAMMAR_FILES", (tmp_path / "none" / "textmate" / "cnn.tmLanguage.json",))
    assert textmate.main([]) == 2 and "run this in a checkout" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_layer_kind_and_alias_is_highlighted_as_a_layer(name):
    assert (name, LAYER) in scopes(f"-> {name} 3 -> relu")
    assert (name, LAYER) in scopes(f"    {name}")
    assert (name, LAYER) in scopes(f"block b(act={name}) {{ {name} }}")


@pytest.mark.parametrize("name", sorted(MERGES))
def test_every_merge_is_highlighted_as_a_merge(name):
    found = scopes(f"-> {name}(conv 3x3 8 p1 | identity) -> {name} (relu | relu)")
    assert found.count((name, MERGE)) == 2
    assert ("identity", LAYER) in found and ("|", "keyword.operator.branch.cnn") in found


def test_a_new_layer_kind_is_highlighted_without_editing_the_grammar(monkeypatch):
    monkeypatch.setitem(REGISTRY, "wavelet", REGISTRY["relu"])
    monkeypatch.setitem(MERGES, "maxout", MERGES["add"])
    grammar = json.loads(textmate.render())
    assert ("wavelet", LAYER) in scopes("-> wavelet -> relu", grammar)
    assert ("maxout", MERGE) in scopes("maxout(relu | identity)", grammar)
    assert ("wavelet", LAYER) not in scopes("-> wavelet -> relu")  # the shipped grammar predates it


def test_the_other_constructs_get_their_scopes():
    line = 'conv 3x3 64 s2 p(k // 2) stride=2 bias=false -> vgg(2, 0.5) * n as i : 256x?x?  # note "x"'
    found = scopes(line)
    assert found == [
        ("conv", LAYER), ("3x3", "constant.numeric.size.cnn"), ("64", "constant.numeric.cnn"),
        ("s2", "variable.parameter.shorthand.cnn"), ("p", "variable.parameter.shorthand.cnn"),
        ("(", "punctuation.bracket.cnn"), ("//", "keyword.operator.cnn"), ("2", "constant.numeric.cnn"),
        (")", "punctuation.bracket.cnn"), ("stride", "variable.parameter.cnn"),
        ("=", "keyword.operator.assignment.cnn"), ("2", "constant.numeric.cnn"),
        ("bias", "variable.parameter.cnn"), ("=", "keyword.operator.assignment.cnn"),
        ("false", "constant.language.boolean.cnn"), ("->", "keyword.operator.arrow.cnn"),
        ("vgg", CALL), ("(", "punctuation.bracket.cnn"), ("2", "constant.numeric.cnn"),
        (",", "punctuation.separator.comma.cnn"), ("0.5", "constant.numeric.cnn"), (")", "punctuation.bracket.cnn"),
        ("*", "keyword.operator.cnn"), ("as", "keyword.operator.repeat.cnn"),
        (":", "punctuation.separator.annotation.cnn"), ("256x?x?", "constant.other.shape.cnn"),
        ('# note "x"', "comment.line.number-sign.cnn"),
    ]


def test_declarations_blocks_strings_and_functions():
    assert scopes('import "lib/resnet.cnn" (eps = 1e-5)')[:3] == [
        ("import", "keyword.control.declaration.cnn"), ('"lib/resnet.cnn"', "string.quoted.double.cnn"),
        ("(", "punctuation.bracket.cnn")]
    assert ("1e-5", "constant.numeric.cnn") in scopes("param eps = 1e-5")
    assert scopes("block conv_bn(c, act=relu) {")[:2] == [("block", "keyword.control.declaration.cnn"),
                                                        ("conv_bn", "entity.name.function.block.cnn")]
    for word in textmate.DECLARATIONS:
        assert (word, "keyword.control.declaration.cnn") in scopes(f"{word} x")
    for name in FUNCTIONS:
        assert (name, "support.function.builtin.cnn") in scopes(f"conv 1x1 ({name}(1, 2))")
    # a block called like a layer kind is a call; names that merely contain a kind are not layers
    assert scopes("conv_bn(16) -> relu6 -> bn_relu") == [
        ("conv_bn", CALL), ("(", "punctuation.bracket.cnn"), ("16", "constant.numeric.cnn"),
        (")", "punctuation.bracket.cnn"), ("->", "keyword.operator.arrow.cnn"), ("relu6", LAYER),
        ("->", "keyword.operator.arrow.cnn")]
    assert (".5", "constant.numeric.cnn") in scopes("dropout .5")


def test_the_patterns_stay_in_the_subset_oniguruma_and_python_share():
    grammar = json.loads(GRAMMAR.read_text())
    for name, rule in grammar["repository"].items():
        pattern = rule["match"]
        re.compile(pattern)
        assert not re.search(r"\(\?P|\(\?>|\\[AZzhHGK]|\\p\{|[*+?}]\+|\(\?[aiLmsux]", pattern), (name, pattern)
        assert set(rule) <= {"match", "name", "captures"}, name


# --- VS Code --------------------------------------------------------------------------------------
def test_the_vscode_extension_associates_cnn_files_and_starts_specc_lsp():
    vscode = EDITORS / "vscode"
    manifest = json.loads((vscode / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".cnn"] and language["id"] == "cnn"
    json.loads((vscode / language["configuration"]).read_text())
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["language"] == "cnn" and grammar["scopeName"] == "source.cnn"
    assert (vscode / grammar["path"]).resolve() == GRAMMAR_FILES[1].resolve()
    command = manifest["contributes"]["configuration"]["properties"]["specc.server.command"]
    assert command["default"] == ["specc", "lsp"]
    assert "vscode-languageclient" in manifest["dependencies"]
    script = (vscode / manifest["main"]).read_text()
    assert 'require("vscode-languageclient/node")' in script and '["specc", "lsp"]' in script
    assert 'get("server.command"' in script and "TransportKind.stdio" in script


# --- Neovim --------------------------------------------------------------------------------------
PROBE = r"""
local ok = vim.wait(20000, function() return #vim.diagnostic.get(0) > 0 end, 20)
local result = { filetype = vim.bo.filetype, commentstring = vim.bo.commentstring, clients = {}, diagnostics = {} }
for _, client in pairs(vim.lsp.get_active_clients()) do table.insert(result.clients, client.name) end
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(result.diagnostics, { lnum = d.lnum, col = d.col, message = d.message })
end
local file = io.open(os.getenv("SPECC_NVIM_OUT"), "w")
file:write(vim.fn.json_encode(result))
file:close()
vim.cmd("qall!")
"""


def test_the_neovim_snippet_sets_up_cnn_files_and_their_language_server(tmp_path):
    """editors/nvim/specc.lua as shipped, in headless Neovim: a broken spec's diagnostic arrives."""
    nvim = shutil.which("nvim")
    if nvim is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs neovim, but nvim is not on PATH")
        pytest.skip("needs Neovim (apt-get install neovim)")
    spec = tmp_path / "net.cnn"
    spec.write_text("input 4\nfc 2 -> conv 3x3 8\n")
    (tmp_path / "probe.lua").write_text(PROBE)
    server = json.dumps([sys.executable, "-m", "specc", "lsp"]).replace("[", "{").replace("]", "}")
    out = tmp_path / "result.json"
    run = subprocess.run([nvim, "--headless", "--clean", "--cmd", f"lua vim.g.specc_lsp_cmd = {server}",
                          "-u", str(EDITORS / "nvim" / "specc.lua"), "-c", f"luafile {tmp_path / 'probe.lua'}",
                          str(spec)], cwd=tmp_path, env={**os.environ, "SPECC_NVIM_OUT": str(out)},
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.exists(), run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["filetype"] == "cnn" and result["commentstring"] == "# %s" and result["clients"] == ["specc"]
    with pytest.raises(specc.SpecError) as expected:
        specc.load(spec)
    (diagnostic,) = result["diagnostics"]
    assert (diagnostic["lnum"] + 1, diagnostic["col"] + 1) == (expected.value.line, expected.value.column)
    assert diagnostic["message"].startswith(expected.value.message)
