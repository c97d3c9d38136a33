"""Citations out (paperboy/citations.py): every export is read back by a real consumer of its format —
BibTeX by bibtexparser (its name splitter included) with the LaTeX decoded by pylatexenc, RIS by rispy,
CSL-JSON validated against the CSL-JSON schema and rendered by citeproc-py — and compared with the paper,
for ordinary papers and for hostile titles and names (LaTeX specials, unicode, newlines, very long)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import bibtexparser
import jsonschema_rs
import pytest
import rispy
from bibtexparser.middlewares import SeparateCoAuthors, SplitNameParts
from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source.json import CiteProcJSON
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pylatexenc import latex2text

from paperboy import citations
from paperboy.citations import Name, split_name
from paperboy.models import Paper, StoredPaper

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "csl" / "csl-data.json").read_text())
CSL = jsonschema_rs.validator_for(SCHEMA)

_DB = latex2text.get_default_latex_context_db()
_DB.add_context_category(
    "paperboy-test",
    prepend=True,
    macros=[
        latex2text.MacroTextSpec(name, text)
        for name, text in (
            ("textbraceleft", "{"),
            ("textbraceright", "}"),
            ("textasciitilde", "~"),
            ("textasciicircum", "^"),
            ("textbackslash", "\\"),
        )
    ],
)
# What LaTeX prints: the commands decoded, math left as its TeX source (so it compares with the title's).
DECODE = latex2text.LatexNodes2Text(latex_context=_DB, math_mode="verbatim", strict_latex_spaces=True)


def one_line(text: str) -> str:
    return " ".join(text.split())


def paper(**kw: object) -> Paper:
    base: dict[str, object] = {
        "arxiv_id": "2503.01234",
        "title": "Sparse Attention in $O(n \\log n)$ Time",
        "abstract": "We show\nthat attention is sparse.\n\nA second paragraph.",
        "authors": ("Ada Lovelace", "Jan van der Berg", "Martin Luther King Jr.", "Plato"),
        "categories": ("cs.LG", "stat.ML"),
        "primary_category": "cs.LG",
        "version": 2,
        "published_at": datetime(2025, 3, 1, 9, tzinfo=UTC),
        "updated_at": datetime(2025, 3, 4, 9, tzinfo=UTC),
    }
    base.update(kw)
    return Paper(**base)  # type: ignore[arg-type]


def parse_bib(text: str) -> bibtexparser.Library:
    lib = bibtexparser.parse_string(text, append_middleware=[SeparateCoAuthors(), SplitNameParts()])
    assert not lib.failed_blocks, [b.error for b in lib.failed_blocks]
    return lib


def decoded(parts: list[str]) -> str:
    return one_line(DECODE.latex_to_text(" ".join(parts)))


# --- names --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Ada Lovelace", Name("Ada", "Lovelace")),
        ("Grace Brewster Murray Hopper", Name("Grace Brewster Murray", "Hopper")),
        ("Jan van der Berg", Name("Jan", "Berg", "van der")),
        ("Ludwig van Beethoven", Name("Ludwig", "Beethoven", "van")),
        ("Jean de La Fontaine", Name("Jean", "Fontaine", "de La")),
        ("Vincent Van Gogh", Name("Vincent Van", "Gogh")),  # a capitalised "Van" is not told apart
        ("Martin Luther King Jr.", Name("Martin Luther", "King", "", "Jr.")),
        ("Henry Ford II", Name("Henry", "Ford", "", "II")),
        ("Plato", Name("", "Plato")),
        ("Lovelace, Ada", Name("Ada", "Lovelace")),
        ("van der Berg, Jan", Name("Jan", "Berg", "van der")),
        ("King, Jr., Martin Luther", Name("Martin Luther", "King", "", "Jr.")),
        ("Martin Luther King, Jr.", Name("Martin Luther", "King", "", "Jr.")),
        ("  Ada \n  Lovelace ", Name("Ada", "Lovelace")),
        ("", Name("", "")),
    ],
)
def test_names_split_into_the_parts_reference_managers_keep(raw: str, name: Name) -> None:
    assert split_name(raw) == name


# --- BibTeX -------------------------------------------------------------------------------------------------


def test_bibtex_follows_arxivs_export_and_reads_back() -> None:
    p = paper(doi="10.1234/x.5", journal_ref=None)
    lib = parse_bib(citations.bibtex([p]))
    (entry,) = lib.entries
    assert entry.entry_type == "misc"
    assert entry.key == "lovelace2025sparse"
    assert entry["title"] == "Sparse Attention in {$O(n \\log n)$} Time"
    assert DECODE.latex_to_text(entry["title"]) == p.title
    assert entry["year"] == "2025" and entry["month"] == "mar"
    assert entry["eprint"] == "2503.01234" and entry["archivePrefix"] == "arXiv"
    assert entry["primaryClass"] == "cs.LG"
    assert entry["url"] == "https://arxiv.org/abs/2503.01234" and entry["doi"] == "10.1234/x.5"
    authors = entry["author"]
    assert [(a.first, a.von, a.last, a.jr) for a in authors] == [
        (["Ada"], [], ["Lovelace"], []),
        (["Jan"], ["van", "der"], ["Berg"], []),
        (["Martin", "Luther"], [], ["King"], ["Jr."]),
        ([], [], ["Plato"], []),
    ]


def test_a_journal_reference_makes_an_article_and_keys_are_unique_within_an_export() -> None:
    a = paper(journal_ref="J. Sparse Res. 1 (2025) 1-12")
    b = paper(arxiv_id="2503.09999")
    c = paper(arxiv_id="2503.09998", published_at=None, title="The Sparse Things")
    lib = parse_bib(citations.bibtex([a, b, c]))
    assert [e.key for e in lib.entries] == [
        "lovelace2025sparse",
        "lovelace2025sparseb",
        "lovelace2025sparsec",
    ]
    assert [e.entry_type for e in lib.entries] == ["article", "misc", "misc"]
    assert lib.entries[0]["journal"] == "J. Sparse Res. 1 (2025) 1-12"
    assert lib.entries[2]["year"] == "2025" and lib.entries[2]["month"] == "mar"  # from the id's YYMM


def test_capitals_inside_words_are_protected_and_old_style_ids_keep_their_archive() -> None:
    p = paper(
        arxiv_id="hep-th/9901001", title="BERT and LLaMA Meet GPT-4 in Old-Style Physics", published_at=None
    )
    (entry,) = parse_bib(citations.bibtex([p])).entries
    assert entry["title"] == "{BERT} and {LLaMA} Meet {GPT-4} in Old-Style Physics"
    assert entry["eprint"] == "hep-th/9901001" and entry["year"] == "1999" and entry["month"] == "jan"
    assert entry.key == "lovelace1999bert"


HOSTILE = "{}%&_$#\\~^@,\"'`=()[]<>|/;:!?*+\n\t\r\x00\x07 "
PIECES = [*HOSTILE, "and", "van", "Jr.", " and ", "$x$", "$\\alpha$", "$\\input{x}$", "\\%"]
hostile_text = st.lists(
    st.one_of(st.sampled_from(PIECES), st.characters(codec="utf-8", exclude_categories=("Cs",))), max_size=40
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=hostile_text, authors=st.lists(hostile_text, max_size=5))
@example(title="}{ %unbalanced $ # & _ \\", authors=["a{b", "}c d", "e and f g", "van"])
@example(title="$}$ $\\input{/etc/passwd}$ $a\\$ $%$", authors=["x, y, z, w"])
@example(title="T" * 5000 + "\n\n" + "é" * 3000, authors=["A " * 200])
# TeX ligatures ('' `` -- ,, << >> !` ?`) are kept apart: the characters come back, not curly quotes or dashes
@example(title="Don''t -- ``quote'' ,, << >> !` ?`", authors=["''", "O''Neil --"])
def test_hostile_titles_and_names_cannot_break_the_bibtex_file(title: str, authors: list[str]) -> None:
    papers = [paper(title=title, authors=tuple(authors)), paper(arxiv_id="2503.00002")]
    lib = parse_bib(citations.bibtex(papers))
    assert len(lib.entries) == 2  # the first entry did not swallow or break the second
    first, second = lib.entries
    assert second["title"] == "Sparse Attention in {$O(n \\log n)$} Time"
    clean = citations._one_line(title)
    assert one_line(DECODE.latex_to_text(first["title"])) == one_line(clean)
    names = [split_name(citations._one_line(a)) for a in authors]
    names = [n for n in names if n.family]
    got = first["author"] if "author" in first.fields_dict else []
    assert len(got) == len(names)
    for parsed, name in zip(got, names, strict=True):
        assert decoded(parsed.von + parsed.last) == one_line(name.last)
        assert decoded(parsed.first) == one_line(name.given)
        assert decoded(parsed.jr) == one_line(name.suffix)


# --- RIS ----------------------------------------------------------------------------------------------------


def test_ris_reads_back_with_rispy_and_ends_lines_with_crlf() -> None:
    a = paper(doi="10.1234/x.5", journal_ref="J. Sparse Res. 1 (2025) 1-12")
    b = StoredPaper(paper(arxiv_id="2503.00002", published_at=None, title="Second\nline"))
    text = citations.ris([a, b])
    assert text.count("\r\n") == text.count("\n") and "\r\r" not in text
    assert text.startswith("TY  - JOUR\r\n") and text.endswith("ER  - \r\n")
    first, second = rispy.loads(text)
    assert first["type_of_reference"] == "JOUR" and second["type_of_reference"] == "GEN"
    assert first["title"] == "Sparse Attention in $O(n \\log n)$ Time"
    assert first["authors"] == ["Lovelace, Ada", "van der Berg, Jan", "King, Martin Luther, Jr.", "Plato"]
    assert first["year"] == "2025" and first["date"] == "2025/03/01/"
    assert first["doi"] == "10.1234/x.5" and first["urls"] == ["https://arxiv.org/abs/2503.01234"]
    assert first["journal_name"] == "J. Sparse Res. 1 (2025) 1-12"
    assert first["abstract"] == "We show that attention is sparse. A second paragraph."
    assert first["keywords"] == ["cs.LG", "stat.ML"]
    assert second["title"] == "Second line" and second["date"] == "2025/03//"


@settings(max_examples=100, deadline=None)
@given(title=hostile_text, authors=st.lists(hostile_text, max_size=4), abstract=hostile_text)
@example(title="x\r\nER  - \r\nTY  - JOUR", authors=["AU  - Mallory"], abstract="\n\nER  - ")
def test_hostile_values_stay_inside_their_ris_record(title: str, authors: list[str], abstract: str) -> None:
    text = citations.ris([paper(title=title, authors=tuple(authors), abstract=abstract), paper()])
    records = rispy.loads(text)
    assert len(records) == 2
    first = records[0]
    assert first.get("title", "") == citations._one_line(title)
    kept = [citations.ris_name(a) for a in authors if citations._one_line(a)]
    assert first.get("authors", []) == [citations._one_line(a) for a in kept]
    assert records[1]["title"] == "Sparse Attention in $O(n \\log n)$ Time"


# --- CSL-JSON -----------------------------------------------------------------------------------------------


def test_csl_json_is_valid_against_the_schema_and_renders_with_citeproc() -> None:
    a = paper(doi="10.1234/x.5")
    b = paper(arxiv_id="2503.00002", journal_ref="J. Sparse Res. 1 (2025) 1-12", published_at=None)
    data = json.loads(citations.csl_json([a, b]))
    CSL.validate(data)
    first, second = data
    assert first["type"] == "article" and second["type"] == "article-journal"
    assert first["publisher"] == "arXiv" and first["number"] == "arXiv:2503.01234"
    assert first["issued"] == {"date-parts": [[2025, 3, 1]]} and second["issued"] == {
        "date-parts": [[2025, 3]]
    }
    assert first["author"] == [
        {"family": "Lovelace", "given": "Ada"},
        {"family": "Berg", "given": "Jan", "non-dropping-particle": "van der"},
        {"family": "King", "given": "Martin Luther", "suffix": "Jr."},
        {"family": "Plato"},
    ]
    assert first["DOI"] == "10.1234/x.5" and first["URL"] == "https://arxiv.org/abs/2503.01234"
    assert first["abstract"] == "We show that attention is sparse. A second paragraph."
    assert second["container-title"] == "J. Sparse Res. 1 (2025) 1-12"
    style = CitationStylesStyle("harvard-cite-them-right", validate=False)
    two = json.loads(
        citations.csl_json([paper(arxiv_id="2503.00003", authors=("Ada Lovelace", "Jan van der Berg"))])
    )
    bib = CitationStylesBibliography(style, CiteProcJSON(data + two), formatter.plain)
    bib.register(
        Citation([CitationItem(first["id"]), CitationItem(second["id"]), CitationItem(two[0]["id"])])
    )
    rendered = [str(entry) for entry in bib.bibliography()]
    assert any("Lovelace, A." in r and "van der Berg, J." in r and "2025" in r for r in rendered), rendered
    assert any("Sparse Attention in $O(n \\log n)$ Time" in r for r in rendered), rendered


@settings(max_examples=100, deadline=None)
@given(title=hostile_text, authors=st.lists(hostile_text, max_size=4))
def test_hostile_values_make_valid_csl_json(title: str, authors: list[str]) -> None:
    data = json.loads(citations.csl_json([paper(title=title, authors=tuple(authors))]))
    CSL.validate(data)
    assert data[0]["title"] == citations._one_line(title)


# --- exports and meta tags ----------------------------------------------------------------------------------


def test_export_names_its_media_type_caps_its_size_and_refuses_unknown_formats() -> None:
    many = [paper(arxiv_id=f"2503.{n:05d}") for n in range(citations.MAX_EXPORT + 5)]
    text, media_type, extension = citations.export(many, "bib")
    assert (media_type, extension) == ("application/x-bibtex", "bib")
    assert len(parse_bib(text).entries) == citations.MAX_EXPORT
    assert citations.export(many[:1], "ris")[1:] == ("application/x-research-info-systems", "ris")
    assert citations.export(many[:1], "csljson")[1:] == ("application/vnd.citationstyles.csl+json", "json")
    with pytest.raises(ValueError, match="not one of bib, ris, csljson"):
        citations.export(many, "endnote")


def test_highwire_tags_put_authors_in_order_as_last_first() -> None:
    tags = citations.highwire_tags(paper(doi="10.1234/x.5"))
    assert [v for k, v in tags if k == "citation_author"] == [
        "Lovelace, Ada",
        "van der Berg, Jan",
        "King Jr., Martin Luther",
        "Plato",
    ]
    found = dict(tags)
    assert (
        found["citation_publication_date"] == "2025/03/01" and found["citation_online_date"] == "2025/03/04"
    )
    assert found["citation_pdf_url"] == "https://arxiv.org/pdf/2503.01234"
    # One author whose both halves hold a space would be split in two by Zotero at the comma: natural order.
    (single,) = [
        v
        for k, v in citations.highwire_tags(paper(authors=("Ana María de la Cruz",)))
        if k == "citation_author"
    ]
    assert single == "Ana María de la Cruz"
