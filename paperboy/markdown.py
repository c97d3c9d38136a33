"""Members' Markdown (comments) to safe HTML: pulldown-cmark (pyromark) parses, nh3 sanitises. Pure functions.

pyromark binds pulldown-cmark, a compiled CommonMark parser whose time is linear in the text whatever a member
types (tests/test_markdown_speed.py: every 10,000-character shape renders in under 50 ms). Its events are
turned into HTML here, in one loop: raw HTML typed into a comment comes out as text, images become plain links
(`![alt](url)`: no tracking pixels in threads), headings are demoted to h4–h6 so that a comment never outranks
the page's own headings, and a single newline is a line break. Then nh3 (the ammonia sanitiser) keeps only the
tags and attributes below, links only to http, https, mailto or relative targets, and gives every link
`rel="nofollow noopener ugc"`. Formulas (`$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]`) are kept verbatim, out of
Markdown's reach (`$a_1*b_2$` keeps its `_` and `*`), for KaTeX to typeset in the browser. Comments are
rendered once, when written, and stored with `VERSION`.
"""

from __future__ import annotations

import html
import re
from typing import Any, cast

import nh3
import pyromark

VERSION = 2
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


_OPTIONS = (
    pyromark.Options.ENABLE_MATH | pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_STRIKETHROUGH
)
MAX_NESTING = 20
"""How deep elements (quotes, lists, items, emphasis, links) nest; deeper ones are left out, their content
kept. pulldown-cmark takes a few ms for 5,000 nested quotes, but the sanitiser's HTML parser took 90 ms for
them."""
MAX_TABLE_CELLS = 2_000
"""Table cells in one comment, all its tables together (20 columns by 100 rows; header cells count): a table
row has as many cells as its header, so a wide header over many one-letter lines would make 10,000 characters
into 500,000 events. Past the budget a table ends (the rows left show as text)."""
# `\(…\)` and `\[…\]` are not pulldown-cmark's: each pair is handed to it as `$…$` or `$$…$$` around
# private-use marks and given back its delimiters on output. A `$` after a non-space and before a digit
# cannot close a formula (`$5 and $6` is not one): it is marked too, so that pulldown-cmark sees no `$` there.
_PRIVATE = re.compile("[\ue000-\ue004]")
_PAIRS = (("\\(", "\\)", "$\ue000", "\ue001$"), ("\\[", "\\]", "$$\ue002", "\ue003$$"))
_NOT_A_CLOSER = re.compile(r"(?<=\S)\$(?=\d)")
_RESTORE = (("$$\ue002", "\\["), ("\ue003$$", "\\]"), ("$\ue000", "\\("), ("\ue001$", "\\)"), ("\ue004", "$"))
_SIMPLE = {"Paragraph": "p", "Emphasis": "em", "Strong": "strong", "Strikethrough": "del", "Item": "li"}
_BLOCK_END = frozenset({"p", "li"})


_DELIMITER_ROW = re.compile(r"[ >]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")


def _budget_tables(text: str) -> str:
    """The text with a blank line where a table would pass `MAX_TABLE_CELLS` (pulldown-cmark gives every row
    as many cells as its header: a wide header over one-letter lines made 10,000 characters into 500,000
    events), so that the rows past the budget are text. One pass over the lines; a line that looks like a
    delimiter row starts counting, a blank line stops."""
    lines = text.split("\n")
    used = 0
    columns = 0  # of the table being counted, 0 outside one
    for i, line in enumerate(lines):
        if not line.strip():
            columns = 0
        elif columns:
            used += columns
            if used > MAX_TABLE_CELLS:
                lines[i] = "\n" + line
                columns = 0
        elif "-" in line and _DELIMITER_ROW.fullmatch(line):
            columns = line.strip(" >\t").strip("|").count("|") + 1
            used += columns  # the header row
            if used > MAX_TABLE_CELLS:
                lines[i] = "\n" + line
                columns = 0
    return "\n".join(lines)


def _protect(text: str) -> str:
    """The text with its `\\(…\\)` and `\\[…\\]` formulas marked for pulldown-cmark (one pass per kind: each
    opening's search starts where the last formula ended, and no closer left means no formula left)."""
    text = _NOT_A_CLOSER.sub("\ue004", _PRIVATE.sub("\ufffd", _budget_tables(text)))
    for left, right, opening, closing in _PAIRS:
        parts: list[str] = []
        pos = 0
        while (start := text.find(left, pos)) >= 0 and (end := text.find(right, start + 2)) >= 0:
            parts += (text[pos:start], opening, text[start + 2 : end], closing)
            pos = end + 2
        parts.append(text[pos:])
        text = "".join(parts)
    return text


def _restore(text: str) -> str:
    for marked, original in _RESTORE:
        text = text.replace(marked, original)
    return text


def _escape(text: str) -> str:
    return html.escape(_restore(text), quote=True)


def _render(text: str) -> str:
    """HTML for pulldown-cmark's events, in one loop; what closes each open element waits on a stack."""
    out: list[str] = []
    kept = out  # past the budget of cells, a table's rows and cells are written nowhere
    dropped_at = -1  # the depth of the row or cell being dropped
    closing: list[str] = []
    cells = 0
    in_head = False
    for event in pyromark.events(_protect(text), options=_OPTIONS):
        if isinstance(event, str):  # SoftBreak, HardBreak, Rule
            out.append("<hr>\n" if event == "Rule" else "<br>\n" if event.endswith("Break") else "")
            continue
        ((kind, value),) = cast("dict[str, Any]", event).items()
        if kind in ("Text", "Html", "InlineHtml"):  # raw HTML is text
            out.append(_escape(value))
        elif kind == "Code":
            out.append(f"<code>{_escape(value)}</code>")
        elif kind == "InlineMath":
            out.append(_escape(f"${value}$"))
        elif kind == "DisplayMath":
            out.append(_escape(f"$${value}$$"))
        elif kind == "End":
            if value == "TableHead":
                in_head = False
            out.append(closing.pop())
            if len(closing) == dropped_at:
                out, dropped_at = kept, -1
        elif kind == "Start":
            name, arg = (value, None) if isinstance(value, str) else next(iter(value.items()))
            opening, close = _element(name, arg, in_head) if len(closing) < MAX_NESTING else ("", "")
            if name == "TableHead":
                in_head = True
            elif name in ("TableRow", "TableCell") and cells >= MAX_TABLE_CELLS and out is kept:
                out, dropped_at = [], len(closing)
            elif name == "TableCell":
                cells += 1
            out.append(opening)
            closing.append(close)
    return "".join(out)


def _element(name: str, arg: object, in_head: bool) -> tuple[str, str]:
    """The opening and closing HTML of one element pulldown-cmark starts."""
    if name in _SIMPLE:
        tag = _SIMPLE[name]
        return f"<{tag}>", f"</{tag}>\n" if tag in _BLOCK_END else f"</{tag}>"
    if name == "Heading" and isinstance(arg, dict):
        tag = f"h{min(6, int(arg['level'][1]) + 3)}"
        return f"<{tag}>", f"</{tag}>\n"
    if name in ("Link", "Image") and isinstance(arg, dict):  # an image is a plain link to it
        title = f' title="{_escape(arg["title"])}"' if arg.get("title") else ""
        return f'<a href="{html.escape(arg["dest_url"], quote=True)}"{title}>', "</a>"
    if name == "List":
        if arg is None:
            return "<ul>\n", "</ul>\n"
        return ("<ol>\n" if arg == 1 else f'<ol start="{int(str(arg))}">\n'), "</ol>\n"
    return {
        "BlockQuote": ("<blockquote>\n", "</blockquote>\n"),
        "CodeBlock": ("<pre><code>", "</code></pre>\n"),
        "HtmlBlock": ("<p>", "</p>\n"),
        "Table": ("<table>\n", "</tbody>\n</table>\n"),
        "TableHead": ("<thead>\n<tr>", "</tr>\n</thead>\n<tbody>\n"),
        "TableRow": ("<tr>", "</tr>\n"),
        "TableCell": (("<th>", "</th>") if in_head else ("<td>", "</td>")),
    }.get(name, ("", ""))


def to_html(text: str) -> str:
    """Sanitised HTML for a comment's Markdown."""
    return nh3.clean(
        _render(text),
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
