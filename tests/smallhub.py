"""A small hub for API tests: seven Hugging Face daily papers (tests/fixtures/hf_daily_papers_small.json, in
the real API's item shape) loaded through the real file ingest, plus one arXiv-only paper never listed.

Days: 2026-07-31 (Fri, W31), 2026-08-03 (Mon, W32), 2026-08-07 (Fri, W32), 2026-08-10 (Mon, W33).
On 2026-08-10 the three orders differ: upvotes F > E > D, newest on the list D > E > F, trending F > D > E.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from paperboy.jobs import ingest_hf_file
from paperboy.models import Paper, Record
from paperboy.store.papers import upsert_records

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "hf_daily_papers_small.json"
NOW = datetime(2026, 8, 10, 18, 0, tzinfo=UTC)

A, B, C, D, E, F, G = (
    "2608.00101",  # 08-03, akhaliq, 40 votes, org, GitHub, AI summary
    "2608.00102",  # 08-03, taesiri, 5 votes, non-ASCII authors
    "2608.00103",  # 08-07, akhaliq, 12 votes
    "2608.00104",  # 08-10 17:00, taesiri, 3 votes, 4 comments
    "hep-th/9901001",  # 08-10 03:00, ada, 8 votes, old-style id
    "2608.00106",  # 08-10 01:00, akhaliq, 25 votes
    "2607.00107",  # 07-31, taesiri, 50 votes
)
UNLISTED = "2608.00200"  # arXiv only, v2, published 2026-08-09T20:00Z
ALL_IDS = {A, B, C, D, E, F, G, UNLISTED}


def load_small_hub(engine: Engine) -> None:
    ingest_hf_file(engine, FIXTURE, lambda: NOW)
    unlisted = Paper(
        arxiv_id=UNLISTED,
        version=2,
        title="Quantum Sparse Attention",
        abstract="Sparse attention on a quantum computer.",
        authors=("Richard Feynman",),
        categories=("quant-ph", "cs.LG"),
        primary_category="quant-ph",
        published_at=datetime(2026, 8, 9, 20, 0, tzinfo=UTC),
    )
    with engine.begin() as conn:
        upsert_records(conn, [Record(unlisted)], NOW)
