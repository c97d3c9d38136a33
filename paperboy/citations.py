"""Citations out: papers as BibTeX, RIS and CSL-JSON, and the Highwire `citation_*` tags of a paper page.

Pure functions of `models` (no I/O). The conventions followed, format by format:

- BibTeX as arXiv's own "Export BibTeX citation" writes it (`@misc`, `eprint`, `archivePrefix = {arXiv}`,
  `primaryClass`, the abs URL), `@article` with `journal` when the paper has a journal reference; authors as
  "von Last, Jr, First" joined by " and "; every LaTeX special outside `$…$` math escaped so that no title can
  unbalance a brace, open a comment or leave math mode; words with inner capitals (BERT, LLaMA) protected.
- RIS as Zotero exports a preprint (`TY  - GEN`; `JOUR` with a journal reference), CRLF line ends, one
  `AU` per author ("Last, First, Suffix"), every value on one line.
- CSL-JSON as Zotero exports a preprint: type "article", "publisher": "arXiv", "number": "arXiv:<id>".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from paperboy.models import Paper, StoredPaper

MAX_EXPORT = 200  # papers in one export: a page's worth (list pages show 50, collections are capped too)


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    label: str


FORMATS: dict[str, Format] = {
    "bib": Format("bib", "application/x-bibtex", "bib", "BibTeX"),
    "ris": Format("ris", "application/x-research-info-systems", "ris", "RIS"),
    "csljson": Format("csljson", "application/vnd.citationstyles.csl+json", "json", "CSL-JSON"),
}


def parse_format(value: str) -> Format:
    """The export format named `value` (`bib`, `ris`, `csljson`); ValueError names the choices."""
    try:
        return FORMATS[value.strip().lower()]
    except KeyError:
        raise ValueError(f"format {value[:40]!r} is not one of {', '.join(FORMATS)}") from None


# --- names --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    """A person's name in the parts reference managers keep: "Jan van der Berg Jr." is given "Jan",
    particle "van der", family "Berg", suffix "Jr."."""

    given: str
    family: str
    particle: str = ""
    suffix: str = ""

    @property
    def last(self) -> str:
        """The family name with its particle, as it is cited: "van der Berg"."""
        return f"{self.particle} {self.family}".strip()


_PARTICLES = frozenset(
    [
        "van",
        "von",
        "der",
        "den",
        "de",
        "del",
        "della",
        "della",
        "di",
        "da",
        "das",
        "dos",
        "do",
        "du",
        "la",
        "le",
        "les",
        "lo",
        "ten",
        "ter",
        "te",
        "vom",
        "zu",
        "zum",
        "zur",
        "af",
        "av",
        "bin",
        "ibn",
        "al",
        "el",
    ]
)
_SUFFIX = re.compile(r"^(?:jr|sr|jnr|snr|[ivx]{2,4}|2nd|3rd|4th)\.?$", re.IGNORECASE)


def _is_particle(word: str) -> bool:
    return word.lower() in _PARTICLES or word.lower().startswith(("d'", "d’", "l'"))


def _split_last(words: list[str]) -> tuple[str, str]:
    """("van der", "Berg") from the family part of a name written "Last, First"."""
    i = 0
    while i < len(words) - 1 and words[i][:1].islower() and _is_particle(words[i]):
        i += 1
    return " ".join(words[:i]), " ".join(words[i:])


def split_name(name: str) -> Name:
    """Split an author's name as arXiv and Hugging Face write it ("First Middle Last", "Jan van der Berg",
    "Martin Luther King Jr.", a single name) or as bibliographies do ("Last, First", "Last, Jr., First").

    >>> split_name("Jan van der Berg")
    Name(given='Jan', family='Berg', particle='van der', suffix='')
    >>> split_name("King, Jr., Martin Luther")
    Name(given='Martin Luther', family='King', particle='', suffix='Jr.')
    """
    text = _one_line(name.replace(";", " "))
    if not text:
        return Name("", "")
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        parts = [p for p in parts if p] or [text.replace(",", " ").strip()]
        if len(parts) == 2 and _SUFFIX.match(parts[1]):  # "First Last, Jr."
            inner = split_name(parts[0])
            return Name(inner.given, inner.family, inner.particle, parts[1])
        if len(parts) == 1:
            return split_name(parts[0])
        particle, family = _split_last(parts[0].split())
        if len(parts) >= 3 and _SUFFIX.match(parts[1]):  # "Last, Jr., First"
            return Name(", ".join(parts[2:]), family, particle, parts[1])
        return Name(", ".join(parts[1:]), family, particle)
    words = text.split()
    suffix = ""
    if len(words) > 2 and _SUFFIX.match(words[-1]):
        suffix = words.pop()
    if len(words) == 1:
        return Name("", words[0], "", suffix)
    # The particle starts at the first lower-case particle word after the given names ("Ludwig van
    # Beethoven", "Jean de La Fontaine"); a capitalised one ("Van Morrison") is part of the given names.
    for i in range(1, len(words) - 1):
        if words[i][:1].islower() and _is_particle(words[i]):
            j = i
            while j < len(words) - 1 and _is_particle(words[j]):
                j += 1
            return Name(" ".join(words[:i]), " ".join(words[j:]), " ".join(words[i:j]), suffix)
    return Name(" ".join(words[:-1]), words[-1], "", suffix)


def inverted(name: Name) -> str:
    """ "van der Berg, Jan" (the suffix after the family name, "King Jr., Martin"): the form Zotero's
    Embedded Metadata translator splits at the comma."""
    last = f"{name.last} {name.suffix}".strip()
    return f"{last}, {name.given}" if name.given else last


# --- shared pieces ------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _one_line(text: str | None) -> str:
    """Whitespace (newlines included) collapsed, control characters dropped: every format keeps a value
    on one line."""
    return " ".join(_CONTROL.sub("", text or "").split())


def _paper(item: Paper | StoredPaper) -> Paper:
    return item.paper if isinstance(item, StoredPaper) else item


_NEW_STYLE = re.compile(r"^(\d{2})(\d{2})\.")
_OLD_STYLE = re.compile(r"/(\d{2})(\d{2})\d{3}$")


def paper_date(paper: Paper) -> date | None:
    """When the paper was first announced: its first version's date, else the month its id encodes."""
    if paper.published_at is not None:
        return paper.published_at.date()
    m = _NEW_STYLE.match(paper.arxiv_id) or _OLD_STYLE.search(paper.arxiv_id)
    if m is None:
        return None
    yy, mm = int(m.group(1)), int(m.group(2))
    if not 1 <= mm <= 12:
        return None
    return date(2000 + yy if yy < 91 else 1900 + yy, mm, 1)


def _exact_day(paper: Paper) -> bool:
    return paper.published_at is not None


def abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def _primary(paper: Paper) -> str | None:
    return paper.primary_category or (paper.categories[0] if paper.categories else None)


# --- BibTeX -------------------------------------------------------------------------------------------------

_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "on",
        "of",
        "in",
        "for",
        "to",
        "and",
        "or",
        "is",
        "are",
        "with",
        "towards",
        "toward",
        "via",
        "from",
        "by",
        "at",
        "as",
        "its",
        "into",
        "using",
    ]
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def citation_key(item: Paper | StoredPaper) -> str:
    """arXiv's key: the first author's family name, the year and the title's first word that is not a stop
    word, in lower-case ASCII ("vaswani2017attention")."""
    paper = _paper(item)
    first = split_name(paper.authors[0]) if paper.authors else Name("", "")
    last = _ascii_word(first.family) or "anon"
    day = paper_date(paper)
    year = str(day.year) if day else ""
    word = ""
    for token in _one_line(paper.title).split():
        candidate = _ascii_word(token)
        if candidate and candidate not in _STOP_WORDS:
            word = candidate
            break
    return f"{last[:40]}{year}{word[:30]}"


def _unique_keys(papers: Sequence[Paper]) -> list[str]:
    """Keys made unique within one export: a second "smith2025deep" becomes "smith2025deepb", then "c"…"""
    seen: set[str] = set()
    keys: list[str] = []
    for paper in papers:
        base = citation_key(paper)
        key, n = base, 1
        while key in seen:
            n += 1
            key = base + (chr(ord("a") + n - 1) if n <= 26 else str(n))
        seen.add(key)
        keys.append(key)
    return keys


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",  # not \{: BibTeX counts braces even after a backslash
    "}": r"\textbraceright{}",
    "%": r"\%",
    "&": r"\&",
    "_": r"\_",
    "$": r"\$",
    "#": r"\#",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_SPECIAL_CHARS = re.compile(r"[\\{}%&_$#~^]")
# Inline math that arXiv titles carry ("$O(n \log n)$", "$\alpha$-divergence") is kept as TeX when it is
# plainly math: no comment, alignment or parameter character, braces balanced, and no command that reads or
# writes files or redefines things. Anything else is escaped and prints as the characters it holds.
_MATH = re.compile(r"\$([^$%&#~\n]{1,200}?)\$")
_UNSAFE_COMMANDS = frozenset(
    [
        "input",
        "include",
        "def",
        "edef",
        "gdef",
        "xdef",
        "let",
        "write",
        "immediate",
        "openout",
        "openin",
        "read",
        "catcode",
        "csname",
        "endcsname",
        "newcommand",
        "renewcommand",
        "providecommand",
        "usepackage",
        "documentclass",
        "begin",
        "end",
        "special",
        "jobname",
        "makeatletter",
        "expandafter",
        "bye",
        "everypar",
        "output",
        "shipout",
        "futurelet",
        "afterassignment",
        "uppercase",
        "lowercase",
        "string",
        "detokenize",
        "scantokens",
        "directlua",
    ]
)


# TeX joins some pairs into one glyph: '' and `` into curly quotes, -- into a dash, ,, << >> !` ?` into
# quotes and inverted marks. An empty group between the two keeps the characters a title holds.
_LIGATURE = re.compile(r"(['`\-,<>])(?=\1)|([!?])(?=`)")


def break_ligatures(text: str) -> str:
    return _LIGATURE.sub(lambda m: (m.group(1) or m.group(2)) + "{}", text)


def escape_latex(text: str) -> str:
    """Plain text as LaTeX that prints it: every special character escaped, no two characters joined."""
    return break_ligatures(_SPECIAL_CHARS.sub(lambda m: _LATEX_SPECIALS[m.group()], text))


def _safe_math(body: str) -> bool:
    depth = 0
    for ch in body:
        depth += 1 if ch == "{" else -1 if ch == "}" else 0
        if depth < 0:
            return False
    if depth != 0 or body.endswith("\\") or not body.strip():
        return False
    return not any(c in _UNSAFE_COMMANDS for c in re.findall(r"\\([A-Za-z]+)", body))


def _protect(word: str) -> bool:
    """Whether a title word keeps its capitals in sentence-case styles: an inner capital (BERT, LLaMA,
    GPT-4, iPhone), not just a capitalised first letter."""
    for part in word.split("-"):
        letters = [c for c in part if c.isalpha()]
        if any(c.isupper() for c in letters[1:]):
            return True
    return False


def bibtex_title(title: str) -> str:
    """A title as a BibTeX field value (without the outer braces)."""
    text = _one_line(title)
    out: list[str] = []
    pos = 0
    for m in _MATH.finditer(text):
        if not _safe_math(m.group(1)):
            continue
        out.append(_title_words(text[pos : m.start()]))
        out.append("{" + m.group(0) + "}")
        pos = m.end()
    out.append(_title_words(text[pos:]))
    return "".join(out)


def _title_words(text: str) -> str:
    return re.sub(
        r"\S+",
        lambda m: "{" + escape_latex(m.group()) + "}" if _protect(m.group()) else escape_latex(m.group()),
        text,
    )


def _bib_part(text: str) -> str:
    """One part of a name: escaped, each escape in braces ("{\\%}": one special character to BibTeX's name
    splitter), and braced whole when it holds a comma or the word "and" that would split it."""
    escaped = _SPECIAL_CHARS.sub(lambda m: "{" + _LATEX_SPECIALS[m.group()].removesuffix("{}") + "}", text)
    escaped = break_ligatures(escaped)
    if "," in escaped or re.search(r"\band\b", escaped, re.IGNORECASE):
        return "{" + escaped + "}"
    return escaped


def bibtex_name(raw: str) -> str:
    """One author as BibTeX's "von Last, Jr, First"."""
    name = split_name(raw)
    if not name.family:
        return ""
    last = " ".join(p for p in (_bib_part(name.particle), _bib_part(name.family)) if p)
    if not name.particle and " " in name.family:
        last = "{" + _bib_part(name.family) + "}"  # a family name of several words stays whole
    parts = [last]
    if name.suffix:
        parts.append(_bib_part(name.suffix))
    if name.given or name.suffix:
        parts.append(_bib_part(name.given))
    return ", ".join(parts)


def _bib_value(text: str) -> str:
    return escape_latex(_one_line(text))


def bibtex_entry(item: Paper | StoredPaper, key: str | None = None) -> str:
    paper = _paper(item)
    key = key or citation_key(paper)
    kind = "article" if paper.journal_ref else "misc"
    fields: list[tuple[str, str]] = [("title", "{" + bibtex_title(paper.title) + "}")]
    authors = [a for a in (bibtex_name(n) for n in paper.authors) if a]
    if authors:
        fields.append(("author", "{" + " and ".join(authors) + "}"))
    if paper.journal_ref:
        fields.append(("journal", "{" + _bib_value(paper.journal_ref) + "}"))
    day = paper_date(paper)
    if day is not None:
        fields.append(("year", "{" + str(day.year) + "}"))
        fields.append(("month", _MONTHS[day.month - 1]))  # the standard macro, unbraced
    fields.append(("eprint", "{" + _bib_value(paper.arxiv_id) + "}"))
    fields.append(("archivePrefix", "{arXiv}"))
    primary = _primary(paper)
    if primary:
        fields.append(("primaryClass", "{" + _bib_value(primary) + "}"))
    if paper.doi:
        fields.append(("doi", "{" + _bib_value(paper.doi) + "}"))
    fields.append(("url", "{" + abs_url(paper.arxiv_id) + "}"))
    body = ",\n".join(f"  {name} = {value}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def bibtex(items: Iterable[Paper | StoredPaper]) -> str:
    papers = [_paper(i) for i in items]
    return "\n".join(bibtex_entry(p, k) for p, k in zip(papers, _unique_keys(papers), strict=True))


# --- RIS ----------------------------------------------------------------------------------------------------

CRLF = "\r\n"


def _ris_date(day: date, exact: bool) -> str:
    # RIS's DA: YYYY/MM/DD/other; a part not known is left empty ("2025/03//")
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}/" if exact else f"{day.year:04d}/{day.month:02d}//"


def ris_name(raw: str) -> str:
    """ "Last, First, Suffix", the RIS spec's form."""
    name = split_name(raw)
    parts = [name.last, name.given] if name.given or name.suffix else [name.last]
    if name.suffix:
        parts.append(name.suffix)
    return ", ".join(parts)


def ris_record(item: Paper | StoredPaper, key: str | None = None) -> str:
    paper = _paper(item)
    lines: list[tuple[str, str]] = [("TY", "JOUR" if paper.journal_ref else "GEN")]
    lines.append(("ID", key or citation_key(paper)))
    lines.append(("TI", _one_line(paper.title)))
    lines.extend(("AU", ris_name(a)) for a in paper.authors if _one_line(a))
    day = paper_date(paper)
    if day is not None:
        lines.append(("PY", f"{day.year:04d}"))
        lines.append(("DA", _ris_date(day, _exact_day(paper))))
    if paper.journal_ref:
        lines.append(("JO", _one_line(paper.journal_ref)))
    lines.append(("PB", "arXiv"))
    lines.append(("AN", f"arXiv:{paper.arxiv_id}"))
    if paper.doi:
        lines.append(("DO", _one_line(paper.doi)))
    lines.append(("UR", abs_url(paper.arxiv_id)))
    lines.append(("L1", pdf_url(paper.arxiv_id)))
    lines.extend(("KW", c) for c in paper.categories)
    if paper.abstract.strip():
        lines.append(("AB", _one_line(paper.abstract)))
    lines.append(("ER", ""))
    return "".join(f"{tag}  - {_one_line(value)}{CRLF}" for tag, value in lines)


def ris(items: Iterable[Paper | StoredPaper]) -> str:
    papers = [_paper(i) for i in items]
    return CRLF.join(ris_record(p, k) for p, k in zip(papers, _unique_keys(papers), strict=True))


# --- CSL-JSON -----------------------------------------------------------------------------------------------


def csl_name(raw: str) -> dict[str, str]:
    name = split_name(raw)
    if not name.given and not name.particle and not name.suffix:
        return {"family": name.family}
    out = {"family": name.family, "given": name.given}
    if name.particle:
        out["non-dropping-particle"] = name.particle
    if name.suffix:
        out["suffix"] = name.suffix
    return {k: v for k, v in out.items() if v}


def csl_item(item: Paper | StoredPaper, key: str | None = None) -> dict[str, Any]:
    paper = _paper(item)
    out: dict[str, Any] = {
        "id": key or citation_key(paper),
        "type": "article-journal" if paper.journal_ref else "article",
        "title": _one_line(paper.title),
        "author": [csl_name(a) for a in paper.authors if _one_line(a)],
    }
    day = paper_date(paper)
    if day is not None:
        parts = [day.year, day.month, day.day] if _exact_day(paper) else [day.year, day.month]
        out["issued"] = {"date-parts": [parts]}
    if paper.journal_ref:
        out["container-title"] = _one_line(paper.journal_ref)
    out["publisher"] = "arXiv"
    out["number"] = f"arXiv:{paper.arxiv_id}"
    if paper.version is not None:
        out["version"] = str(paper.version)
    if paper.doi:
        out["DOI"] = _one_line(paper.doi)
    out["URL"] = abs_url(paper.arxiv_id)
    if paper.abstract.strip():
        out["abstract"] = _one_line(paper.abstract)
    if paper.categories:
        out["keyword"] = ", ".join(paper.categories)
    return out


def csl_json(items: Iterable[Paper | StoredPaper]) -> str:
    papers = [_paper(i) for i in items]
    data = [csl_item(p, k) for p, k in zip(papers, _unique_keys(papers), strict=True)]
    text = json.dumps(data, ensure_ascii=False, indent=2)
    # `<`, `>` and `&` as JSON escapes, as the API answers (web/schemas SafeJSONResponse): the same data to
    # any JSON reader, and no markup from a stored title if a browser ever renders the file
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


# --- exports and meta tags ----------------------------------------------------------------------------------


def export(items: Iterable[Paper | StoredPaper], fmt: str) -> tuple[str, str, str]:
    """(text, media type, file extension) for `items` in format `fmt` (ValueError for an unknown one).
    Takes at most MAX_EXPORT papers."""
    spec = parse_format(fmt)
    papers = [_paper(i) for _, i in zip(range(MAX_EXPORT), items, strict=False)]
    render = {"bib": bibtex, "ris": ris, "csljson": csl_json}[spec.name]
    return render(papers), spec.media_type, spec.extension


def _slash_date(day: date | datetime) -> str:
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def highwire_tags(item: Paper | StoredPaper) -> list[tuple[str, str]]:
    """The `citation_*` meta tags of a paper page, in order, as (name, content): what Google Scholar and
    Zotero's Embedded Metadata translator read (title, one author per tag in order, dates as YYYY/MM/DD,
    the PDF and abstract URLs, DOI and journal when known)."""
    paper = _paper(item)
    tags: list[tuple[str, str]] = [("citation_title", _one_line(paper.title))]
    authors = [split_name(a) for a in paper.authors if _one_line(a)]
    for name in authors:
        text = inverted(name)
        # With a single citation_author, Zotero splits "A B, C D" at the comma into two people: write that
        # one author in natural order instead.
        if len(authors) == 1 and " " in text.split(",")[0] and " " in text.partition(",")[2].strip():
            text = " ".join(p for p in (name.given, name.last, name.suffix) if p)
        tags.append(("citation_author", text))
    day = paper_date(paper)
    if day is not None:
        tags.append(("citation_publication_date", _slash_date(day)))
        online = paper.updated_at or paper.published_at
        tags.append(("citation_online_date", _slash_date(online or day)))
    tags.append(("citation_arxiv_id", paper.arxiv_id))
    tags.append(("citation_pdf_url", pdf_url(paper.arxiv_id)))
    tags.append(("citation_abstract_html_url", abs_url(paper.arxiv_id)))
    if paper.doi:
        tags.append(("citation_doi", _one_line(paper.doi)))
    if paper.journal_ref:
        tags.append(("citation_journal_title", _one_line(paper.journal_ref)))
    if paper.abstract.strip():
        tags.append(("citation_abstract", _one_line(paper.abstract)))
    return tags
