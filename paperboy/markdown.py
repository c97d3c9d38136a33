"""Members' Markdown (comments) to safe HTML: markdown-it-py renders, nh3 sanitises. Pure functions.

Two locks, each enough alone: markdown-it runs with `html: False`, so raw HTML typed into a comment comes out
as text, and its link validator drops `javascript:`, `vbscript:`, `file:` and `data:` targets; then nh3 (the
ammonia sanitiser) keeps only the tags and attributes below, links only to http, https, mailto or relative
targets, and gives every link `rel="nofollow noopener ugc"`. Images are not rendered (`![alt](url)` stays a
plain link: no tracking pixels in threads). Headings are demoted to h4–h6 so that a comment never outranks
the page's own headings. Formulas (`$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]`) are kept verbatim, out of Markdown's
reach (`$a_1*b_2$` keeps its `_` and `*`), for KaTeX to typeset in the browser.
"""

from __future__ import annotations

from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline

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


def _single_dollar_end(src: str, start: int) -> int:
    """Where a `$…$` formula opened just before `start` closes, or -1 (`$5 and $6` is not a formula: the
    opening `$` is followed by a non-space, the closing one preceded by a non-space and not by a digit)."""
    if start >= len(src) or src[start].isspace():
        return -1
    end = start
    while True:
        end = src.find("$", end + 1)
        if end == -1:
            return -1
        if src[end - 1] == "\\":
            continue
        if src[end - 1].isspace():
            continue
        if end + 1 < len(src) and src[end + 1].isdigit():
            continue
        return end


def _math(state: StateInline, silent: bool) -> bool:
    """Inline rule: a formula becomes one text token (escaped on output, never parsed as emphasis)."""
    src, pos = state.src, state.pos
    for left, right in _MATH_DELIMITERS:
        if not src.startswith(left, pos):
            continue
        start = pos + len(left)
        end = _single_dollar_end(src, start) if left == "$" else src.find(right, start)
        if end <= start:
            continue
        if not silent:
            token = state.push("text", "", 0)
            token.content = src[pos : end + len(right)]
        state.pos = end + len(right)
        return True
    return False


@cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True})
    md.enable(["strikethrough", "table"])
    md.disable("image")
    md.inline.ruler.before("escape", "math", _math)
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
