"""`specc lsp`: the real server driven over stdio with JSON-RPC, and its analysis in-process.

The stdio tests share one server process (start-up costs most of their time) and record every
message exchanged; `SPECC_LSP_TRANSCRIPT=FILE` writes that transcript out.
"""
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import specc
import conftest
from conftest import ROOT, SPECS
from specc.lang.expand import LayerNode, SeqNode
from specc.lang.registry import REGISTRY
from specc.tools.lsp import features
from specc.tools.lsp.analysis import AnalysisCache, analyse
from specc.tools.lsp.modules import MODULE_TEXT, module_text

ALEXNET_227 = "# AlexNet with a hand-written nn.Linear(6400, 4096), at 227 px\n" + conftest.ALEXNET_227

VGG = """\
input 1x32x32
param classes = 10
block vgg(convs, channels) {
    (conv 3x3 channels p1 -> relu) * convs -> maxpool 2 s2
}
vgg(1, 64) -> vgg(2, 128)
-> flatten -> fc classes
"""


# --- a JSON-RPC client over the server's stdin/stdout -------------------------------------------
class Client:
    """Speaks Content-Length framed JSON-RPC to `specc lsp`, recording the transcript."""

    def __init__(self, cwd: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "specc", "lsp"], cwd=cwd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.inbox: queue.Queue = queue.Queue()
        self.transcript: list[tuple[float, str, dict]] = []
        self.started = time.perf_counter()
        self.next_id = 0
        self.pending: list[dict] = []
        self.opened: set[str] = set()  # document URIs opened so far
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            header = {}
            while (line := stream.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode("ascii").partition(":")
                header[key.strip().lower()] = value.strip()
            if not header:
                self.inbox.put(None)
                return
            body = json.loads(stream.read(int(header["content-length"])))
            self.transcript.append((time.perf_counter() - self.started, "<-", body))
            self.inbox.put(body)

    def send(self, message: dict) -> None:
        message = {"jsonrpc": "2.0", **message}
        self.transcript.append((time.perf_counter() - self.started, "->", message))
        data = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def request(self, method: str, params) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == self.next_id and "method" not in m)

    def notify(self, method: str, params) -> None:
        self.send({"method": method, "params": params})

    def wait(self, matches, timeout: float = 20.0) -> dict:
        """The first message that `matches` (earlier unmatched ones are kept for later waits)."""
        for i, message in enumerate(self.pending):
            if matches(message):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            message = self.inbox.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert message is not None, "the server closed its output: " + self.proc.stderr.read().decode()
            if matches(message):
                return message
            self.pending.append(message)

    def diagnostics(self, uri: str) -> list[dict]:
        return self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                         and m["params"]["uri"] == uri)["params"]["diagnostics"]

    def dump(self) -> str:
        lines = []
        for at, way, message in self.transcript:
            text = json.dumps(message, ensure_ascii=False)
            lines.append(f"{at * 1000:8.1f} ms {way} {text if len(text) < 400 else text[:400] + ' …'}")
        return "\n".join(lines)


def _position(line: int, character: int) -> dict:
    return {"line": line, "character": character}


def _started(folder: Path) -> Client:
    lsp = Client(folder)
    lsp.folder = folder
    result = lsp.request("initialize", {"processId": os.getpid(), "rootUri": folder.as_uri(),
                                        "capabilities": {}})["result"]
    lsp.capabilities = result["capabilities"]
    lsp.notify("initialized", {})
    return lsp


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One server for the module's tests (each opens the documents it needs)."""
    lsp = _started(tmp_path_factory.mktemp("lsp"))
    yield lsp
    if os.environ.get("SPECC_LSP_TRANSCRIPT"):
        Path(os.environ["SPECC_LSP_TRANSCRIPT"]).write_text(lsp.dump() + "\n")
    if lsp.proc.poll() is None:
        lsp.proc.kill()
        lsp.proc.wait()


def _open(client: Client, name: str, text: str) -> str:
    path = client.folder / name
    path.write_text(text)
    uri = path.as_uri()
    client.opened.add(uri)
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "cnn", "version": 1,
                                                            "text": text}})
    return uri


def _vgg(client: Client) -> str:
    """VGG open and analysed without errors, whichever test asks first (each test runs alone too)."""
    uri = (client.folder / "vgg.cnn").as_uri()
    if uri not in client.opened:
        assert client.diagnostics(_open(client, "vgg.cnn", VGG)) == []
    return uri


def test_initialize_announces_the_features(client):
    caps = client.capabilities
    for feature in ("hoverProvider", "inlayHintProvider", "completionProvider", "definitionProvider",
                    "documentSymbolProvider", "renameProvider", "signatureHelpProvider",
                    "documentFormattingProvider"):
        assert caps.get(feature), feature


def test_diagnostic_of_a_broken_spec_then_none_once_fixed(client):
    uri = _open(client, "alexnet227.cnn", ALEXNET_227)
    (diag,) = client.diagnostics(uri)
    expected = _check_error(client.folder / "alexnet227.cnn")
    # `specc check`'s 8:4 with the span `fc 4096 in=6400`, 0-based for the LSP
    assert diag["range"] == {"start": _position(7, 3), "end": _position(7, 18)}
    assert (expected.line, expected.column) == (8, 4)
    assert diag["message"] == f"{expected.message}\nhint: {expected.hint}"
    assert diag["severity"] == 1 and diag["source"] == "specc"

    sent = time.perf_counter()
    fixed = {"range": {"start": _position(7, 11), "end": _position(7, 18)}, "text": "in=9216"}
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [fixed]})
    assert client.diagnostics(uri) == []
    client.latency_ms = (time.perf_counter() - sent) * 1000
    assert client.latency_ms < 1000  # the server analyses at once; 50 ms is measured by bench/lsp_latency.py


def _check_error(path: Path) -> specc.SpecError:
    with pytest.raises(specc.SpecError) as caught:
        specc.load(path)
    return caught.value


def test_inlay_hints_show_each_lines_shape_and_each_calls_params(client):
    uri = _vgg(client)
    hints = client.request("textDocument/inlayHint", {"textDocument": {"uri": uri},
                                                      "range": {"start": _position(0, 0), "end": _position(7, 0)}})
    shown = {(h["position"]["line"], h["label"]) for h in hints["result"]}
    net = specc.loads(VGG)
    vgg1, vgg2 = [r for r in _call_rows(net)]
    assert shown == {
        (3, "⟶ 64x16x16 | 128x8x8"),  # the block body's line, once per call
        (5, f"⟶ 64x16x16 · {vgg1:,} params"),  # a call in the middle of a line
        (5, f"⟶ 128x8x8 · {vgg2:,} params"),  # the line's last call: its output and params
        (6, "⟶ 10"),
    }
    middle = next(h for h in hints["result"] if "64x16x16 ·" in h["label"])
    assert middle["position"] == _position(5, len("vgg(1, 64)"))


def _call_rows(net) -> list[int]:
    """Params of each top-level block call, from specc's own per-layer rows."""
    totals: dict[str, int] = {}
    for row in net.layers:
        top = row.path.split(".")[0]
        if top.startswith("vgg"):
            totals[top] = totals.get(top, 0) + row.params
    return list(totals.values())


def test_hover_on_a_layer_and_on_a_block_call(client):
    uri = _vgg(client)
    layer = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": _position(6, 14)})
    assert "result" in layer, layer
    text = layer["result"]["contents"]["value"]
    assert "shape: `8192` ⟶ `10`" in text and "params: 81,930" in text and "nn.Linear(8192, 10)" in text
    assert "resolved: `fc 10`" in text
    call = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": _position(5, 16)})
    text = call["result"]["contents"]["value"]
    assert "block vgg(convs, channels)" in text and "`vgg(2, 128)` ⟶ `128x8x8`" in text
    assert "conv 3x3 128 p1" in text and "maxpool 2" in text


def test_completion_offers_kinds_then_the_layers_arguments(client):
    uri = _open(client, "typing.cnn", "input 3x32x32\nconv 3x3 16 p1 -> \n")
    client.diagnostics(uri)
    items = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": _position(1, 18)})
    by_label = {i["label"]: i for i in items["result"]["items"]}
    assert by_label["conv"]["detail"] == REGISTRY["conv"].summary
    assert set(REGISTRY) <= set(by_label) and {"add", "concat"} <= set(by_label)
    items = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": _position(1, 9)})
    labels = {i["label"] for i in items["result"]["items"]}
    assert {"stride=", "groups=", "bias="} <= labels and "padding=" in labels and "conv" not in labels


def test_definition_of_a_block_call_and_an_import(client):
    uri = _vgg(client)
    found = client.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": _position(5, 1)})
    assert found["result"]["uri"] == uri and found["result"]["range"]["start"] == _position(2, 0)
    (client.folder / "lib.cnn").write_text("block head(k) { flatten -> fc k }\n")
    main = _open(client, "uses_lib.cnn", 'import "lib.cnn"\ninput 8x2x2\nhead(3)\n')
    assert client.diagnostics(main) == []
    found = client.request("textDocument/definition", {"textDocument": {"uri": main}, "position": _position(0, 10)})
    assert found["result"]["uri"] == (client.folder / "lib.cnn").as_uri()
    found = client.request("textDocument/definition", {"textDocument": {"uri": main}, "position": _position(2, 1)})
    assert found["result"]["uri"] == (client.folder / "lib.cnn").as_uri()


def test_an_error_in_an_imported_file_shows_at_the_import_and_in_that_file(client):
    (client.folder / "broken_lib.cnn").write_text("block head(k) {\n  flatten -> fc k bias=2\n}\n")
    uri = _open(client, "uses_broken.cnn", 'input 8x2x2\nimport "broken_lib.cnn"\nhead(3)\n')
    lib_uri = (client.folder / "broken_lib.cnn").as_uri()
    first = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                        and m["params"]["uri"] in (uri, lib_uri))
    second = client.diagnostics(lib_uri if first["params"]["uri"] == uri else uri)
    by_uri = {first["params"]["uri"]: first["params"]["diagnostics"], (lib_uri if first["params"]["uri"] == uri
                                                                         else uri): second}
    (at_import,), (inside,) = by_uri[uri], by_uri[lib_uri]
    expected = _check_error(client.folder / "uses_broken.cnn")
    assert Path(expected.path).name == "broken_lib.cnn" and (expected.line, expected.column) == (2, 19)
    assert at_import["range"]["start"] == _position(1, 0)
    assert at_import["message"].startswith(f"in broken_lib.cnn:2:19: {expected.message}")
    assert at_import["relatedInformation"][0]["location"]["uri"] == lib_uri
    assert inside["range"] == {"start": _position(1, 18), "end": _position(1, 24)}
    assert inside["message"].startswith(expected.message)


def test_columns_are_utf16_units(client):
    # the ')' follows an emoji, two UTF-16 units but one character
    uri = _open(client, "emoji.cnn", 'import "\U0001F600.cnn" )\ninput 4\nfc 2\n')
    (diag,) = client.diagnostics(uri)
    assert diag["range"]["start"] == _position(0, 16)


def test_rename_and_symbols(client):
    uri = _vgg(client)
    edit = client.request("textDocument/rename", {"textDocument": {"uri": uri}, "position": _position(2, 7),
                                                  "newName": "stage"})
    edits = edit["result"]["changes"][uri]
    assert sorted((e["range"]["start"]["line"], e["range"]["start"]["character"]) for e in edits) == [
        (2, 6), (5, 0), (5, 14)]
    refused = client.request("textDocument/rename", {"textDocument": {"uri": uri}, "position": _position(2, 7),
                                                     "newName": "conv"})
    assert "layer kind" in refused["error"]["message"]
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})["result"]
    assert [(s["name"], s["kind"]) for s in symbols] == [("classes", 14), ("vgg", 12), ("network", 2)]


def test_signature_help_inside_a_block_call(client):
    uri = _open(client, "sig.cnn", VGG.replace("vgg(2, 128)", "vgg(2, "))
    client.diagnostics(uri)
    help = client.request("textDocument/signatureHelp", {"textDocument": {"uri": uri}, "position": _position(5, 20)})
    assert help["result"]["signatures"][0]["label"] == "vgg(convs, channels)"
    assert help["result"]["activeParameter"] == 1


def test_formatting_goes_through_specc_fmt(client):
    fmt = pytest.importorskip("specc.tools.fmt", reason="specc fmt (specc/tools/fmt.py) is not there yet")
    text = "input 4\nfc   2->relu\n"
    uri = _open(client, "fmt.cnn", text)
    client.diagnostics(uri)
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                       "options": {"tabSize": 4, "insertSpaces": True}})["result"]
    expected = fmt.format_source(text, str(client.folder / "fmt.cnn"))
    assert (edits or [{"newText": text}])[0]["newText"] == expected


def test_shutdown_then_exit_ends_with_status_0(tmp_path):
    client = _started(tmp_path)  # its own server: the shared one serves the other tests in any order
    _open(client, "vgg.cnn", VGG)
    assert client.diagnostics((tmp_path / "vgg.cnn").as_uri()) == []
    assert client.request("shutdown", None)["result"] is None
    client.notify("exit", None)
    assert client.proc.wait(timeout=10) == 0


# --- the analysis in-process -----------------------------------------------------------------------
def _sample() -> list[Path]:
    """specc's own specs and torchvision specs that import libraries and use every family's kinds."""
    picked = ["convnext_tiny", "efficientnet_b0", "mobilenet_v3_small", "shufflenet_v2_x1_0", "inception_v3"]
    return sorted(SPECS.glob("*.cnn")) + [SPECS / "torchvision" / f"{name}.cnn" for name in picked]


MUTATIONS = [("-> relu", "-> rleu"), ("fc ", "fc -"), (" p1", " p9"), ("flatten", "flatten -> flatten -> conv 3x3 8"),
             ("input ", "input 0x"), ("3x3", "3x3x3")]


@pytest.mark.parametrize("spec", ["alexnet", "resnet18", "googlenet", "densenet"])
def test_every_error_is_the_one_specc_check_reports(spec):
    path = SPECS / f"{spec}.cnn"
    source = path.read_text()
    for old, new in MUTATIONS:
        if old not in source:
            continue
        text = source.replace(old, new, 1)
        result = analyse(text, str(path))
        try:
            specc.loads(text, name=spec, path=str(path))
        except specc.SpecError as err:
            assert str(result.error) == str(err), (old, new)
        else:
            assert result.error is None


def _tree(node):
    """An expanded, inferred tree as data: names, kinds, arguments, shapes, texts and notes."""
    if isinstance(node, LayerNode):
        return ("layer", node.name, node.kind.name, dict(node.args), node.in_shape, node.out_shape, node.text,
                node.span, node.calls)
    if isinstance(node, SeqNode):
        return ("seq", node.name, node.text, node.resolved, node.span, [_tree(item) for item in node.items])
    if hasattr(node, "branches"):
        return ("merge", node.name, node.kind.name, node.out_shape, [_tree(b) for b in node.branches])
    return ("check", node.dims)


# Edits an editor's caches must follow: import settings and params (the globals every imported block
# sees), the input size (every shape), a document default, a stage's arguments, and back.
EDITS = [("eps = 0.001", "eps = 0.01"), ("width_mult = 1.0", "width_mult = 1.5"), ("classes = 1000", "classes = 7"),
         ("input 3x224x224", "input 3x96x96"), ("param classes", "default conv bias=true\nparam classes"),
         ("stochastic_depth = 0.1", "stochastic_depth = 0.3"), ("features_b()", "features_b() -> features_b()"),
         ("blocks = 3 + 3 + 9 + 3", "blocks = 2 + 2 + 2 + 2")]


@pytest.mark.parametrize("name", ["efficientnet_b0", "mobilenet_v3_small", "convnext_tiny", "regnet_y_400mf"])
def test_an_editors_caches_give_what_specc_check_gives(name):
    """One server's caches through a sequence of edits (and back to the original): every analysis is
    specc check's, layer for layer, or its error."""
    path = SPECS / "torchvision" / f"{name}.cnn"
    original = path.read_text()
    texts = [original] + [original.replace(old, new) for old, new in EDITS if old in original] + [original]
    cache = AnalysisCache()
    for text in texts + texts[::-1]:
        result = analyse(text, str(path), {}, cache)
        try:
            net = specc.loads(text, path=str(path))
        except specc.SpecError as err:
            assert str(result.error) == str(err)
        else:
            assert result.error is None and _tree(result.graph) == _tree(net.graph)


def test_hints_before_an_error_match_specc_check_without_it():
    broken = ALEXNET_227.replace("in=6400", "in=100")
    result = analyse(broken, "a.cnn")
    shown = {h.line: h.label for h in features.inlay_hints(result)}
    net = specc.loads(ALEXNET_227.replace("in=6400 ", ""))
    last_on_line = {row.line: row.output_shape for row in net.layers}
    assert shown == {line: "⟶ " + "x".join(map(str, shape)) for line, shape in last_on_line.items() if line < 8}


def test_a_text_that_does_not_parse_keeps_the_shapes_before_it():
    broken = ALEXNET_227.replace("-> flatten", "-> flatten ->")  # a dangling arrow
    result = analyse(broken, "a.cnn")
    assert "unexpected" in result.error.message
    lines = {h.line for h in features.inlay_hints(result)}
    assert lines == {3, 4, 5, 6, 7}  # the flatten line is before the mistake, on line 8


def test_an_open_documents_unsaved_text_is_what_an_import_reads(tmp_path):
    lib = tmp_path / "lib.cnn"
    lib.write_text("block head(k) { flatten -> fc k }\n")
    main = 'import "lib.cnn"\ninput 8x2x2\nhead(3)\n'
    unsaved = {str(lib): "block head(k) { flatten -> fc (2 * k) }\n"}
    assert [h.label for h in features.inlay_hints(analyse(main, str(tmp_path / "m.cnn")))] == ["⟶ 3 · 99 params"]
    result = analyse(main, str(tmp_path / "m.cnn"), unsaved)
    assert [h.label for h in features.inlay_hints(result)] == ["⟶ 6 · 198 params"]


def test_rename_skips_names_a_block_parameter_shadows():
    text = "input 3x8x8\nparam c = 4\nblock b(c) { conv 1x1 c }\nconv 1x1 c -> b(c * 2) -> gap\n"
    result = analyse(text, "r.cnn")
    occ, spans = features.rename_spans(result, 2, 8)
    assert occ.target == ("param", "c")
    assert sorted((s.line, s.column) for s in spans) == [(2, 7), (4, 10), (4, 17)]


def test_completion_contexts():
    result = analyse(VGG, "v.cnn")
    offset = lambda line, column: sum(len(x) + 1 for x in VGG.split("\n")[:line - 1]) + column - 1
    inside_call = {i.label for i in features.completions(result, offset(6, 22))}
    assert {"convs=", "channels=", "classes"} <= inside_call
    in_body = {i.label for i in features.completions(result, offset(4, 19))}
    assert {"stride=", "channels", "convs", "classes"} <= in_body  # block parameters and params as values
    commented = analyse("input 1x32x32  # con\n", "c.cnn")
    assert features.completions(commented, len("input 1x32x32  # con")) == []  # in a comment


# --- the PyTorch module text, checked against the registry's constructors -------------------------
def _layers(seq: SeqNode):
    for item in seq.items:
        if isinstance(item, LayerNode):
            yield item
        for child in [item] if isinstance(item, SeqNode) else getattr(item, "branches", []):
            yield from _layers(child)


EVERY_KIND = """\
input 4x9x9
conv 3x3 8 s2 p(1) d1 g2 bias=false -> bn eps=0.001 momentum=0.01 -> relu6 -> lrn 3 alpha=0.001 k=2
-> maxpool 2 s1 p1 ceil -> avgpool 3 s1 p1 count_include_pad=false -> adaptivemaxpool 4x3 -> adaptiveavgpool 2
-> shuffle 2 -> ln eps=0.0001 -> scale 0.5 -> droppath 0.1 -> prelu per_channel -> elu 0.5 -> softplus beta=2
-> hardtanh min=-2 -> relu -> leakyrelu 0.2 -> mish -> silu -> gelu -> hardswish -> hardsigmoid -> tanh -> sigmoid
-> mul(identity | gap -> conv 1x1 8 bias=false -> sigmoid) -> softmax
-> flatten -> dropout 0.3 -> fc 16 bias=false -> bn affine=false stats=false -> ln affine=false -> prelu -> fc 3
"""


def test_every_kind_has_a_module_text():
    assert set(MODULE_TEXT) == {kind.name for kind in REGISTRY.values()}
    assert {n.kind.name for n in _layers(specc.loads(EVERY_KIND).graph)} == set(MODULE_TEXT)


def test_module_text_builds_the_registrys_module():
    torch = pytest.importorskip("torch")
    from specc.runtime import modules
    layers = {}
    for net in [specc.loads(EVERY_KIND)] + [specc.load(p) for p in sorted(SPECS.glob("*.cnn")) + [SPECS / "torchvision/convnext_tiny.cnn"]]:
        for node in _layers(net.graph):
            layers[(node.kind.name, tuple(node.args.items()), node.in_shape)] = node
    with torch.device("meta"):
        for node in layers.values():
            text = module_text(node.kind.name, node.args, node.in_shape)
            built = eval(text, {"nn": torch.nn, "modules": modules})  # our own generated text
            expected = node.kind.build(torch.nn, node.args, node.in_shape)
            assert repr(built) == repr(expected), text
            assert {k: v.shape for k, v in built.state_dict().items()} == \
                {k: v.shape for k, v in expected.state_dict().items()}, text


def test_the_server_never_imports_torch():
    probe = """
import sys
from specc.cli import main
from specc.tools.lsp.server import make_server
from specc.tools.lsp import features as f
from specc.tools.lsp.analysis import AnalysisCache, analyse
make_server()
for path in sys.argv[1:]:
    text = open(path).read()
    result = analyse(text, path)
    f.inlay_hints(result); f.symbols(result); f.completions(result, len(text) // 2)
    for line in range(1, text.count(chr(10)) + 1, 3):
        f.hover(result, line, 5)
print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy')))
"""
    paths = [str(p) for p in _sample()]
    out = subprocess.run([sys.executable, "-c", probe, *paths], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_document_over_the_size_limit_is_refused_quickly():
    from specc.lang.files import MAX_SPEC_BYTES
    text = "input 4\n" + "relu -> " * (MAX_SPEC_BYTES // 8 + 1) + "fc 2\n"
    start = time.perf_counter()
    result = analyse(text, "big.cnn")
    assert "more than specc's limit" in result.error.message and result.graph is None
    assert features.completions(result, len(text) - 1) == [] and features.inlay_hints(result) == []
    assert time.perf_counter() - start < 2
