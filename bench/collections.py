"""Collections at their cap: one member's collection of N papers (2,000, the most one may hold).

    python bench/collections.py                          # 2,000 papers, 12 concurrent writers, SQLite
    python bench/collections.py --papers 150 --writers 4 # CI's toy size

Builds a SQLite database in a temporary folder with N synthetic papers and one member, then times: adding
the papers one write transaction each (`add_paper`, as a Save does), a full reorder (the order reversed),
then `--writers` threads each adding the same `--shared` papers to a second collection at once (every paper
must end up in it once, at distinct places), and the collection's page (first page of 100), its JSON twin
(the whole collection) and its Atom feed through the real app (in-process ASGI client), medians of
`--repeat`. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from paperboy import accounts, db  # noqa: E402
from paperboy.community import collections as ops  # noqa: E402
from paperboy.db.schema import collection_items  # noqa: E402
from paperboy.models import Paper, Record  # noqa: E402
from paperboy.store.papers import upsert_records  # noqa: E402
from paperboy.web.app import create_app  # noqa: E402
from paperboy.web.deps import Site  # noqa: E402

NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)
PASSWORD = "a bench member's passphrase"  # a throwaway account in a temporary database


def _median_get(client: TestClient, path: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, (path, r.status_code)
        size = len(r.content)
    return statistics.median(times), size


def run(papers: int, writers: int, shared: int, repeat: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="paperboy-bench-collections-"))
    engine = db.make_engine(f"sqlite:///{folder / 'bench.sqlite3'}")
    db.upgrade(engine)
    ids = [f"2606.{n:05d}" for n in range(papers)]
    authors = ("Ada Lovelace", "Alan Turing", "Grace Hopper")
    with db.transaction(engine) as conn:
        upsert_records(
            conn,
            [
                Record(Paper(arxiv_id=i, title=f"Paper {i}", abstract="Words. " * 60, authors=authors))
                for i in ids
            ],
            NOW,
        )
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        ada = accounts.create_user(
            conn, hasher, username="ada", email="ada@example.org", password=PASSWORD, now=NOW
        )
        big = ops.create_collection(conn, ada, "Big", NOW, public=True)
        busy = ops.create_collection(conn, ada, "Busy", NOW)

    add_times = []
    for n, arxiv_id in enumerate(ids):
        t = time.perf_counter()
        with db.transaction(engine) as conn:
            ops.add_paper(conn, ada, big.id, arxiv_id, NOW + timedelta(seconds=n))
        add_times.append(time.perf_counter() - t)

    t = time.perf_counter()
    with db.transaction(engine) as conn:
        ops.reorder(conn, ada, big.id, list(reversed(ids)), NOW)
    reorder_s = time.perf_counter() - t

    chosen = ids[:shared]
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def work(k: int) -> None:
        try:
            start.wait()
            for arxiv_id in chosen[k % shared :] + chosen[: k % shared]:
                with engine.connect() as conn, db.write(conn):
                    ops.add_paper(conn, ada, busy.id, arxiv_id, NOW)
        except BaseException as exc:  # reported in the JSON
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    concurrent_s = time.perf_counter() - t
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(collection_items.c.arxiv_id, collection_items.c.position).where(
                collection_items.c.collection_id == busy.id
            )
        ).all()
    places_distinct = sorted(r[1] for r in rows) == list(range(shared)) and len(rows) == shared

    app = create_app(engine, site=Site("bench", "http://localhost:8000", 7), clock=lambda: NOW)
    with TestClient(app) as client:
        page_s, page_bytes = _median_get(client, "/u/ada/c/big", repeat)
        json_s, json_bytes = _median_get(client, "/api/users/ada/collections/big", repeat)
        feed_s, feed_bytes = _median_get(client, "/u/ada/c/big/feed.atom", repeat)
    engine.dispose()
    return {
        "papers": papers,
        "add_ms_p50": round(statistics.median(add_times) * 1000, 2),
        "reorder_all_s": round(reorder_s, 3),
        "writers": writers,
        "shared_papers": shared,
        "concurrent_adds": writers * shared,
        "concurrent_s": round(concurrent_s, 3),
        "concurrent_errors": len(errors),
        "places_distinct": places_distinct,
        "page_s_p50": round(page_s, 4),
        "page_bytes": page_bytes,
        "json_s_p50": round(json_s, 4),
        "json_bytes": json_bytes,
        "feed_s_p50": round(feed_s, 4),
        "feed_bytes": feed_bytes,
        "repeat": repeat,
        "backend": "sqlite",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--papers", type=int, default=ops.MAX_ITEMS, help="papers in the collection")
    parser.add_argument("--writers", type=int, default=12, help="threads adding to one collection at once")
    parser.add_argument("--shared", type=int, default=50, help="papers each of them adds")
    parser.add_argument("--repeat", type=int, default=5, help="requests per timed route (median)")
    args = parser.parse_args()
    print(json.dumps(run(min(args.papers, ops.MAX_ITEMS), args.writers, args.shared, args.repeat)))


if __name__ == "__main__":
    main()
