"""Fuzz specc.loads: only SpecError may escape, and every SpecError must render.

Inputs come from a seeded generator: specs built from the grammar's pieces
(declarations, layers, blocks, merges, expressions, extreme numbers, odd
characters) and mutations of the shipped specs (specs/*.cnn,
specs/torchvision/*.cnn and their lib/*.cnn). A spec that loads is also
printed the way `specc check` and `specc summary --format json` print it.

    python bench/fuzz.py --inputs 20000 --seed 0

prints the count of inputs and the findings grouped by exception type, one
example each; exit status 1 if there are any. tests/test_fuzz.py runs a few
thousand inputs of the same generator in the suite.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

LAYERS = ("conv", "maxpool", "avgpool", "adaptiveavgpool", "gap", "flatten", "fc", "linear", "bn", "lrn", "dropout",
          "relu", "relu6", "sigmoid", "gelu", "silu", "identity", "hardswish", "leakyrelu", "softmax", "prelu",
          "shuffle", "ln", "scale", "droppath", "nosuch")
MERGES = ("concat", "add", "mul", "split")
FUNCTIONS = ("min", "max", "ceil", "floor", "round", "int", "divisible", "size", "nosuch")
KEYS = ("stride", "padding", "dilation", "groups", "bias", "in", "p", "eps", "momentum", "init", "slope", "ceil",
        "affine", "stats", "dim", "x")
BIG = "9" * 4400
NUMBERS = ("0", "1", "2", "3", "7", "16", "64", "1000", "00", "9223372036854775807", "9223372036854775808",
           "99999999999999999999", BIG, "0" * 5000 + "1", "1" + "0" * 400)
FLOATS = ("0.5", ".5", "1e-3", "1e308", "1e309", "1e999", "2.", BIG + ".5", "0.0")
ODD = ("\x0c", "\x0b", "\x85", "\u2028", "\0", "\t", "\r\n", "\r", "?", "~", "$", "é", "\ud800", "\ufeff", "\\", '"',
       "#", "x" * 300)
WORDS = ("sgd", "adam", "mnist", "-mnist", "fashion-mnist", "imagefolder:data/pets", '"quoted"', '""', "-1", "-0.5")
TRAIN_KEYS = ("data", "epochs", "lr", "batch", "optimizer", "momentum", "weight_decay", "schedule", "nosuch")
IMPORTS = ("lib/resnet.cnn", "lib/nope.cnn", "/dev/zero", "/proc/self/environ", "../lenet.cnn", "lenet.cnn",
           "a\0b.cnn", "", ".", "lib", "lib/", "\ud800.cnn", "../../README.md", "lib/vgg.cnn")


def corpus() -> list[tuple[str, str]]:
    """(path, text) of every shipped spec: the seeds that mutations start from."""
    files = sorted(SPECS.glob("*.cnn")) + sorted(SPECS.glob("torchvision/*.cnn")) + sorted(
        SPECS.glob("torchvision/lib/*.cnn")) + sorted(ROOT.glob("lib/*.cnn"))
    return [(str(p), p.read_text()) for p in files]


class Generator:
    """Seeded: the same seed gives the same inputs."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seeds = corpus()

    def spec(self) -> tuple[str, str]:
        """(path, text) of the next input."""
        mode = self.rng.random()
        if mode < 0.45:
            path, text = self.rng.choice(self.seeds)
            for _ in range(self.rng.randint(1, 3)):
                text = self.mutate(text)
            return path, text
        if mode < 0.9:
            return str(SPECS / "torchvision" / "fuzz.cnn"), self.structured()
        return "<string>", " ".join(self.piece() for _ in range(self.rng.randint(1, 30)))

    # --- pieces of the grammar ---------------------------------------------------
    def number(self) -> str:
        return self.rng.choice(NUMBERS if self.rng.random() < 0.8 else FLOATS)

    def small(self) -> str:
        return self.rng.choice(("1", "2", "3", "4", "8", "16", "32"))

    def expr(self, depth: int = 0) -> str:
        r = self.rng.random()
        if depth > 2 or r < 0.35:
            return self.rng.choice((self.small(), self.number(), self.name(), "true", "false"))
        if r < 0.7:
            op = self.rng.choice(("+", "-", "*", "//", "/", "==", "!=", "<", ">="))
            return f"({self.expr(depth + 1)} {op} {self.expr(depth + 1)})"
        if r < 0.8:
            return f"-{self.expr(depth + 1)}"
        args = ", ".join(self.expr(depth + 1) for _ in range(self.rng.randint(0, 3)))
        return f"{self.rng.choice(FUNCTIONS)}({args})"

    def name(self) -> str:
        return self.rng.choice(("c", "k", "a", "b", "i", "classes", "relu", "blk", "x" * 200))

    def arg(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.small()
        if r < 0.45:
            return f"{self.small()}x{self.small()}"
        if r < 0.6:
            return f"{self.rng.choice('spdg')}{self.small()}"
        if r < 0.8:
            return f"{self.rng.choice(KEYS)}={self.rng.choice((self.small(), self.number(), '-1', 'true', 'relu'))}"
        return self.rng.choice((f"({self.expr()})", self.number(), "x" * 50, "s" + BIG, "1x" + BIG))

    def layer(self) -> str:
        return " ".join([self.rng.choice(LAYERS)] + [self.arg() for _ in range(self.rng.randint(0, 3))])

    def element(self, depth: int = 0) -> str:
        r = self.rng.random()
        if depth > 2 or r < 0.6:
            text = self.layer()
        elif r < 0.75:
            text = f"{self.rng.choice(MERGES)}({' | '.join(self.chain(depth + 1) for _ in range(self.rng.randint(1, 3)))})"
        elif r < 0.9:
            text = f"blk({', '.join(self.expr() for _ in range(self.rng.randint(0, 2)))})"
        else:
            text = f"({self.chain(depth + 1)})"
        if self.rng.random() < 0.15:
            text += f" * {self.rng.choice(('0', '2', '3', '(k)', 'k as i', BIG, '100001', '(1.5)'))}"
        if self.rng.random() < 0.1:
            text += f" : {self.rng.choice(('4', '16x8x8', '?x?x?', '1x' + BIG))}"
        return text

    def chain(self, depth: int = 0) -> str:
        return " -> ".join(self.element(depth) for _ in range(self.rng.randint(1, 4)))

    def declaration(self) -> str:
        r = self.rng.random()
        if r < 0.2:
            return f"param {self.rng.choice(('c', 'k', 'a', 'classes'))} = {self.expr()}"
        if r < 0.35:
            return f"default {self.rng.choice(LAYERS)} {self.rng.choice(KEYS)}={self.rng.choice(NUMBERS[:6])}"
        if r < 0.55:
            params = ", ".join(self.rng.choice(("c", "k", "k=3", "act=relu")) for _ in range(self.rng.randint(0, 2)))
            return f"block blk({params}) {{ {self.chain(1)} }}"
        if r < 0.7:
            key, value = self.rng.choice(TRAIN_KEYS), self.rng.choice(WORDS + NUMBERS[:8] + FLOATS[:4])
            return f"train {{ {key} = {value} }}"
        if r < 0.8:
            settings = f" (c = {self.expr()})" if self.rng.random() < 0.3 else ""
            return f'import "{self.rng.choice(IMPORTS)}"{settings}'
        if r < 0.9:
            return f"network {self.rng.choice(('net', 'x' * 100, '1net'))}"
        return f"input {self.rng.choice(('1x28x28', '3x32x32', '784', '4', '0', '1x' + BIG, '2x2'))}"

    def structured(self) -> str:
        lines = [f"input {self.rng.choice(('1x28x28', '3x32x32', '3x8x8', '16', '4'))}"]
        lines += [self.declaration() for _ in range(self.rng.randint(0, 4))]
        lines.append(self.chain())
        self.rng.shuffle(lines) if self.rng.random() < 0.1 else None
        if self.rng.random() < 0.2:
            lines.insert(self.rng.randint(0, len(lines)), f"# {self.rng.choice(ODD)} comment")
        return "\n".join(lines)

    def piece(self) -> str:
        r = self.rng.random()
        if r < 0.2:
            return self.rng.choice(("->", "(", ")", "|", "*", ":", "{", "}", ",", "=", "-", "as", "x", "\n"))
        if r < 0.3:
            return self.rng.choice(ODD)
        if r < 0.5:
            return self.number()
        if r < 0.7:
            return self.rng.choice(LAYERS + MERGES + ("block", "param", "default", "input", "train", "import",
                                                      "network"))
        return self.rng.choice((self.layer(), self.expr(), self.declaration()))

    # --- mutations of a shipped spec --------------------------------------------------
    def mutate(self, text: str) -> str:
        if not text:
            return self.piece()
        i = self.rng.randrange(len(text))
        j = min(len(text), i + self.rng.randint(1, 40))
        r = self.rng.random()
        if r < 0.2:
            return text[:i] + text[j:]  # delete
        if r < 0.35:
            return text[:i] + text[i:j] * self.rng.randint(2, 4) + text[i:]  # duplicate
        if r < 0.6:
            return text[:i] + " " + self.piece() + " " + text[i:]  # insert
        if r < 0.75:  # replace a number with an extreme
            digits = [k for k in range(i, len(text)) if text[k].isdigit()]
            if digits:
                k = digits[0]
                return text[:k] + self.number() + text[k + 1:]
            return text + self.piece()
        if r < 0.85:
            return text[:i]  # truncate
        if r < 0.95:
            lines = text.split("\n")
            a, b = self.rng.randrange(len(lines)), self.rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            return "\n".join(lines)
        return text[:i] + self.rng.choice(ODD) + text[i:]


@dataclass
class Report:
    inputs: int = 0
    loaded: int = 0
    findings: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # type -> (path, text, trace)
    slowest: tuple[float, str] = (0.0, "")

    def add(self, kind: str, path: str, text: str, trace: str) -> None:
        self.findings.setdefault(kind, []).append((path, text, trace))

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.findings.values())


def check_one(path: str, text: str) -> str | None:
    """None when specc behaves (loads, or raises a SpecError that renders); else "KIND\\ntraceback"."""
    import specc
    from specc.tools.summary import check_line, summary_dict
    try:
        try:
            net = specc.loads(text, path=path)
        except specc.SpecError as err:
            str(err).encode("utf-8")  # renders, and can be printed
            return None
        check_line(net)
        summary_dict(net, 8)
        return None
    except Exception as exc:  # a finding: anything but a SpecError escaping is a bug
        return f"{_kind(exc)}\n{traceback.format_exc()}"


def _kind(exc: Exception) -> str:
    """The exception's type, with the wrapped one for Lark's VisitError (a transformer's own exception)."""
    inner = getattr(exc, "orig_exc", None)
    return f"{type(exc).__name__}({type(inner).__name__})" if inner is not None else type(exc).__name__


def run(inputs: int, seed: int, report: Report | None = None) -> Report:
    report = report or Report()
    generator = Generator(seed)
    for _ in range(inputs):
        path, text = generator.spec()
        start = time.perf_counter()
        trace = check_one(path, text)
        took = time.perf_counter() - start
        report.inputs += 1
        if took > report.slowest[0]:
            report.slowest = (took, text)
        if trace is not None:
            kind, trace = trace.split("\n", 1)
            report.add(kind, path, text, trace)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    start = time.perf_counter()
    report = run(args.inputs, args.seed)
    print(f"inputs: {report.inputs} (seed {args.seed}) in {time.perf_counter() - start:.1f} s; "
          f"slowest {report.slowest[0]:.2f} s")
    print(f"findings: {report.count}")
    for kind, found in sorted(report.findings.items(), key=lambda kv: -len(kv[1])):
        path, text, trace = min(found, key=lambda f: len(f[1]))
        print(f"\n{kind}: {len(found)}, e.g. path={path!r} text={text[:300]!r}\n{trace[-1500:]}")
    return 1 if report.count else 0


if __name__ == "__main__":
    sys.exit(main())
