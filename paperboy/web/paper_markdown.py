"""A paper page as Markdown: what `GET /papers/{id}.md` and `Accept: text/markdown` on `/papers/{id}` answer,
as huggingface.co does (`huggingface_hub`'s `HfApi.read_paper` and `hf papers read ID` read it).

Hugging Face answers the paper's full text when arXiv has an HTML version of it and the paper page's content
otherwise; a hub fetches nothing from arXiv at request time, so this is always the paper page: title, authors,
dates, who listed it, links, the AI summary and keywords, the abstract. Pure functions.

Fields come from upstream sources and members: text that Markdown would read as markup (`<`, `>`, `[`, `]`,
a leading `#`) is escaped, and only absolute http(s) URLs become links.
"""

from __future__ import annotations

import re

from paperboy.models import StoredPaper
from paperboy.templating import arxiv_abs_url, arxiv_pdf_url, safe_url

MARKDOWN_TYPE = "text/markdown; charset=utf-8"

_SPECIAL = re.compile(r"([\\`\[\]])")


def _inline(text: str) -> str:
    """One line of text, its Markdown-significant characters escaped (`$`, `_`, `^` of formulas stay): `<` and
    `>` as entities (no raw HTML), `\\`, backquotes and brackets with a backslash (no code spans or links)."""
    one = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    one = _SPECIAL.sub(r"\\\1", one)
    return "\\" + one if one.startswith(("#", "-", "+", "*", ">", "=")) else one


def _link(url: str | None) -> str | None:
    good = safe_url(url)
    if not good or any(c in good for c in " <>\n\r\t"):
        return None
    return f"<{good}>"


def paper_markdown(item: StoredPaper, public_url: str) -> str:
    """The paper page of `item` as a Markdown document (ends with a newline)."""
    p, f = item.paper, item.featuring
    lines = [f"# {_inline(p.title)}", ""]
    if p.withdrawn:
        lines += ["> **This paper has been withdrawn** by its authors on arXiv.", ""]
    if p.authors:
        lines += ["**Authors:** " + ", ".join(_inline(a) for a in p.authors), ""]
    facts = []
    if p.published_at is not None:
        facts.append(f"Published on arXiv: {p.published_at.date().isoformat()}")
    if f is not None:
        listed = f"Featured in Daily Papers: {f.day.isoformat()}"
        if f.submitter is not None:
            listed += f" (submitted by {_inline(f.submitter.fullname or f.submitter.name)})"
        facts.append(listed)
        if f.organization:
            facts.append(f"Organization: {_inline(f.organization)}")
    facts.append(f"Upvotes: {item.upvotes}")
    facts.append(f"Comments: {item.num_comments}")
    if p.categories:
        facts.append("Categories: " + ", ".join(_inline(c) for c in p.categories))
    lines += [f"- {fact}" for fact in facts]
    lines.append("")
    links = [
        f"- Page: <{public_url.rstrip('/')}/papers/{p.arxiv_id}>",
        f"- arXiv: <{arxiv_abs_url(p.arxiv_id)}>",
        f"- PDF: <{arxiv_pdf_url(p.arxiv_id)}>",
    ]
    repo = _link(p.github_repo)
    if repo:
        stars = f" ({p.github_stars} stars)" if p.github_stars is not None else ""
        links.append(f"- Code: {repo}{stars}")
    project = _link(p.project_page)
    if project:
        links.append(f"- Project page: {project}")
    lines += [*links, ""]
    if p.ai_summary:
        lines += ["## AI-generated summary", "", _inline(p.ai_summary), ""]
    if p.ai_keywords:
        lines += ["**Keywords:** " + ", ".join(_inline(k) for k in p.ai_keywords), ""]
    lines += ["## Abstract", "", _inline(p.abstract) if p.abstract.strip() else "(no abstract)", ""]
    return "\n".join(lines)


def _media_ranges(accept: str) -> dict[str, float]:
    ranges: dict[str, float] = {}
    for part in accept.split(",")[:50]:
        media, *params = (x.strip() for x in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            ranges[media.lower()] = max(q, ranges.get(media.lower(), 0.0))
    return ranges


def wants_markdown(accept: str | None) -> bool:
    """Whether an `Accept` header asks for Markdown over HTML: `text/markdown` listed (q > 0) and ranked at
    least as high as `text/html`. Browsers never list it, so they get the HTML page."""
    if not accept or "markdown" not in accept.lower():
        return False
    ranges = _media_ranges(accept)
    md = ranges.get("text/markdown", 0.0)
    return md > 0 and md >= ranges.get("text/html", 0.0)
