"""The TextMate grammar for .cnn files, generated from specc's registry.

Editors that read TextMate grammars (VS Code, Sublime Text, TextMate, GitHub's
Linguist, Zed, ...) colour a spec with it. The layer kinds, their aliases, the
merges and the expression functions come from specc.lang.registry and
specc.lang.evaluate, so a new kind is highlighted without editing the grammar:

    python -m specc.tools.textmate            # rewrites the grammar files below
    python -m specc.tools.textmate --check    # exit 1 when they are stale (tests/test_editors.py)

Every pattern is a single-line `match` (no begin/end), written in the subset of
regular expressions that Oniguruma (the editors' engine) and Python's `re`
share, so the tests can run the grammar with `re`. A line is scanned left to
right; at each point the pattern that matches earliest wins, ties going to the
first in PATTERNS' order (TextMate's rule).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ..lang.evaluate import FUNCTIONS
from ..lang.registry import MERGES, REGISTRY

ROOT = Path(__file__).resolve().parent.parent.parent
# Where the grammar lives in a checkout of specc (an installed package has no editors/): the
# generic copy and the VS Code extension's own.
GRAMMAR_FILES = (ROOT / "editors" / "textmate" / "cnn.tmLanguage.json",
                 ROOT / "editors" / "vscode" / "syntaxes" / "cnn.tmLanguage.json")
DECLARATIONS = ("network", "input", "param", "default", "block", "import", "train")
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
END = r"(?![A-Za-z0-9_])"  # the end of a word (\b would also end one at a `.` or `?`)


def alternatives(names) -> str:
    """`a|b|...` matching whole names, longest first (an alternation takes the first that fits)."""
    return "|".join(re.escape(name) for name in sorted(names, key=lambda s: (-len(s), s)))


def patterns() -> dict[str, dict]:
    """name -> TextMate rule, in the order they are tried."""
    return {
        "comment": {"match": r"#.*$", "name": "comment.line.number-sign.cnn"},
        "string": {"match": r'"[^"]*"', "name": "string.quoted.double.cnn"},
        # `: 256x12x12`, `: 400`, `: 256x?x?`
        "annotation": {"match": r"(:)\s*((?:\?|[0-9]+)(?:x(?:\?|[0-9]+))*)" + END,
                       "captures": {"1": {"name": "punctuation.separator.annotation.cnn"},
                                    "2": {"name": "constant.other.shape.cnn"}}},
        "block-definition": {"match": rf"\b(block)\s+({NAME})",
                             "captures": {"1": {"name": "keyword.control.declaration.cnn"},
                                          "2": {"name": "entity.name.function.block.cnn"}}},
        "declaration": {"match": rf"\b(?:{alternatives(DECLARATIONS)}){END}",
                        "name": "keyword.control.declaration.cnn"},
        "repeat-index": {"match": rf"\bas{END}", "name": "keyword.operator.repeat.cnn"},
        # `add(`, `concat (`: as the grammar's BRANCH token
        "merge": {"match": rf"\b(?:{alternatives(MERGES)})(?=[ \t]*\()", "name": "keyword.other.merge.cnn"},
        "function": {"match": rf"\b(?:{alternatives(FUNCTIONS)})(?=\()", "name": "support.function.builtin.cnn"},
        # `s2`, `p1`, and `p(k // 2)`: as the grammar's SHORT and SHORT_CALL
        "shorthand": {"match": r"\b[spdg](?:[0-9]+" + END + r"|(?=\())", "name": "variable.parameter.shorthand.cnn"},
        "call": {"match": rf"\b{NAME}(?=\()", "name": "entity.name.function.call.cnn"},
        "keyword-argument": {"match": rf"\b({NAME})[ \t]*(=)(?!=)",
                             "captures": {"1": {"name": "variable.parameter.cnn"},
                                          "2": {"name": "keyword.operator.assignment.cnn"}}},
        "layer": {"match": rf"\b(?:{alternatives(REGISTRY)})(?![A-Za-z0-9_(])", "name": "support.type.layer.cnn"},
        "boolean": {"match": rf"\b(?:true|false){END}", "name": "constant.language.boolean.cnn"},
        "size": {"match": r"\b[0-9]+(?:x[0-9]+)+" + END, "name": "constant.numeric.size.cnn"},
        "number": {"match": r"(?<![A-Za-z0-9_.])(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?" + END,
                   "name": "constant.numeric.cnn"},
        "arrow": {"match": r"->", "name": "keyword.operator.arrow.cnn"},
        "branch": {"match": r"\|", "name": "keyword.operator.branch.cnn"},
        "operator": {"match": r"//|==|!=|<=|>=|[-+*/<>]", "name": "keyword.operator.cnn"},
        "bracket": {"match": r"[(){}]", "name": "punctuation.bracket.cnn"},
        "separator": {"match": r",", "name": "punctuation.separator.comma.cnn"},
    }


def grammar() -> dict:
    rules = patterns()
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "specc .cnn",
        "scopeName": "source.cnn",
        "fileTypes": ["cnn"],
        "comment": "Generated from specc's registry by `python -m specc.tools.textmate`; do not edit by hand.",
        "patterns": [{"include": f"#{name}"} for name in rules],
        "repository": rules,
    }


def render() -> str:
    return json.dumps(grammar(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m specc.tools.textmate [--check]", file=sys.stderr)
        return 2
    if not all(path.parent.parent.is_dir() for path in GRAMMAR_FILES):
        print(f"no editors/ folder beside this specc ({ROOT}): run this in a checkout of specc", file=sys.stderr)
        return 2
    text = render()
    stale = [path for path in GRAMMAR_FILES if not path.is_file() or path.read_text(encoding="utf-8") != text]
    if args == ["--check"]:
        for path in stale:
            print(f"{path}: stale; run python -m specc.tools.textmate", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
