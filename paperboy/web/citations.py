"""Citations out: `/papers/{id}.bib` (`.ris`, `.csl.json`) and BibTeX / RIS / CSL-JSON exports of lists
(issue 14).

`citation_response(papers, fmt, filename)` is what every list page calls for `?format=bib|ris|csljson`:
the export of exactly the papers that page shows (its page of results, at most `citations.MAX_EXPORT`),
as a download. `export_links(path, params)` gives the pages their "Export" links.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from paperboy import citations
from paperboy.errors import InvalidInput, NotFound
from paperboy.models import Paper, StoredPaper, parse_arxiv_id
from paperboy.web import deps, listings

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
write_router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api", dependencies=[Depends(deps.require_csrf)])

# What `/papers/{id}<suffix>` answers, by suffix.
SUFFIXES = {".bib": "bib", ".ris": "ris", ".csl.json": "csljson"}


def check_format(fmt: str) -> citations.Format:
    """The export format `fmt` names; InvalidInput (400) naming the choices otherwise."""
    try:
        return citations.parse_format(fmt)
    except ValueError as exc:
        raise InvalidInput(f"format: {exc}") from None


def _filename(name: str, extension: str) -> str:
    """A download name safe in a header and on any file system: "papers-2025-03-05.bib"."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "papers"
    return f"{stem}.{extension}"


def citation_response(papers: Iterable[Paper | StoredPaper], fmt: str, filename: str) -> Response:
    """`papers` as a BibTeX, RIS or CSL-JSON download (`fmt`: bib, ris, csljson; 400 for anything else),
    named `filename` plus the format's extension; at most `citations.MAX_EXPORT` papers."""
    spec = check_format(fmt)
    text, media_type, extension = citations.export(papers, spec.name)
    name = _filename(filename, extension)
    return Response(
        text.encode("utf-8"),
        media_type=f"{media_type}; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


def export_links(path: str, params: Mapping[str, object] | None = None) -> list[dict[str, str]]:
    """The "Export" links of a list page: its own URL (with its parameters, page included) plus
    `format=…`, one per format, as {"href", "label", "format"}."""
    kept = {k: str(v) for k, v in (params or {}).items() if v not in (None, "") and k != "format"}
    return [
        {"href": f"{path}?{urlencode({'format': f.name, **kept})}", "label": f.label, "format": f.name}
        for f in citations.FORMATS.values()
    ]


@router.get("/papers/{arxiv_id:path}.bib", response_model=None)
def paper_bib(arxiv_id: str, conn: Connection = Depends(deps.conn)) -> Response:
    """One paper as BibTeX (arXiv's conventions), as a download."""
    return _paper_export(conn, arxiv_id, ".bib")


@router.get("/papers/{arxiv_id:path}.ris", response_model=None)
def paper_ris(arxiv_id: str, conn: Connection = Depends(deps.conn)) -> Response:
    """One paper as RIS (Zotero, EndNote, Mendeley)."""
    return _paper_export(conn, arxiv_id, ".ris")


@router.get("/papers/{arxiv_id:path}.csl.json", response_model=None)
def paper_csl(arxiv_id: str, conn: Connection = Depends(deps.conn)) -> Response:
    """One paper as CSL-JSON (pandoc, citeproc)."""
    return _paper_export(conn, arxiv_id, ".csl.json")


def _paper_export(conn: Connection, arxiv_id: str, suffix: str) -> Response:
    parsed = parse_arxiv_id(arxiv_id)
    if parsed is None:
        raise NotFound(f"{arxiv_id!r} is not an arXiv id (e.g. 2504.11966 or hep-th/9901001)")
    canonical, _version = parsed
    if canonical != arxiv_id:
        return RedirectResponse(f"/papers/{canonical}{suffix}", status_code=301)
    item = listings.paper(conn, canonical)
    return citation_response([item], SUFFIXES[suffix], canonical.replace("/", "-"))
