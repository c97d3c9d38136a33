"""Text and numbers from outside that nothing downstream can take: refused at the door, or scrubbed.

What no layer can store or show: a lone surrogate (U+D800-U+DFFF; JSON's `"\\ud800"`, or a file name's
undecodable byte as Python hands it over) cannot be encoded as UTF-8, so SQLite, PostgreSQL, the templates
and the terminal all fail on it; NUL cannot be stored in a PostgreSQL text column; the other C0 controls
(all of U+0000-U+001F but tab, line feed and carriage return) are never typed by a person and only break
what shows them. An integer beyond 64 bits fits no database column.

`check_text` / `check_int` / `check_json` refuse such input with InvalidInput naming the field, for entry
points where a person or a program answers for what it sent (HTTP requests, command-line arguments);
`scrub` replaces and drops instead, for data that must not stop an import (upstream papers). Pure functions.
"""

from __future__ import annotations

import re
from typing import Any

from paperboy.errors import InvalidInput

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def problem(value: str) -> str | None:
    """What makes `value` unusable (None when nothing does)."""
    found = _BAD.search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return f"holds a lone surrogate (U+{ord(char):04X}) at character {found.start()}: not Unicode text"
    if char == "\x00":
        return f"holds a NUL character at character {found.start()}"
    return f"holds a control character (U+{ord(char):04X}) at character {found.start()}"


def check_text(field: str, value: str) -> str:
    """`value`, or InvalidInput("<field>: …") when it holds a lone surrogate, NUL or another C0 control
    (tab, line feed and carriage return are text)."""
    found = problem(value)
    if found is not None:
        raise InvalidInput(f"{field}: {found}")
    return value


def check_int(field: str, value: int, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """`value`, or InvalidInput("<field>: …") outside [low, high] (by default a signed 64-bit integer)."""
    if not low <= value <= high:
        raise InvalidInput(f"{field}: {_short(value)} is out of range ({low} to {high})")
    return value


def check_json(value: Any, path: str = "body") -> None:
    """Walk a parsed JSON document: every string (keys included) through `check_text`, every integer
    through `check_int`; the field named is the JSON path (`body.parent_id`, `body.tags[2]`)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            check_text(where, item)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            check_int(where, item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                check_text(f"{where} (a key)", key)
                stack.append((inner, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))


def scrub(value: str) -> str:
    """`value` made storable: lone surrogates become U+FFFD (the replacement character), NUL and the other
    C0 controls but tab, line feed and carriage return are dropped. Unchanged (the same object) when clean."""
    if _BAD.search(value) is None:
        return value
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", value))


def _short(value: int) -> str:
    text = str(value) if value.bit_length() < 1000 else f"a {value.bit_length()}-bit number"
    return text if len(text) <= 40 else text[:20] + "…" + text[-8:]
