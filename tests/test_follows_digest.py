"""The digest takes a member's follows (issue 14, part 3), on SQLite and PostgreSQL: a followed author's new
papers under "New from …", what a followed member upvoted or submitted in the period and what a followed
organization featured in it, each in a section that says where it came from. A follow kept out of the digest,
and what fell outside the period, stay out. Checked in the mail as planned."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine

from paperboy.digest.compose import Followed, Pool, compose
from paperboy.digest.plan import Context, plan_due
from paperboy.models import Featuring, Paper, Record, StoredPaper, Submitter, Subscription
from paperboy.store import follows as store
from paperboy.store import subscriptions as sub_store
from paperboy.store import users as user_store
from paperboy.store import votes as vote_store
from paperboy.store.papers import upsert_records
from paperboy.templating import make_environment

CTX = Context(
    site_name="Lab", public_url="https://papers.example.org", sender="Lab <p@example.org>", key=b"k" * 32
)
FRIDAY = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # the digest at 08:00 UTC covers Thu 08:00 - Fri 08:00
THURSDAY = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
OLD = THURSDAY - timedelta(days=40)


def _paper(n: int, title: str, published: datetime, authors: tuple[str, ...] = ("A. Nyone",)) -> Paper:
    return Paper(
        arxiv_id=f"2611.{n:05d}",
        title=title,
        abstract=f"{title}: a study.",
        authors=authors,
        published_at=published,
    )


def _member(conn: object, name: str) -> int:
    user = user_store.insert_user(
        conn,  # type: ignore[arg-type]
        username=name,
        email=f"{name}@example.org",
        password_hash="x",
        is_admin=False,
        now=OLD,
    )
    assert user is not None
    return user.id


def test_the_digest_mail_holds_followed_authors_members_and_organizations(engine: Engine) -> None:
    with engine.begin() as conn:
        ada, bob, eve = _member(conn, "ada"), _member(conn, "bob"), _member(conn, "eve")
        upsert_records(
            conn,
            [
                Record(_paper(1, "Hopper's new compiler", THURSDAY, ("Grace Hopper",))),
                Record(_paper(2, "An old paper bob upvoted", OLD)),
                Record(
                    _paper(3, "A lab's featured result", OLD),
                    Featuring(
                        "2611.00003",
                        date(2026, 11, 27),
                        "huggingface",
                        organization="Deep Lab",
                        organization_name="DeepLab",
                    ),
                ),
                Record(
                    _paper(4, "What bob submitted", OLD),
                    Featuring(
                        "2611.00004",
                        date(2026, 11, 26),
                        "member",
                        THURSDAY,
                        Submitter("bob", None, None, bob),
                    ),
                ),
                Record(
                    _paper(5, "A lab's old result", OLD),
                    Featuring(
                        "2611.00005",
                        date(2026, 10, 1),
                        "huggingface",
                        organization="Deep Lab",
                        organization_name="deeplab",
                    ),
                ),
                Record(_paper(6, "Upvoted by bob long ago", OLD)),
                Record(_paper(7, "Upvoted by eve", OLD)),
                Record(_paper(8, "Hopper's old paper", OLD, ("Grace Hopper",))),
                # what is trending fills its third of the digest, so followed papers show in their sections
                *(
                    Record(
                        _paper(30 + n, f"Hot {n}", OLD),
                        Featuring(f"2611.{30 + n:05d}", date(2026, 11, 27), "huggingface", upvotes=100 + n),
                    )
                    for n in range(7)
                ),
            ],
            OLD,
        )
        vote_store.add_vote(conn, bob, "2611.00002", THURSDAY + timedelta(hours=2))
        vote_store.add_vote(conn, bob, "2611.00006", OLD)
        vote_store.add_vote(conn, eve, "2611.00007", THURSDAY + timedelta(hours=3))
        sub = sub_store.insert_subscription(conn, email="ada@example.org", now=OLD)
        sub_store.set_status(conn, sub.id, "active", OLD)
        sub_store.link_user(conn, sub.id, ada)
        sub_store.update_preferences(
            conn,
            sub.id,
            cadence="daily",
            send_hour=8,
            weekly_day=0,
            timezone="UTC",
            max_papers=20,
            categories=[],
            authors=[],
            exclude=[],
        )
        store.add(conn, ada, "author", "grace hopper", "Grace Hopper", OLD, cap=500)
        store.add(conn, ada, "member", str(bob), "bob", OLD, cap=500, target_user_id=bob)
        store.add(conn, ada, "org", "deeplab", "Deep Lab", OLD, cap=500)
        store.add(conn, ada, "member", str(eve), "eve", OLD, cap=500, target_user_id=eve, in_digest=False)
        subscriber = sub_store.get(conn, sub.id)
    assert subscriber is not None and subscriber.user_id == ada

    report = plan_due(engine, FRIDAY, CTX, make_environment(), dry_run=True, only=[subscriber])
    [(_, mail)] = report.previews
    assert mail is not None
    text = mail.text
    for wanted in (
        "Upvoted or submitted by @bob",
        "An old paper bob upvoted",
        "What bob submitted",
        "Featured by Deep Lab",
        "A lab's featured result",
        "Hopper's new compiler",
    ):
        assert wanted in text, wanted
    assert "New from Grace Hopper" in text or "For you" in text  # the "For you" section may take it first
    for unwanted in ("Upvoted by eve", "Upvoted by bob long ago", "A lab's old result", "Hopper's old paper"):
        assert unwanted not in text, unwanted
    assert "Featured by Deep Lab" in mail.html and "@bob" in mail.html


def test_compose_shares_the_budget_with_followed_sources_and_honours_excluded_words() -> None:
    sub = Subscription(1, "ada@example.org", "active", FRIDAY, user_id=1, max_papers=4, exclude=("medical",))
    fresh = [StoredPaper(_paper(n, f"Fresh {n}", THURSDAY, ("Grace Hopper",))) for n in range(1, 6)]
    lab = tuple(StoredPaper(_paper(n, f"Lab {n}", OLD)) for n in range(10, 15))
    medical = StoredPaper(_paper(20, "A medical result", OLD))
    pool = Pool([], fresh)
    digest = compose(
        sub,
        pool,
        (),
        [
            Followed("author", "grace  HOPPER"),
            Followed("org", "Deep Lab", (medical, *lab)),
            Followed("member", "bob"),
        ],
    )
    assert [(s.kind, s.title, len(s.items)) for s in digest.sections] == [
        ("author", "grace  HOPPER", 2),
        ("org", "Deep Lab", 2),
    ]
    assert "A medical result" not in [i.paper.title for i in digest.papers]
    # an author both in the subscription's own list and followed appears once
    both = compose(
        Subscription(1, "a@b.org", "active", FRIDAY, authors=("Grace Hopper",)),
        pool,
        (),
        [Followed("author", "grace hopper")],
    )
    assert [s.title for s in both.sections] == ["Grace Hopper"]
