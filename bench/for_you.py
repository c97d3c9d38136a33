"""How long does a member wait for their "For you" page? The whole request, measured through the real app.

    python bench/for_you.py                    # the 74,728 papers of ../shared/data, 40 members (~5 minutes)
    python bench/for_you.py --papers 5000      # a quick look
    python bench/for_you.py --toy              # CI's size: the repo's fixture papers, synthesised vectors

bench/recommend.py measures the ranking (`rank()`, and how good it is); this measures what a member waits for
around it: their interests read from the database (upvotes, follows, feedback, their seeds' vectors), the
pool of recent papers (built once per process by `PoolCache`, then shared), the ranking, the papers read back
and the response written. The papers are loaded into a real SQLite file with their stored all-MiniLM-L6-v2
vectors (../shared/data/embeddings), and members are made the way the product makes them: each upvotes 5
papers of one author (through the API), follows that author and marks one paper "Less like this".

Two pools are timed, side by side in one run: the product's default (the last 60 days, at most 20,000 papers)
and every paper loaded (the issue's "75k papers"). For each: the cold build (the first request after start or
after papers changed), then `GET /api/papers/for-you?limit=50` and `GET /papers/for-you` (HTML) for every
member, p50 and p95 in ms. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from argon2 import PasswordHasher  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from paperboy import accounts, db  # noqa: E402
from paperboy.db import schema  # noqa: E402
from paperboy.models import Record  # noqa: E402
from paperboy.recommend.feed import PoolCache  # noqa: E402
from paperboy.search.hybrid import Searcher  # noqa: E402
from paperboy.search.vector import VectorIndex  # noqa: E402
from paperboy.sources.snapshot import parse_line  # noqa: E402
from paperboy.store import embeddings as store_embeddings  # noqa: E402
from paperboy.store.authors import author_key  # noqa: E402
from paperboy.store.papers import upsert_records  # noqa: E402
from paperboy.web.app import create_app  # noqa: E402
from paperboy.web.deps import Site  # noqa: E402
from paperboy.web.security import RateLimits  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
LISTING = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
VECTORS = SHARED / "embeddings" / "minilm_arxiv_cs_f16.npy"
IDS = SHARED / "embeddings" / "minilm_arxiv_cs_ids.txt"
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "arxiv_listing_small.jsonl"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PASSWORD = "correct horse battery staple"  # the made-up members' (none signs in)


def _read(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return [json.loads(line) for line in f if line.strip()]


def corpus(papers: int, toy: bool, seed: int) -> tuple[list[dict[str, Any]], np.ndarray, str]:
    """The newest `papers` records (by listing date) and their vectors, float32 rows."""
    if not toy and LISTING.is_file() and VECTORS.is_file() and IDS.is_file():
        records = _read(LISTING)
        rows = {pid: n for n, pid in enumerate(IDS.read_text().split())}
        records = [r for r in records if r["id"] in rows]
        records.sort(key=lambda r: (r.get("listing_date") or "", r["id"]))
        records = records[-papers:]
        matrix = np.load(VECTORS, mmap_mode="r")
        vectors = np.asarray(matrix[[rows[r["id"]] for r in records]], dtype=np.float32)
        return records, vectors, "real papers with precomputed all-MiniLM-L6-v2 vectors from ../shared/data"
    rng = np.random.default_rng(seed)
    records = _read(FIXTURE)[:papers]
    centres = rng.normal(size=(8, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 8, len(records))] + rng.normal(0, 0.3, (len(records), 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return records, vectors, "repo fixture papers with synthesised vectors"


def load(engine: Any, records: list[dict[str, Any]], vectors: np.ndarray, now: datetime) -> float:
    t = time.perf_counter()
    for s in range(0, len(records), 5000):
        batch = [Record(parse_line(r, "bench")) for r in records[s : s + 5000]]
        rows = [
            (r["id"], vectors[s + k].astype("<f4").tobytes(), "bench")
            for k, r in enumerate(records[s : s + 5000])
        ]
        with engine.begin() as conn:
            upsert_records(conn, batch, now)
            store_embeddings.save(conn, MODEL, vectors.shape[1], rows, now)
    return time.perf_counter() - t


def members_of(records: list[dict[str, Any]], count: int, seed: int) -> list[tuple[str, list[str]]]:
    """(author name, ids of 5 of their papers) for `count` authors with at least 5 papers, drawn at random."""
    papers: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for r in records:
        for name in r.get("authors") or []:
            key = author_key(name)
            papers.setdefault(key, []).append(r["id"])
            names.setdefault(key, name)
    keys = sorted(k for k, ids in papers.items() if len(ids) >= 5)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(keys), size=min(count, len(keys)), replace=False) if keys else []
    return [(names[keys[i]], papers[keys[i]][:5]) for i in chosen]


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered) * 1000, 1), "p95": round(p95 * 1000, 1)}


def run(papers: int, count: int, toy: bool, seed: int, workdir: Path) -> dict[str, Any]:
    records, vectors, source = corpus(papers, toy, seed)
    newest = max((r.get("listing_date") or "2026-07-01") for r in records)
    now = datetime.fromisoformat(newest).replace(tzinfo=UTC) + timedelta(days=1, hours=12)
    path = workdir / "bench.sqlite3"
    fresh = not path.exists()
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    load_s = load(engine, records, vectors, now) if fresh else 0.0
    index = VectorIndex.create(workdir / "vectors.usearch", vectors.shape[1], MODEL)  # names the model
    app = create_app(
        engine,
        site=Site(name="bench", public_url="https://bench.example.org", trending_days=7),
        clock=lambda: now,
        searcher=Searcher(None, index),
        rate_limits=RateLimits(vote="100000 per minute"),
        secret_key=b"b" * 32,
    )
    people = members_of(records, count, seed)
    tokens = []
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # members are made, not timed
    with engine.begin() as conn:
        for n, (_name, _ids) in enumerate(people):
            if not fresh:
                conn.execute(sa.delete(schema.users).where(schema.users.c.username == f"member{n}"))
            user = accounts.create_user(
                conn, hasher, username=f"member{n}", email=f"m{n}@example.org", password=PASSWORD, now=now
            )
            tokens.append(accounts.create_token(conn, user, "bench", now).secret)
    out: dict[str, Any] = {
        "papers": len(records),
        "source": source,
        "members": len(people),
        "db_load_s": round(load_s, 1),
    }
    with TestClient(app, base_url="https://testserver") as client:
        for (name, ids), token in zip(people, tokens, strict=True):
            auth = {"Authorization": f"Bearer {token}"}
            for pid in ids:
                assert client.post(f"/api/papers/{pid}/upvote", headers=auth).status_code == 200
            client.post("/api/follows", json={"kind": "author", "name": name}, headers=auth)
            first = client.get("/api/papers/for-you", params={"limit": 50}, headers=auth).json()["items"]
            if first:
                less = first[-1]["paper"]["id"]
                client.put(f"/api/papers/{less}/feedback", json={"kind": "less"}, headers=auth)
        pools = {
            "default": PoolCache(),
            "all_papers": PoolCache(window_days=100_000, limit=len(records) + 1),
        }
        for label, cache in pools.items():
            app.state.feed_pool = cache
            auth = {"Authorization": f"Bearer {tokens[0]}"}
            t = time.perf_counter()
            client.get("/api/papers/for-you", params={"limit": 50}, headers=auth)
            cold = time.perf_counter() - t
            api: list[float] = []
            html: list[float] = []
            reasons: dict[str, int] = {}
            for token in tokens:
                auth = {"Authorization": f"Bearer {token}"}
                t = time.perf_counter()
                r = client.get("/api/papers/for-you", params={"limit": 50}, headers=auth)
                api.append(time.perf_counter() - t)
                for item in r.json()["items"]:
                    reasons[item["reason"]["kind"]] = reasons.get(item["reason"]["kind"], 0) + 1
                t = time.perf_counter()
                page = client.get("/papers/for-you", headers=auth)
                html.append(time.perf_counter() - t)
                assert page.status_code == 200 and 'class="card-why"' in page.text
            built = cache.get(engine.connect(), MODEL, now)
            out[label] = {
                "pool_papers": len(built.ids),
                "cold_first_request_ms": round(cold * 1000, 1),
                "api_ms": _ms(api),
                "html_ms": _ms(html),
                "reasons": dict(sorted(reasons.items())),
            }
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=int, default=80_000, help="the newest N papers (all: 74,728)")
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--toy", action="store_true", help="the repo's fixture papers (CI)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="a folder for the database, kept (and reused) between runs")
    args = parser.parse_args(argv)
    if args.keep is not None:  # the database stays there, and a second run starts from it
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args.papers, args.members, args.toy, args.seed, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="paperboy-for-you-") as tmp:
            result = run(args.papers, args.members, args.toy, args.seed, Path(tmp))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
