"""The parser's LALR tables, shipped in the package instead of cached on disk.

Lark's own cache (`cache=True`) unpickles a file in the system temp directory
whose name anyone can compute, so a planted file would run code as whoever
next runs specc. Instead the tables are generated once into
specc/lang/tables.json (plain JSON, no pickle: reading it runs nothing), stamped with the
sha256 of the grammar they were built from, and used only when that hash
matches the grammar in use; otherwise the tables are built in memory (slower,
never written anywhere). After editing grammar/cnn.lark, regenerate with

    python -m specc.lang.tables

(tests/test_security.py fails until the shipped tables match the grammar).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

OPTIONS = dict(parser="lalr", propagate_positions=True, maybe_placeholders=False)
TABLES_PATH = Path(__file__).with_name("tables.json")


def grammar_sha256(grammar: str) -> str:
    # The lark version is part of the key: its serialised form may change between releases.
    return hashlib.sha256(f"{lark.__version__}\n{grammar}".encode()).hexdigest()


def load_parser(grammar: str) -> lark.Lark:
    """The parser for `grammar`: from the shipped tables when they were built from it, else built now."""
    shipped = _read_tables()
    if shipped is not None and shipped.get("grammar_sha256") == grammar_sha256(grammar):
        return lark.Lark._load_from_dict(shipped["data"], shipped["memo"])
    return lark.Lark(grammar, **OPTIONS)


def _read_tables() -> dict | None:
    try:
        return _restore(json.loads(TABLES_PATH.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # missing or damaged: build in memory
        return None


def render_tables(grammar: str) -> str:
    """The text of tables.json for `grammar`, checked to read back as exactly what Lark serialised."""
    parser = lark.Lark(grammar, **OPTIONS)
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    tables = {"generated_by": "python -m specc.lang.tables", "grammar_sha256": grammar_sha256(grammar),
              "data": data, "memo": memo}
    text = json.dumps(tables, separators=(",", ":"), sort_keys=True) + "\n"
    if _lists(_restore(json.loads(text))) != _lists(tables):
        raise RuntimeError("Lark's tables did not survive JSON: _restore needs another int-keyed table")
    return text


def _restore(tables: dict) -> dict:
    """Turn back into ints the keys JSON made strings: the memo's and the LALR state and token tables'.

    Done at these known places rather than by a hook on every object, which would cost `specc check`
    a millisecond; render_tables checks that these are all the places there are.
    """
    tables["memo"] = {int(k): v for k, v in tables["memo"].items()}
    lalr = tables["data"]["parser"]["parser"]
    lalr["tokens"] = {int(k): v for k, v in lalr["tokens"].items()}
    lalr["states"] = {int(state): {int(token): action for token, action in actions.items()}
                      for state, actions in lalr["states"].items()}
    return tables


def _lists(value):
    """`value` with tuples as lists (JSON has only lists; Lark reads either)."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def main() -> None:
    from .parse import grammar_text
    TABLES_PATH.write_text(render_tables(grammar_text()))
    print(f"wrote {TABLES_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
