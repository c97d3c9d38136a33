"""Planning: at an instant, find every confirmed subscriber whose period is due, compose and render their
digest, and write — in one transaction per batch — a `digest_runs` row per subscriber and period (unique:
the same period is never planned twice, whoever runs the planner and however often) and the mail into the
outbox. An empty digest records its run with `papers = 0` and sends nothing. The sender (digest/send.py)
delivers what the outbox holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING, cast

import numpy as np
from jinja2 import Environment
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from paperboy.digest import followed as digest_followed
from paperboy.digest import subscriptions as subs
from paperboy.digest.compose import Pool, compose
from paperboy.digest.render import Links, Mail, host_of, render
from paperboy.digest.schedule import Due, due
from paperboy.models import StoredPaper, Subscription, Topic
from paperboy.ranking import paper_signals, rank_trending
from paperboy.recommend import feed
from paperboy.recommend.rank import Pool as RankPool
from paperboy.store import digests as store
from paperboy.store import embeddings as vectors_store
from paperboy.store import outbox
from paperboy.store import papers as paper_store
from paperboy.store import subscriptions as sub_store

if TYPE_CHECKING:
    from paperboy.search.embed import Embedder

TRENDING_POOL = 50
BATCH = 200


@dataclass(frozen=True)
class Context:
    """What mails need to know about this hub."""

    site_name: str
    public_url: str
    sender: str  # the From header, e.g. "Lab Papers <papers@lab.example>"
    key: bytes  # signs the links in every mail
    model: str | None = None  # the embedding model whose stored vectors topics are compared with


@dataclass
class PlanReport:
    due: int = 0  # subscribers whose period is due and not yet planned
    planned: int = 0  # runs written
    mails: int = 0  # of those, with papers: one outbox row each
    empty: int = 0  # of those, with nothing to send
    already: int = 0  # due, but their period was planned before (by this or another planner)
    compose_s: float = 0.0
    render_s: float = 0.0
    write_s: float = 0.0
    previews: list[tuple[Subscription, Mail | None]] = field(default_factory=list)


def build_pool(conn: Connection, d: Due, model: str | None) -> Pool:
    """The period's papers: featured in its window (for trending) and published in it (for topics)."""
    featured = paper_store.featured(
        conn, paper_store.FeaturedQuery(d.window_start.date(), d.scheduled.date())
    )
    unique: dict[str, StoredPaper] = {}
    for item in featured:
        unique.setdefault(item.paper.arxiv_id, item)
    trending = rank_trending(list(unique.values()), paper_signals, d.scheduled)[:TRENDING_POOL]
    fresh = paper_store.published_between(conn, d.window_start, d.scheduled)
    matrix = None
    if model is not None and fresh:
        found = vectors_store.get_vectors(conn, model, [i.paper.arxiv_id for i in fresh])
        if found:
            dim = len(next(iter(found.values()))) // 4
            matrix = np.zeros((len(fresh), dim), dtype=np.float32)
            for n, item in enumerate(fresh):
                raw = found.get(item.paper.arxiv_id)
                if raw is not None and len(raw) == 4 * dim:
                    matrix[n] = np.frombuffer(raw, dtype=np.float32)
    return Pool(trending, fresh, matrix)


def _resolve(source: Embedder | Callable[[], Embedder | None] | None) -> Embedder | None:
    if source is None:
        return None
    if hasattr(source, "embed_query"):
        return cast("Embedder", source)
    return cast("Callable[[], Embedder | None]", source)()


def embed_topics(
    engine: Engine,
    subscribers: Sequence[Subscription],
    source: Embedder | Callable[[], Embedder | None] | None,
    model: str | None,
) -> list[Subscription]:
    """Topics without a vector of `model` get one now (stored: the next run reuses it). `source` is the
    embedder, or a function that loads it: called only when some topic needs a vector."""
    if source is None or model is None:
        return list(subscribers)
    todo: dict[str, list[Topic]] = {}
    for s in subscribers:
        for t in s.topics:
            if t.vector is None or t.model != model:
                todo.setdefault(t.query, []).append(t)
    if not todo:
        return list(subscribers)
    embedder = _resolve(source)
    if embedder is None:
        return list(subscribers)
    made: dict[int, bytes] = {}
    for query, topics in todo.items():
        vec = np.asarray(embedder.embed_query(query), dtype=np.float32).tobytes()
        for t in topics:
            made[t.id] = vec
    with engine.begin() as conn:
        store.save_topic_vectors(conn, [(tid, vec, embedder.model) for tid, vec in made.items()])
    out = []
    for s in subscribers:
        fresh = tuple(
            replace(t, vector=made[t.id], model=embedder.model) if t.id in made else t for t in s.topics
        )
        out.append(replace(s, topics=fresh))
    return out


def links_for(ctx: Context, sub: Subscription, now: datetime) -> Links:
    """The signed links of a mail made at `now` (the wall clock when it is written, never a replayed as-of
    moment: a link's lifetime counts from when the mail leaves). Unsubscribe links never expire."""
    return Links(
        site_name=ctx.site_name,
        public_url=ctx.public_url,
        unsubscribe=subs.unsubscribe_url(ctx.public_url, ctx.key, sub),
        manage=subs.manage_url(ctx.public_url, ctx.key, sub, now),
        feed=subs.feed_url(ctx.public_url, ctx.key, sub, now),
        sender_address=parseaddr(ctx.sender)[1] or f"paperboy@{host_of(ctx.public_url)}",
    )


def message_id(run_id: int, sub: Subscription, public_url: str) -> str:
    """Stable for the run: a re-send after a crash carries the same Message-ID (clients fold duplicates)."""
    return f"<digest.{run_id}.{sub.id}@{host_of(public_url)}>"


def _write(
    conn: Connection,
    planned: Sequence[tuple[Subscription, Due, Mail | None, int]],
    ctx: Context,
    now: datetime,
) -> int:
    mails = 0
    for sub, d, mail, papers in planned:
        run_id = store.insert_run(conn, sub.id, d.period, now, papers)
        if mail is not None:
            outbox.enqueue(
                conn,
                kind="digest",
                to_addr=sub.email,
                subject=mail.subject,
                text_body=mail.text,
                html_body=mail.html,
                headers=mail.headers,
                message_id=message_id(run_id, sub, ctx.public_url),
                now=now,
                subscription_id=sub.id,
                run_id=run_id,
            )
            mails += 1
    return mails


def plan_due(
    engine: Engine,
    as_of: datetime,
    ctx: Context,
    env: Environment,
    *,
    now: Callable[[], datetime] | None = None,
    embedder: Embedder | Callable[[], Embedder | None] | None = None,
    dry_run: bool = False,
    only: Sequence[Subscription] | None = None,
    batch: int = BATCH,
) -> PlanReport:
    """Plan every digest due at `as_of` (a past instant replays that moment: its papers, sent now). With
    `dry_run`, compose and render but write nothing: the report counts what would be planned and mailed,
    and its `previews` hold the mails. `now` is the wall clock (default: `as_of`): runs and outbox rows are
    stamped with it, and the mails' links count their lifetimes from it."""
    report = PlanReport()
    stamp = (now or (lambda: as_of))()
    with engine.connect() as conn:
        subscribers = list(only) if only is not None else sub_store.active_subscriptions(conn)
        wanted = [
            (s, d) for s in subscribers if (d := due(s.cadence, s.send_hour, s.weekly_day, s.timezone, as_of))
        ]
        done = store.planned(conn, [(s.id, d.period) for s, d in wanted])
    report.already = sum(1 for s, d in wanted if (s.id, d.period) in done)
    wanted = [(s, d) for s, d in wanted if (s.id, d.period) not in done]
    report.due = len(wanted)
    if not wanted:
        return report
    model = cast("Embedder", embedder).model if hasattr(embedder, "model") else ctx.model
    refreshed = (
        {s.id: s for s in embed_topics(engine, [s for s, _ in wanted], embedder, model)}
        if not dry_run
        else {}
    )
    pools: dict[tuple[datetime, datetime], Pool] = {}
    ranked: dict[tuple[datetime, datetime], RankPool] = {}  # the same papers, for the "For you" ranking
    pending: list[tuple[Subscription, Due, Mail | None, int]] = []
    for start in range(0, len(wanted), batch):
        chunk = wanted[start : start + batch]
        pending.clear()
        followed = digest_followed.gather(engine, chunk)  # what members follow into their digests
        for sub, d in chunk:
            sub = refreshed.get(sub.id, sub)
            key = (d.window_start, d.scheduled)
            if key not in pools:
                with engine.connect() as conn:
                    pools[key] = build_pool(conn, d, model)
            t = time.perf_counter()
            picks: list[tuple[int, str]] = []
            if sub.user_id is not None and pools[key].fresh:
                if key not in ranked:
                    ranked[key] = feed.pool_from(pools[key].fresh, pools[key].vectors)
                with engine.connect() as conn:
                    picks = feed.digest_picks(
                        conn, sub.user_id, model, ranked[key], d.scheduled, sub.max_papers
                    )
            digest = compose(sub, pools[key], picks, followed.get(sub.id, ()))
            report.compose_s += time.perf_counter() - t
            mail = None
            if digest.total:
                t = time.perf_counter()
                mail = render(env, digest, d, links_for(ctx, sub, stamp))
                report.render_s += time.perf_counter() - t
            pending.append((sub, d, mail, digest.total))
            if dry_run:
                report.previews.append((sub, mail))
        if dry_run:  # what writing would have done: a run each, a mail for each that has papers
            report.planned += len(pending)
            report.mails += sum(1 for _, _, mail, _ in pending if mail is not None)
            continue
        t = time.perf_counter()
        try:
            with engine.begin() as conn:
                report.mails += _write(conn, pending, ctx, stamp)
            report.planned += len(pending)
        except IntegrityError:  # another planner took some of these meanwhile: one by one, skipping those
            for one in pending:
                try:
                    with engine.begin() as conn:
                        report.mails += _write(conn, [one], ctx, stamp)
                    report.planned += 1
                except IntegrityError:
                    report.already += 1
        report.write_s += time.perf_counter() - t
    report.empty = report.planned - report.mails
    return report


def preview(
    engine: Engine,
    sub: Subscription,
    as_of: datetime,
    ctx: Context,
    env: Environment,
    embedder: Embedder | None = None,
    now: datetime | None = None,
) -> tuple[Due | None, Mail | None]:
    """The digest `sub` would get for the period at `as_of` (due or not yet), written nowhere; its links
    are made at `now` (the wall clock; default `as_of`)."""
    d = due(sub.cadence, sub.send_hour, sub.weekly_day, sub.timezone, as_of)
    if d is None:
        return None, None
    model = embedder.model if embedder is not None else ctx.model
    sub = embed_topics(engine, [sub], embedder, model)[0]
    with engine.connect() as conn:
        pool = build_pool(conn, d, model)
    digest = compose(sub, pool, (), digest_followed.gather(engine, [(sub, d)]).get(sub.id, ()))
    if not digest.total:
        return d, None
    return d, render(env, digest, d, links_for(ctx, sub, now or as_of))
