"""How long `specc lsp` takes to analyse a change, for every shipped spec, in-process.

A change is what the server does on each didChange: analyse the document again (parse, imports
through the cache, expand, infer) and convert the first error to a diagnostic, with the server's
caches (statements the edit did not touch, imported blocks' expansions, layers' shapes) and its
garbage-collector settings. Each spec is edited back and forth (a space typed at its end and in its
middle line, and removed), and once broken at its end (a dangling `->`, so the parse fails and is
repaired for the shapes before it).
The baseline column is a full `specc.load` of the file. Inlay hints are computed when the editor
asks for them, not on a change; their cost is shown too. Torch is never imported.

    .venv/bin/python bench/lsp_latency.py [--repeat 30] [SPEC ...]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import specc  # noqa: E402
from specc.tools.lsp import features as lsp_features  # noqa: E402
from specc.tools.lsp.server import SpecServer, quiet_collector  # noqa: E402
from specc.tools.lsp.analysis import AnalysisCache, analyse  # noqa: E402

BUDGET_MS = 20.0
CLOCK = time.perf_counter  # --cpu: time.process_time, this process's CPU time (a shared machine's load aside)


def timings(run, repeat: int) -> list[float]:
    """Milliseconds of `repeat` calls of run(i)."""
    out = []
    for i in range(repeat):
        start = CLOCK()
        run(i)
        out.append((CLOCK() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def bench(path: Path, repeat: int, server: SpecServer) -> dict:
    text = path.read_text()
    cache = AnalysisCache()
    lines = text.split("\n")
    middle = len(lines) // 2
    # Typing at the end of the file and in its middle line (a space: the statement it is in is parsed
    # again, and everything after it is analysed again).
    edits = [text, text + " ", "\n".join(lines[:middle] + [lines[middle] + " "] + lines[middle + 1:])]
    broken = text.rstrip() + "\n->\n"

    def change(i: int, source: str | None = None) -> None:
        result = analyse(source or edits[i % len(edits)], str(path), {}, cache)
        server.diagnostics(path.as_uri(), result)

    change(0)  # the document as opened: imported files enter the cache
    valid = timings(change, repeat)
    failing = timings(lambda i: change(i, broken), max(repeat // 3, 3))
    result = analyse(text, str(path), {}, cache)
    hints = timings(lambda i: lsp_features.inlay_hints(result), max(repeat // 3, 3))
    load = timings(lambda i: specc.load(path), max(repeat // 3, 3))
    return {"valid": valid, "broken": failing, "hints": hints, "load": load}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=30, help="changes timed per spec (default 30)")
    parser.add_argument("--cpu", action="store_true", help="time CPU seconds of this process, not wall time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu else time.perf_counter
    specs = [p.resolve() for p in args.specs] or sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "specs/torchvision").glob("*.cnn"))
    server = SpecServer()  # only its diagnostics conversion; nothing is started
    quiet_collector()  # the server's garbage-collector settings
    from lsprotocol import types
    from pygls.workspace import Workspace
    server.protocol._workspace = Workspace(None, position_encoding=types.PositionEncodingKind.Utf16)
    print(f"{'spec':<40} {'change p50':>10} {'p95':>7} {'broken p95':>10} {'hints p95':>9} "
          f"{'load p50':>8}   (ms {'CPU' if args.cpu else 'wall'}, {args.repeat} changes each)", flush=True)
    over, worst = [], []
    for path in specs:
        t = bench(path, args.repeat, server)
        worst.append(p95(t["valid"]))
        flag = "  over budget" if p95(t["valid"]) > BUDGET_MS else ""
        if flag:
            over.append(path.name)
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        print(f"{name:<40} {statistics.median(t['valid']):>10.1f} {p95(t['valid']):>7.1f} "
              f"{p95(t['broken']):>10.1f} {p95(t['hints']):>9.1f} {statistics.median(t['load']):>8.1f}{flag}",
              flush=True)
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
    print(f"\n{len(specs)} specs; worst change p95 {max(worst):.1f} ms; over {BUDGET_MS:g} ms: "
          f"{', '.join(over) or 'none'}; torch imported: {bool(heavy)}", flush=True)
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
