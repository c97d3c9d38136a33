"""How a newly fetched record combines with what is stored. Pure functions, no SQL.

Rules (docs/ingest.md explains them for users):
- A record with a higher arXiv version replaces every versioned field it carries.
- A record of the same version refreshes the fields it carries; an older or unversioned record (Hugging Face,
  the daily-listing corpus) only fills fields that are still empty.
- Enrichments (GitHub repo and stars, project page, AI summary and keywords) are taken from whoever has them.
- `published_at` keeps the earliest date seen, `updated_at` the latest. Withdrawn papers stay withdrawn until
  a newer version says otherwise; nothing is ever deleted.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from paperboy.models import Featuring, Paper

VERSIONED = (
    "title",
    "abstract",
    "authors",
    "categories",
    "primary_category",
    "comments",
    "journal_ref",
    "doi",
    "license",
)
ENRICHMENTS = ("github_repo", "github_stars", "project_page", "ai_summary", "ai_keywords")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == ()


def merge_paper(stored: Paper | None, incoming: Paper) -> Paper:
    """The paper to store after `incoming` arrives; equal to `stored` when nothing changes."""
    if stored is None:
        return _with_primary(incoming)
    sv, iv = stored.version, incoming.version
    newer = iv is not None and (sv is None or iv > sv)
    same = iv == sv
    changes: dict[str, Any] = {}
    for name in VERSIONED:
        new, old = getattr(incoming, name), getattr(stored, name)
        if _empty(new):
            continue
        if newer or same or _empty(old):
            changes[name] = new
    for name in ENRICHMENTS:
        new = getattr(incoming, name)
        if not _empty(new):
            changes[name] = new
    if newer:
        changes["version"] = iv
        changes["withdrawn"] = incoming.withdrawn
    elif same and incoming.withdrawn:
        changes["withdrawn"] = True
    dates = [d for d in (stored.published_at, incoming.published_at) if d is not None]
    changes["published_at"] = min(dates) if dates else None
    dates = [d for d in (stored.updated_at, incoming.updated_at) if d is not None]
    changes["updated_at"] = max(dates) if dates else None
    return _with_primary(replace(stored, **changes))


def _with_primary(p: Paper) -> Paper:
    """A paper with categories always names a primary one (the first, as arXiv lists them).

    Applied to new papers too, not only to merges: otherwise the second ingest of the same record would
    "update" the primary category the first one left empty, and re-runs would not be no-ops.
    """
    if p.categories and p.primary_category not in p.categories:
        return replace(p, primary_category=p.categories[0])
    return p


def merge_featuring(stored: Featuring | None, incoming: Featuring) -> Featuring:
    """Upstream counts only grow between fetches of the same day; other fields fill or refresh."""
    if stored is None:
        return incoming
    changes: dict[str, Any] = {}
    for f in fields(Featuring):
        new = getattr(incoming, f.name)
        if f.name in ("upvotes", "num_comments"):
            changes[f.name] = max(new, getattr(stored, f.name))
        elif f.name == "source":
            continue  # the first source to list a paper on a day keeps the credit
        elif not _empty(new):
            changes[f.name] = new
    return replace(stored, **changes)
