"""Members' Markdown (comments) to safe HTML: markdown-it-py renders, nh3 sanitises. Pure functions.

Two locks, each enough alone: markdown-it runs with `html: False`, so raw HTML typed into a comment comes out
as text, and its link validator drops `javascript:`, `vbscript:`, `file:` and `data:` targets; then nh3 (the
ammonia sanitiser) keeps only the tags and attributes below, links only to http, https, mailto or relative
targets, and gives every link `rel="nofollow noopener ugc"`. Images are not rendered (`![alt](url)` stays a
plain link: no tracking pixels in threads). Headings are demoted to h4–h6 so that a comment never outranks
the page's own headings. Formulas (`$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]`) are kept verbatim, out of Markdown's
reach (`$a_1*b_2$` keeps its `_` and `*`), for KaTeX to typeset in the browser.

Rendering takes time linear in the text, whatever a member types (tests/test_markdown_speed.py): where
formulas can close is found once per inline source, not by a scan from every opening; a comment's tables hold
at most `MAX_TABLE_CELLS` cells together; blocks and spans nest at most `MAX_NESTING` deep. Comments are
rendered once, when written, and stored with `VERSION`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock, table
from markdown_it.rules_inline import StateInline

VERSION = 1
"""The renderer's version, stored beside each comment's HTML (`comments.html_version`). Raise it whenever a
change here would render some stored comment differently: rows with an older version are rendered again."""

ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "em",
        "strong",
        "del",
        "s",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "a",
        "hr",
        "h4",
        "h5",
        "h6",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener ugc"

# (opening, closing) delimiters KaTeX's auto-render knows (static/app.js), longest first.
_MATH_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_OPENERS = frozenset("$\\")  # the first characters of the openings above
_DOUBLE_DOLLAR = re.compile(r"(?=\$\$)")  # every `$$`, overlapping ones too (`$$$` holds two)
# a `$` that may close a `$…$` formula: not preceded by white space or a backslash (the digit test is below)
_SINGLE_CLOSER = re.compile(r"(?<=[^\s\\])\$")
_ENV_KEY = "paperboy.math"
MAX_NESTING = 10
"""How deep blocks (quotes, lists) and inline spans (emphasis, links) nest; deeper blocks are dropped, deeper
spans stay text. markdown-it's default is 20, and some shapes cost time in proportion to it: 10,000
characters of lines under 19 nested quotes took 450 ms, under 9 at most 220 ms."""
MAX_TABLE_CELLS = 2_000
"""Table cells in one comment, all its tables together (20 columns by 100 rows; header cells count)."""
_CELLS_KEY = "paperboy.table_cells"


class Closers:
    """Where each kind of formula can close in one inline source, found in one pass per kind, so that every
    opening is answered by a binary search instead of a scan to the end (a scan from every `$` made
    `$x $x $x …` quadratic: 10,000 characters took 2 s)."""

    __slots__ = ("_at",)

    def __init__(self, src: str) -> None:
        single = [
            m.start()
            for m in _SINGLE_CLOSER.finditer(src)
            if not src[m.start() + 1 : m.start() + 2].isdigit()  # `$5 and $6` is not a formula
        ]
        self._at = {
            "$$": [m.start() for m in _DOUBLE_DOLLAR.finditer(src)],
            "\\]": [m.start() for m in re.finditer(r"\\\]", src)],
            "\\)": [m.start() for m in re.finditer(r"\\\)", src)],
            "$": single,
        }

    def first(self, right: str, start: int) -> int:
        """The first place at or after `start` where `right` closes a formula, or -1."""
        at = self._at[right]
        i = bisect_left(at, start)
        return at[i] if i < len(at) else -1


def _closers(state: StateInline) -> Closers:
    """The closers of this inline source, built on the first opening it holds and kept in the parse's `env`
    (the rule runs once per position, and again in look-ahead from link labels: all share one table)."""
    cached = state.env.get(_ENV_KEY)
    if cached is not None and cached[0] is state.src:
        return cached[1]
    closers = Closers(state.src)
    state.env[_ENV_KEY] = (state.src, closers)
    return closers


def _single_dollar_end(closers: Closers, src: str, start: int) -> int:
    """Where a `$…$` formula opened just before `start` closes, or -1 (`$5 and $6` is not a formula: the
    opening `$` is followed by a non-space, the closing one preceded by a non-space and not by a digit)."""
    if start >= len(src) or src[start].isspace():
        return -1
    return closers.first("$", start + 1)


def formula_end(closers: Closers, src: str, pos: int) -> int:
    """Just past the formula that opens at `pos` (its closing delimiter included), or -1 when none does."""
    for left, right in _MATH_DELIMITERS:
        if not src.startswith(left, pos):
            continue
        start = pos + len(left)
        end = _single_dollar_end(closers, src, start) if left == "$" else closers.first(right, start)
        if end > start:
            return end + len(right)
    return -1


def _math(state: StateInline, silent: bool) -> bool:
    """Inline rule: a formula becomes one text token (escaped on output, never parsed as emphasis)."""
    src, pos = state.src, state.pos
    if src[pos] not in _OPENERS:
        return False
    end = formula_end(_closers(state), src, pos)
    if end == -1:
        return False
    if not silent:
        token = state.push("text", "", 0)
        token.content = src[pos:end]
    state.pos = end
    return True


def _table(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """markdown-it's table rule, within a budget of cells for the whole comment. A table row has as many cells
    as its header whatever it holds, so without one a wide header over many one-letter lines made 10,000
    characters into 65,536 cells (a second to render, 700 kB of HTML). Past the budget a table ends early
    (the rows left show as text) or is not a table at all."""
    if start_line + 2 > end_line:
        return False
    begin, end = state.bMarks[start_line + 1] + state.tShift[start_line + 1], state.eMarks[start_line + 1]
    if begin >= end or state.src[begin] not in "|-:":
        return False  # no delimiter row under the first line: markdown-it's rule says no as well
    columns = state.src[begin:end].rstrip(" \t").strip("|").count("|") + 1  # at least the table's columns
    used = state.env.get(_CELLS_KEY, 0)
    rows = (MAX_TABLE_CELLS - used) // columns  # the header row included
    if rows < 1:
        return False
    found = table(state, start_line, min(end_line, start_line + 1 + rows), silent)
    if found and not silent:
        state.env[_CELLS_KEY] = used + columns * (state.line - start_line - 1)
    return found


@cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "maxNesting": MAX_NESTING})
    md.enable(["strikethrough", "table"])
    md.disable("image")
    md.inline.ruler.before("escape", "math", _math)
    md.block.ruler.at("table", _table, {"alt": ["paragraph", "reference"]})
    return md


def to_html(text: str) -> str:
    """Sanitised HTML for a comment's Markdown."""
    md = _parser()
    env: dict[str, object] = {}
    tokens = md.parse(text, env)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 3)}"
    html = md.renderer.render(tokens, md.options, env)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
