"""The Jinja environment shared by pages, feeds and (later) emails, with its filters. Pure helpers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from paperboy import markdown as md

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def short_date(value: date | datetime | None, today: date | None = None) -> str:
    """`Dec 9` within the current year, `Apr 3, 2024` otherwise (as the seed page shows dates)."""
    if value is None:
        return ""
    d = value.date() if isinstance(value, datetime) else value
    if today is not None and d.year == today.year:
        return f"{d:%b} {d.day}"
    return f"{d:%b} {d.day}, {d.year}"


def time_ago(value: datetime | None, now: datetime | None = None) -> str:
    """`just now`, `5 minutes ago`, `3 hours ago`, `2 days ago`; past a week, the date (`Mar 5`)."""
    if value is None:
        return ""
    now = now or datetime.now(UTC)
    seconds = int((now - value).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            if unit == "day" and n > 7:
                break
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return short_date(value, now.date())


def markdown(text: str | None) -> Markup:
    """A member's Markdown as sanitised HTML (paperboy.markdown): raw HTML stays text, no script survives."""
    return Markup(md.to_html(text or ""))  # noqa: S704 (to_html's output is sanitised by nh3: tests/test_security.py)


def long_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    d = value.date() if isinstance(value, datetime) else value
    return f"{d:%A}, {d:%B} {d.day}, {d.year}"


def snippet(text: str | None, length: int = 320) -> str:
    """The first `length` characters of an abstract, cut at a word boundary."""
    if not text:
        return ""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    cut = text[:length].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def arxiv_abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def arxiv_pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def safe_url(url: str | None) -> str:
    """`url` when it is an absolute http(s) URL, else "": links from upstream data never run script."""
    if not url:
        return ""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme in ("http", "https") and parts.netloc else ""


def avatar_url(url: str | None) -> str:
    """Hugging Face gives some avatars as site-relative paths (`/avatars/…`); make them absolute."""
    if not url:
        return ""
    if url.startswith("/") and not url.startswith("//"):
        return "https://huggingface.co" + url
    return safe_url(url)


def github_label(url: str | None) -> str:
    """`owner/repo` for a GitHub URL, the host and path for anything else."""
    parts = urlsplit(url or "")
    path = parts.path.strip("/").removesuffix(".git")
    if parts.netloc.lower() in ("github.com", "www.github.com") and path:
        return "/".join(path.split("/")[:2])
    return (parts.netloc + parts.path).rstrip("/")


def compact_number(n: int | None) -> str:
    """`950`, `1.2k`, `12k`, `3.4M`: how star counts are shown on cards."""
    if n is None:
        return ""
    if n < 1000:
        return str(n)
    for divisor, suffix in ((1_000_000, "M"), (1000, "k")):
        if n >= divisor:
            value = n / divisor
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(n)  # pragma: no cover


def rfc3339(value: date | datetime | None) -> str:
    """A UTC timestamp as Atom wants it: `2026-08-12T09:30:00Z` (dates count as midnight UTC)."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Characters XML 1.0 forbids even when escaped (C0 controls other than tab, newline, carriage return).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: str | None) -> str:
    """Text with the characters XML cannot carry removed (autoescaping still applies afterwards)."""
    return _XML_ILLEGAL.sub("", value or "")


# --- search highlighting -----------------------------------------------------------------------------------

# What KaTeX typesets in the browser ($…$, $$…$$, \(…\), \[…\]): never marked up nor cut, so it still renders.
_MATH = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|\$[^$\n]+?\$", re.DOTALL)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ed", "es", "s")  # "quantization" marks "quantized" too
_MAX_MARK_TERMS = 32
# Not marked unless the query has nothing else: the keyword index drops them too (tantivy's English list).
_STOP_WORDS = frozenset(
    (  # noqa: SIM905 (a list literal of 33 words would take 35 lines)
        "a an and are as at be but by for if in into is it no not of on or such that the their then there "
        "these they this to was will with"
    ).split()
)
_LEAD = 60  # characters of context kept before the first match when the snippet does not start the abstract
_NEAR_START = 120  # a first match this near the start: the snippet starts the abstract (cards show ~3 lines)


def _stem(term: str) -> str:
    for suffix in _SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 4:
            return term[: -len(suffix)]
    return term


def _terms_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for the query's words: a word starting with the term (or its stem).

    Words of scripts written with spaces must start at a word boundary; Han, kana and other unspaced
    characters match anywhere (a Chinese query word is a run of characters inside a longer run).
    """
    words = {t for t in terms if t and t.strip()}
    words = {t for t in words if t.lower() not in _STOP_WORDS} or words
    parts = []
    for term in sorted(words, key=len, reverse=True)[:_MAX_MARK_TERMS]:
        stem = re.escape(_stem(term.lower()))
        boundary = r"(?<!\w)" if term[0].isascii() or term[0].lower() != term[0].upper() else ""
        parts.append(f"{boundary}{stem}\\w*" if boundary else stem)
    if not parts:
        return None
    return re.compile("|".join(parts), re.IGNORECASE)


def _math_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _MATH.finditer(text)]


def _inside(pos: int, spans: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    for start, end in spans:
        if start < pos < end:
            return start, end
    return None


def _marked(text: str, pattern: re.Pattern[str] | None) -> Markup:
    """`text` escaped piece by piece, with the matches (outside formulas) wrapped in <mark>.

    Every character of `text` goes through `escape`: matching happens on the plain text and only our own
    <mark> tags are markup, so upstream text can never inject HTML (and `&amp;` is never split by a match).
    """
    if pattern is None:
        return escape(text)
    spans = _math_spans(text)
    out: list[str] = []
    at = 0
    for m in pattern.finditer(text):
        if any(s <= m.start() < e for s, e in spans):
            continue
        out.append(escape(text[at : m.start()]))
        out.append(Markup("<mark>%s</mark>") % text[m.start() : m.end()])
        at = m.end()
    out.append(escape(text[at:]))
    return Markup("").join(out)


def highlight(text: str | None, terms: Sequence[str] = ()) -> Markup:
    """The whole of `text`, escaped, with the query's words in <mark> (titles, author names)."""
    return _marked(" ".join((text or "").split()), _terms_pattern(terms))


def search_snippet(text: str | None, terms: Sequence[str] = (), length: int = 320) -> Markup:
    """About `length` characters of an abstract around the query's first match, escaped, matches in <mark>.

    When the first match is near the start, the snippet is the abstract's beginning (as `snippet` cuts it);
    further in, it starts a little before the match, at a word boundary, with a leading "…" (cards show about
    three lines: the match must be in them). Formulas are never cut in half or marked up. Without a match,
    the beginning of the abstract.
    """
    if not text:
        return Markup("")
    text = " ".join(text.split())
    pattern = _terms_pattern(terms)
    spans = _math_spans(text)
    match = None
    if pattern is not None:
        match = next((m for m in pattern.finditer(text) if not _inside(m.start(), spans)), None)
    start, must_show = 0, 0
    if match is not None:
        must_show = match.end()
        if match.start() > min(_NEAR_START, length // 3):
            start = max(0, match.start() - _LEAD)
            space = text.find(" ", start, match.start())
            start = space + 1 if space != -1 else start
            span = _inside(start, spans)
            if span is not None:  # skip a formula the cut would halve
                start = span[1] if span[1] <= match.start() else span[0]
            while text[start] == " ":
                start += 1
    end = max(start + length, must_show)
    if end < len(text):
        span = _inside(end, spans)
        if span is not None:
            end = span[0] if span[0] > start else span[1]
        cut = text.rfind(" ", start, end + 1)
        end = cut if cut > start else end
    piece = text[start:end].rstrip(",;: ") if end < len(text) else text[start:]
    body = _marked(piece, pattern)
    return Markup("").join(["…" if start > 0 else "", body, "…" if end < len(text) else ""])


def author_path(name: str) -> str:
    """An author's page: `/authors/` and the name (spaces collapsed), every reserved character escaped
    (a `/`, `?`, `#`, quote or non-ASCII letter in a name stays part of it)."""
    return "/authors/" + quote(" ".join(name.split()), safe="")


def short_authors(
    authors: Sequence[str], terms: Sequence[str] | None = (), shown: int = 3, linked: bool = False
) -> Markup:
    """The first `shown` authors, escaped, the query's words marked; an author further down the list whose
    name matches is added after "…" (a search by name shows that name); "et al." when more remain.
    `linked`: each name links to its author page."""
    pattern = _terms_pattern(terms or ())
    names = list(authors)
    picked = list(range(min(shown, len(names))))
    if pattern is not None and not any(pattern.search(names[i]) for i in picked):
        extra = next((i for i in range(shown, len(names)) if pattern.search(names[i])), None)
        if extra is not None:
            picked.append(extra)
    parts: list[Markup] = []
    for n, i in enumerate(picked):
        if n and i != picked[n - 1] + 1:
            parts.append(Markup(", …, "))
        elif n:
            parts.append(Markup(", "))
        name = _marked(names[i], pattern)
        parts.append(Markup('<a href="%s">%s</a>') % (author_path(names[i]), name) if linked else name)
    if picked and picked[-1] < len(names) - 1:
        parts.append(Markup(" et al."))
    return Markup("").join(parts)


def static_urls(directory: Path = STATIC_DIR) -> Callable[[str], str]:
    """`static_url("app.css")` → `/static/app.css?v=<hash of its bytes>`: a URL that changes when the file
    does, so a browser or proxy may keep it for a year (web/caching.py). Each file is read once, when first
    asked for."""
    versions: dict[str, str] = {}

    def static_url(name: str) -> str:
        if name not in versions:
            path = directory / name
            versions[name] = (
                hashlib.blake2b(path.read_bytes(), digest_size=6).hexdigest() if path.is_file() else ""
            )
        return f"/static/{name}?v={versions[name]}" if versions[name] else f"/static/{name}"

    return static_url


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship inside the package and do not change while the server runs. With auto_reload on,
        # every {% include %} (two per card: 100 a list page) stat()s its file: 7 % of a list page's
        # rendering under load (bench/load.py, docs/deploying.md "Load").
        auto_reload=False,
    )
    env.filters.update(
        short_date=short_date,
        long_date=long_date,
        snippet=snippet,
        arxiv_abs_url=arxiv_abs_url,
        arxiv_pdf_url=arxiv_pdf_url,
        safe_url=safe_url,
        avatar_url=avatar_url,
        github_label=github_label,
        compact_number=compact_number,
        rfc3339=rfc3339,
        xml_text=xml_text,
        highlight=highlight,
        search_snippet=search_snippet,
        short_authors=short_authors,
        author_path=author_path,
        time_ago=time_ago,
        markdown=markdown,
    )
    env.globals["static_url"] = static_urls()
    return env
