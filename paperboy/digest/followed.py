"""What a member's digest takes from their follows (issue 14): for each subscriber with an account, the
follows that go into the digest (`in_digest`), as `compose.Followed` — an author by name (matched among the
period's new papers by `compose`), a followed member with what they upvoted or submitted in the period, an
organization with what it featured in it. Gathered in a few queries for a whole batch of subscribers; the
composition stays pure."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from paperboy.digest.compose import Followed
from paperboy.digest.schedule import Due
from paperboy.models import StoredPaper, Subscription
from paperboy.store import follows as store
from paperboy.store import papers as paper_store

PER_SOURCE = 50  # papers read per followed member or organization and period: more than a digest shows


def gather(engine: Engine, due: Sequence[tuple[Subscription, Due]]) -> dict[int, list[Followed]]:
    """By subscription id: what each subscriber follows into their digest, with the period's papers."""
    members = [(s, d) for s, d in due if s.user_id is not None]
    if not members:
        return {}
    out: dict[int, list[Followed]] = {}
    with engine.connect() as conn:
        mine = store.digest_follows(conn, [s.user_id for s, _ in members if s.user_id is not None])
        if not mine:
            return {}
        windows: dict[tuple[object, object], list[tuple[Subscription, Due]]] = {}
        for s, d in members:
            if s.user_id in mine:
                windows.setdefault((d.window_start, d.scheduled), []).append((s, d))
        for group in windows.values():
            d = group[0][1]
            follows = [f for s, _ in group for f in mine[s.user_id or 0]]
            member_ids = sorted(
                {f.target_user_id for f in follows if f.kind == "member" and f.target_user_id}
            )
            slugs = sorted({f.target_key for f in follows if f.kind == "org"})
            brought: dict[tuple[str, str], list[str]] = {}
            activity = store.member_activity(
                conn, member_ids, PER_SOURCE * len(member_ids), since=d.window_start, until=d.scheduled
            )
            activity += store.org_activity(
                conn, slugs, PER_SOURCE * len(slugs), since=d.window_start.date(), until=d.scheduled.date()
            )
            activity.sort(key=lambda a: (a.at, a.arxiv_id), reverse=True)
            for a in activity:
                ids = brought.setdefault((a.kind, a.target_key), [])
                if a.arxiv_id not in ids and len(ids) < PER_SOURCE:
                    ids.append(a.arxiv_id)
            found = paper_store.get_papers(conn, [i for ids in brought.values() for i in ids])
            names = store.usernames(conn, member_ids)  # disabled accounts left out
            for s, _ in group:
                items: list[Followed] = []
                for f in mine[s.user_id or 0]:
                    if f.kind == "author":
                        items.append(Followed("author", f.target_name))
                        continue
                    if f.kind == "member" and (
                        f.target_user_id not in names or f.target_user_id == s.user_id
                    ):
                        continue  # gone, disabled, or themselves
                    papers: tuple[StoredPaper, ...] = tuple(
                        found[i] for i in brought.get((f.kind, f.target_key), []) if i in found
                    )
                    if not papers:
                        continue
                    name = (
                        names.get(f.target_user_id or 0, f.target_name)
                        if f.kind == "member"
                        else f.target_name
                    )
                    items.append(Followed(f.kind, name, papers))
                out[s.id] = items
    return out
