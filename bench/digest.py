"""Digest planning at scale: plan and render one day's digests for N subscribers with 3 topics each.

    python bench/digest.py                                # 10,000 subscribers, the 74,728 real papers
    python bench/digest.py --subscribers 200 --papers 3000   # CI's toy size

Builds, in a temporary folder, a SQLite database of the real arXiv cs papers of ../shared/data/arxiv_metadata/
with their precomputed all-MiniLM-L6-v2 vectors (../shared/data/embeddings/) — or the repo's small fixture
with synthesised vectors when ../shared is absent — and N confirmed subscribers: 3 topics each drawn from a
pool of topics (the first words of real titles, embedded by the real model as the web form does when a
topic is saved), a time zone each, some with followed authors and excluded words. Then times
`plan_due` at one weekday evening when every subscriber is due: composing (trending + topics by keyword and
meaning + authors, each paper once), rendering HTML and text, writing the runs and the outbox rows.
Sending is bounded by the SMTP rate, not by us, and is not timed here. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import search  # noqa: E402  (bench/search.py: the same corpus loader)
import search_ann  # noqa: E402

from paperboy import db  # noqa: E402
from paperboy.db.schema import subscriptions, topics  # noqa: E402
from paperboy.digest.plan import Context, plan_due  # noqa: E402
from paperboy.models import Featuring, Record  # noqa: E402
from paperboy.search.embed import load_embedder  # noqa: E402
from paperboy.sources.snapshot import parse_line  # noqa: E402
from paperboy.store import embeddings as vectors_store  # noqa: E402
from paperboy.store.papers import upsert_records  # noqa: E402
from paperboy.templating import make_environment  # noqa: E402

AS_OF = datetime(2026, 6, 17, 20, 0, tzinfo=UTC)  # a Wednesday inside the real papers' range
ZONES = ("America/Los_Angeles", "America/New_York", "UTC", "Europe/London", "Europe/Berlin", "Asia/Kolkata")
MODEL = "all-MiniLM-L6-v2"


def _load(engine: sa.Engine, n_papers: int, seed: int) -> dict[str, Any]:
    ids, vectors, records, _q, info = search.corpus(n_papers, 1, seed)
    now = datetime.now(UTC)
    rng = random.Random(seed)
    for s in range(0, len(records), 5000):
        batch = []
        for r in records[s : s + 5000]:
            paper = parse_line(r, "bench")
            day = (paper.published_at or now).date()
            # each paper on its listing day's list (as PAPERBOY_FEATURE_ARXIV_NEW does), a few upvotes each,
            # so that every digest has a trending section to compose and render
            batch.append(Record(paper, Featuring(paper.arxiv_id, day, "arxiv", upvotes=rng.randint(0, 40))))
        with engine.begin() as conn:
            upsert_records(conn, batch, now)
    vectors = vectors.astype(np.float32)
    with engine.begin() as conn:
        for s in range(0, len(ids), 5000):
            rows = [(ids[i], vectors[i].tobytes(), "bench") for i in range(s, min(s + 5000, len(ids)))]
            vectors_store.save(
                conn, MODEL if vectors.shape[1] == 384 else "bench-synth", vectors.shape[1], rows, now
            )
    titles = [r["title"] for r in records]
    return {"titles": titles, "dim": vectors.shape[1], "source": info["papers"]}


def _topics(titles: list[str], n: int, rng: random.Random) -> list[str]:
    pool: list[str] = []
    seen: set[str] = set()
    for title in rng.sample(titles, min(len(titles), n * 3)):
        words = [w for w in title.replace(":", " ").split() if w.isalpha()][: rng.choice((2, 3, 4))]
        topic = " ".join(words).lower()
        if len(topic) > 5 and topic not in seen:
            seen.add(topic)
            pool.append(topic)
        if len(pool) >= n:
            break
    return pool


def _subscribers(
    engine: sa.Engine, n: int, pool: list[tuple[str, bytes]], rng: random.Random, model: str
) -> None:
    now = AS_OF - timedelta(days=30)
    subs, tops = [], []
    for i in range(n):
        zone = rng.choice(ZONES)
        local_hour = AS_OF.astimezone(ZoneInfo(zone)).hour
        subs.append(
            {
                "id": i + 1,
                "email": f"reader{i}@example.org",
                "status": "active",
                "cadence": "daily",
                "send_hour": rng.randint(max(0, local_hour - 6), local_hour),  # due at AS_OF
                "weekly_day": 0,
                "timezone": zone,
                "max_papers": rng.choice((5, 10, 15)),
                "categories": [],
                "authors": [],
                "exclude": ["survey"] if i % 7 == 0 else [],
                "token_version": 1,
                "created_at": now,
                "confirmed_at": now,
            }
        )
        for query, vector in rng.sample(pool, 3):
            tops.append(
                {
                    "subscription_id": i + 1,
                    "query": query,
                    "source": "topic",
                    "filters": None,
                    "vector": vector,
                    "model": model,
                    "created_at": now,
                }
            )
    with engine.begin() as conn:
        conn.execute(sa.insert(subscriptions), subs)
        conn.execute(sa.insert(topics), tops)


def run(n_subscribers: int, n_papers: int, n_topics: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="paperboy-digest-") as tmp:
        engine = db.make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        db.upgrade(engine)
        t = time.perf_counter()
        data = _load(engine, n_papers, seed)
        load_s = time.perf_counter() - t

        t = time.perf_counter()
        texts = _topics(data["titles"], n_topics, rng)
        if data["dim"] == 384:
            embedder = load_embedder(None, threads=1)
            model = embedder.model
            pool = [(q, np.asarray(embedder.embed_query(q), dtype=np.float32).tobytes()) for q in texts]
        else:  # no real vectors to compare with: random unit vectors of the synthesised dimension
            model = "bench-synth"
            gen = np.random.default_rng(seed)
            pool = [
                (q, search_ann._normalise(gen.normal(size=(1, data["dim"]))).astype(np.float32)[0].tobytes())
                for q in texts
            ]
        topic_embed_s = time.perf_counter() - t
        _subscribers(engine, n_subscribers, pool, rng, model)

        ctx = Context(
            "Bench Papers", "https://papers.example.org", "Bench <papers@example.org>", b"k" * 32, model
        )
        t = time.perf_counter()
        report = plan_due(engine, AS_OF, ctx, make_environment())
        plan_s = time.perf_counter() - t
        with engine.connect() as conn:
            mails = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
            runs = conn.execute(sa.text("SELECT count(*) FROM digest_runs")).scalar_one()
            avg_papers = conn.execute(sa.text("SELECT avg(papers) FROM digest_runs")).scalar_one()
        engine.dispose()
    return {
        "subscribers": n_subscribers,
        "topics_per_subscriber": 3,
        "distinct_topics": len(pool),
        "papers": n_papers,
        "plan_s": round(plan_s, 2),  # everything: compose + render + write, for all subscribers
        "compose_s": round(report.compose_s, 2),
        "render_s": round(report.render_s, 2),
        "write_s": round(report.write_s, 2),
        "per_subscriber_ms": round(plan_s / max(1, n_subscribers) * 1000, 3),
        "runs": runs,
        "mails": mails,
        "avg_papers_per_digest": round(float(avg_papers or 0), 2),
        "topic_embed_s": round(topic_embed_s, 2),  # once per distinct topic, when it is saved (not per run)
        "setup_s": round(load_s, 1),
        "as_of": AS_OF.isoformat(),
        "papers_from": data["source"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument(
        "--papers", type=int, default=74_728, help="papers loaded (default: all the real ones)"
    )
    parser.add_argument("--topics", type=int, default=600, help="distinct topics in the pool (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.subscribers < 1 or args.papers < 100 or args.topics < 3:
        parser.error("--subscribers ≥ 1, --papers ≥ 100, --topics ≥ 3")
    print(json.dumps(run(args.subscribers, args.papers, args.topics, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
