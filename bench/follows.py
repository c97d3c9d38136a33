"""What following costs at a hub's size: one member's `/following` page, the "For you" feed's
`papers_via_follows`, and the digest's gathering of follows for a batch of subscribers.

Builds a SQLite hub of `--papers` papers (one featuring each, one in ten for one of 200 organizations),
`--members` members who upvote `--votes` papers each, and one reader who follows `--authors` authors, 20 of
the members and 10 organizations; then times each read `--repeat` times and prints one JSON line of medians
(ms). An organization's papers are found by `lower(featurings.organization_name)`, which has no index: the
`org_ms` figure is that scan alone.

    python bench/follows.py --papers 75000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from paperboy.community import follows as ops
from paperboy.db import make_engine, upgrade
from paperboy.db.schema import featurings, paper_authors, papers, users, votes
from paperboy.digest import followed
from paperboy.digest.schedule import Due
from paperboy.models import Subscription
from paperboy.store import follows as store
from paperboy.store import users as user_store

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
ORGS = 200


def build(engine: sa.Engine, n_papers: int, n_members: int, n_votes: int) -> None:
    start = NOW - timedelta(days=n_papers // 200 + 1)
    rows, feats, names = [], [], []
    for n in range(n_papers):
        at = start + timedelta(minutes=7 * n * (n_papers // 200 + 1) * 200 // max(1, n_papers))
        pid = f"{2000 + n // 100000}.{n % 100000:05d}"
        authors = [f"Author {n % 5000}", f"Author {(n * 7) % 5000}"]
        rows.append(
            {
                "arxiv_id": pid,
                "title": f"Paper {n}",
                "abstract": "An abstract.",
                "authors": authors,
                "categories": ["cs.LG"],
                "published_at": at,
                "first_seen_at": at,
                "changed_at": at,
            }
        )
        org = n % 10 == 0
        feats.append(
            {
                "arxiv_id": pid,
                "day": at.date(),
                "source": "huggingface",
                "organization": f"Org {n % ORGS}" if org else None,
                "organization_name": f"Org-{n % ORGS}" if org else None,
            }
        )
        for pos, a in enumerate(dict.fromkeys(authors)):
            names.append(
                {"arxiv_id": pid, "position": pos, "name": a, "name_key": a.lower(), "paper_date": at}
            )
    with engine.begin() as conn:
        for table, batch in ((papers, rows), (featurings, feats), (paper_authors, names)):
            for s in range(0, len(batch), 5000):
                conn.execute(sa.insert(table), batch[s : s + 5000])
        conn.execute(
            sa.insert(users),
            [
                {
                    "username": f"m{i}",
                    "username_key": f"m{i}",
                    "email": f"m{i}@example.org",
                    "password_hash": "x",
                    "created_at": NOW,
                }
                for i in range(n_members + 1)
            ],
        )
        ids = list(conn.execute(sa.select(users.c.id).order_by(users.c.id)).scalars())
        cast = [
            {
                "user_id": uid,
                "arxiv_id": rows[(i * 37 + k * 101) % n_papers]["arxiv_id"],
                "created_at": NOW - timedelta(hours=k),
            }
            for i, uid in enumerate(ids[1:])
            for k in range(n_votes)
        ]
        unique = list({(v["user_id"], v["arxiv_id"]): v for v in cast}.values())
        for s in range(0, len(unique), 5000):
            conn.execute(sa.insert(votes), unique[s : s + 5000])


def _median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=75_000)
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--votes", type=int, default=100, help="upvotes per member")
    ap.add_argument("--authors", type=int, default=50, help="authors the reader follows")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.sqlite3")
        upgrade(engine)
        t = time.perf_counter()
        build(engine, args.papers, args.members, args.votes)
        build_s = time.perf_counter() - t
        with engine.begin() as conn:
            ids = list(conn.execute(sa.select(users.c.id).order_by(users.c.id)).scalars())
            reader = user_store.get_user(conn, ids[0])
            assert reader is not None
            for a in range(args.authors):
                store.add(conn, reader.id, "author", f"author {a * 97 % 5000}", f"Author {a}", NOW, cap=500)
            for uid in ids[1:21]:
                store.add(conn, reader.id, "member", str(uid), f"m{uid}", NOW, cap=500, target_user_id=uid)
            for o in range(10):
                store.add(conn, reader.id, "org", f"org-{o}", f"Org {o}", NOW, cap=500)
        sub = Subscription(1, "m0@example.org", "active", NOW, user_id=reader.id)
        due = Due("day:2026-12-04", date(2026, 12, 4), NOW, NOW - timedelta(days=1), "daily")
        with engine.connect() as conn:
            page1 = ops.following_page(conn, reader, 1)
            out = {
                "papers": args.papers,
                "follows": len(page1.follows),
                "build_s": round(build_s, 1),
                "following_page_ms": _median_ms(lambda: ops.following_page(conn, reader, 1), args.repeat),
                "following_page_20_ms": _median_ms(
                    lambda: ops.following_page(conn, reader, ops.FEED_PAGES), args.repeat
                ),
                "papers_via_follows_ms": _median_ms(
                    lambda: store.papers_via_follows(conn, reader.id, NOW - timedelta(days=14), 200),
                    args.repeat,
                ),
                "org_ms": _median_ms(
                    lambda: store.org_activity(conn, [f"org-{o}" for o in range(10)], 100), args.repeat
                ),
                "digest_gather_ms": _median_ms(lambda: followed.gather(engine, [(sub, due)]), args.repeat),
                "page_items": len(page1.items),
            }
        engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
