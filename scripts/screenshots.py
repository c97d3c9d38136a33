"""Screenshots of the main pages at desktop and phone widths, and of a rendered digest mail (its HTML part),
into docs/screenshots/.

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

    python scripts/screenshots.py --only feed   # just the For you, collection and following pages

Starts the real app (uvicorn in a thread, on a free port) over a temporary SQLite database loaded with demo
data: the bundled demo papers (paperboy/demo/, featured on the demo "today") and, when ../shared/data is
there, real Hugging Face daily lists and an arXiv snapshot excerpt (for a paper page with formulas).
The For you, collection and following pages need ../shared/data: a second hub holds the newest arXiv cs
papers of its daily-listing corpus with their precomputed MiniLM vectors, and a member who upvoted three
video-generation papers, follows an author and another member, and keeps a public collection.
Drives the Debian chromium (`apt-get install chromium`) through Playwright; no `playwright install`.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from playwright.sync_api import ViewportSize, sync_playwright
from sqlalchemy.engine import Engine

from paperboy import jobs
from paperboy.db import make_engine, upgrade
from paperboy.web.app import create_app
from paperboy.web.deps import Site

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_demo(engine: Engine, now: datetime) -> None:
    """The bundled demo papers (featured on `now`'s day), plus the shared fixtures when they are there:
    real Hugging Face daily lists (submitters, code, AI summaries) and an arXiv snapshot excerpt."""
    clock = lambda: now  # noqa: E731
    jobs.load_demo(engine, clock)
    for path in sorted((SHARED / "hf_daily_papers" / "fixtures").glob("daily_papers_*.json")):
        jobs.ingest_hf_file(engine, path, clock)
    snapshot = SHARED / "arxiv_metadata" / "kaggle_snapshot_head.jsonl"
    if snapshot.is_file():
        jobs.ingest_snapshot(engine, snapshot, clock)


@contextmanager
def serve(engine: Engine, now: datetime, **app_options: Any) -> Iterator[str]:
    """The app on a free local port, in a thread (`app_options` go to create_app); yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        engine, site=Site(name="paperboy", public_url=base, trending_days=7), clock=lambda: now, **app_options
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def digest_html(engine: Engine, now: datetime, base: str) -> str:
    """The HTML part of the weekly digest a subscriber with two topics would get at `now`."""
    from paperboy.digest.plan import Context, preview
    from paperboy.store import subscriptions as sub_store
    from paperboy.templating import make_environment

    with engine.begin() as conn:
        sub = sub_store.insert_subscription(conn, email="reader@example.org", now=now)
        sub_store.set_status(conn, sub.id, "active", now)
        sub_store.update_preferences(
            conn,
            sub.id,
            cadence="weekly",
            send_hour=8,
            weekly_day=now.weekday(),
            timezone="UTC",
            max_papers=8,
            categories=[],
            authors=[],
            exclude=[],
        )
        for topic in ("video generation", "reinforcement learning -robotics"):
            sub_store.add_topic(conn, sub.id, topic, source="topic", now=now)
        found = sub_store.get(conn, sub.id)
    assert found is not None  # noqa: S101 (a developer's script; read back what it wrote)
    ctx = Context("paperboy", base, "paperboy <papers@example.org>", b"screenshot-key" * 3)
    _due, mail = preview(engine, found, now, ctx, make_environment())
    if mail is None:
        raise RuntimeError("the demo data gives an empty digest")
    return mail.html


def member_shots(browser: Any, base: str, paper: str, out: Path) -> None:
    """A member's pages: sign up (the hub's first member is its admin), upvote and discuss a paper, then
    the paper's discussion, the settings page with an API token, the moderation page and the profile."""
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    tab.goto(base + "/signup")
    tab.screenshot(path=str(out / "signup-desktop.png"))
    tab.fill("#f-username", "ada")
    tab.fill("#f-email", "ada@example.org")
    tab.fill("#f-password", "a long enough password")
    tab.get_by_role("button", name="Create account").click()
    tab.wait_for_url(base + "/papers")
    tab.goto(base + paper)
    tab.locator(".paper-head button.votes").click()
    tab.wait_for_selector(".paper-head button.votes.voted")
    tab.fill("#new-body", "Strong ablations. The **long-context** numbers in Table 3 are worth a look.")
    tab.get_by_role("button", name="Comment").click()
    tab.wait_for_selector("#comments strong")
    tab.locator("#comments").scroll_into_view_if_needed()
    tab.screenshot(path=str(out / "paper-discussion-desktop.png"))
    tab.goto(base + "/settings")
    tab.fill("#f-name", "my reading bot")
    tab.get_by_role("button", name="Create token").click()
    tab.wait_for_selector("#new-token")
    tab.screenshot(path=str(out / "settings-desktop.png"), full_page=True)
    tab.goto(base + "/admin")
    tab.screenshot(path=str(out / "admin-desktop.png"), full_page=True)
    tab.goto(base + "/u/ada")
    tab.screenshot(path=str(out / "profile-desktop.png"))
    for name in ("signup", "paper-discussion", "settings", "admin", "profile"):
        target = out / f"{name}-desktop.png"
        print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
    context.close()


# --- For you, a collection and the following page (issue 14), over real papers with their vectors ---------

LISTING = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
VECTORS = SHARED / "embeddings" / "minilm_arxiv_cs_f16.npy"
VECTOR_IDS = SHARED / "embeddings" / "minilm_arxiv_cs_ids.txt"
FEED_NOW = datetime(2026, 7, 2, 10, 0, tzinfo=UTC)  # the morning after the corpus's newest listing day
FEED_PAPERS = 3000  # the newest of the listing corpus: its last two weeks and a bit
UPVOTED = ("2606.15534", "2606.18478", "2606.22370")  # three video-generation papers (June 16-23)
FOLLOWED = "Zian Wang"  # an author of one of the upvoted papers, with one more paper in those weeks
KEPT = (  # a public collection, with the member's notes on two of its papers
    ("2606.20799", "Multi-shot consistency from entity grounding: compare with UnityShots below."),
    ("2606.21661", None),
    ("2606.27964", "Autoregressive and fast; check which camera controls it supports."),
    ("2606.26795", None),
)
OTHER_UPVOTES = ("2606.20774", "2606.30811")  # a second member's, whom the first one follows


def load_feed_hub(engine: Engine, tmp: Path, clock: Any) -> None:
    """The newest FEED_PAPERS papers of the listing corpus (through the snapshot ingest), and their MiniLM
    vectors from ../shared/data/embeddings under the app's default model name."""
    from paperboy.search import vector_import
    from paperboy.search.embed import DEFAULT_MODEL

    with gzip.open(LISTING, "rt", encoding="utf-8") as f:
        newest = collections.deque(f, maxlen=FEED_PAPERS)
    excerpt = tmp / "listing-newest.jsonl"
    excerpt.write_text("".join(newest), encoding="utf-8")
    jobs.ingest_snapshot(engine, excerpt, clock)
    all_ids = VECTOR_IDS.read_text(encoding="utf-8").split()  # row n of the matrix is line n
    row_of = {arxiv_id: n for n, arxiv_id in enumerate(all_ids)}
    rows = sorted({row_of[i] for i in (json.loads(line)["id"] for line in newest) if i in row_of})
    matrix = np.load(VECTORS, mmap_mode="r")
    ids = [all_ids[n] for n in rows]
    vector_import.import_vectors(engine, DEFAULT_MODEL, np.asarray(matrix[rows]), ids, clock)


def _sign_up(tab: Any, base: str, username: str) -> None:
    tab.goto(base + "/signup")
    tab.fill("#f-username", username)
    tab.fill("#f-email", f"{username}@example.org")
    tab.fill("#f-password", "a long enough password")
    tab.get_by_role("button", name="Create account").click()
    tab.wait_for_url(base + "/papers")


def _upvote(tab: Any, base: str, arxiv_id: str) -> None:
    tab.goto(f"{base}/papers/{arxiv_id}")
    tab.locator(".paper-head button.votes").click()
    tab.wait_for_selector(".paper-head button.votes.voted")


def _follow(tab: Any, url: str) -> None:
    tab.goto(url)
    tab.locator("#follow button.btn-follow").click()
    tab.wait_for_selector('#follow button.btn-follow[aria-pressed="true"]')


def _shoot(browser: Any, url: str, target: Path, label: str, state: Any = None, full: bool = False) -> None:
    context = browser.new_context(
        viewport=DESKTOP if label == "desktop" else PHONE,
        device_scale_factor=1 if label == "desktop" else 2,
        storage_state=state,
    )
    tab = context.new_page()
    tab.goto(url, wait_until="networkidle")
    tab.screenshot(path=str(target), full_page=full)
    print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
    context.close()


def feed_shots(browser: Any, out: Path) -> None:
    """for-you, collection and following, desktop and phone: a member ("ada") who upvoted three
    video-generation papers and follows an author and a member ("grace"), over real papers and vectors."""
    if not (LISTING.is_file() and VECTORS.is_file() and VECTOR_IDS.is_file()):
        print(
            f"skipped the For you / collection / following screenshots: {SHARED} has no corpus with vectors"
        )
        return
    from paperboy.community import collections as collection_ops
    from paperboy.search.embed import DEFAULT_MODEL
    from paperboy.search.hybrid import Searcher
    from paperboy.search.vector import VectorIndex
    from paperboy.store import users as user_store

    clock = lambda: FEED_NOW  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'feed.sqlite3'}")
        upgrade(engine)
        load_feed_hub(engine, Path(tmp), clock)
        index = VectorIndex.create(Path(tmp) / "vectors.usearch", 384, DEFAULT_MODEL)  # names the model
        options = {"searcher": Searcher(None, index), "secret_key": b"screenshot-key" * 3}
        with serve(engine, FEED_NOW, **options) as base:
            ada = browser.new_context(viewport=DESKTOP)
            tab = ada.new_page()
            _sign_up(tab, base, "ada")
            grace = browser.new_context(viewport=DESKTOP)
            other = grace.new_page()
            _sign_up(other, base, "grace")
            for arxiv_id in OTHER_UPVOTES:
                _upvote(other, base, arxiv_id)
            grace.close()
            for arxiv_id in UPVOTED:
                _upvote(tab, base, arxiv_id)
            _follow(tab, f"{base}/authors/{FOLLOWED.replace(' ', '%20')}")
            _follow(tab, f"{base}/u/grace")
            with engine.begin() as conn:
                user = user_store.get_user_by_name(conn, "ada")
                if user is None:
                    raise RuntimeError("the member signed up in the browser is not in the database")
                kept = collection_ops.create_collection(
                    conn,
                    user,
                    "Long and consistent video generation",
                    FEED_NOW,
                    description="Multi-shot, long and camera-controlled video generation from June 2026.",
                    public=True,
                )
                for arxiv_id, note in KEPT:
                    collection_ops.add_paper(conn, user, kept.id, arxiv_id, FEED_NOW, note=note)
            state = ada.storage_state()

            # For you on a desktop, just after a Save and a "Not interested" (the line with Undo)
            tab.goto(base + "/papers/for-you")
            cards = tab.locator("#cards > li.card")
            cards.nth(0).locator(".save button.btn-save").click()
            tab.wait_for_selector("#cards > li.card >> nth=0 >> .btn-save.saved")
            cards.nth(2).get_by_role("button", name="Not interested").click()
            tab.wait_for_selector("#cards > li.card-hidden")
            tab.mouse.move(DESKTOP["width"] - 2, DESKTOP["height"] - 2)  # no hover on the card under it
            tab.evaluate("window.scrollTo(0, 0)")
            target = out / "for-you-desktop.png"
            tab.screenshot(path=str(target))
            print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
            ada.close()
            _shoot(browser, base + "/papers/for-you", out / "for-you-phone.png", "phone", state)
            collection = f"{base}/u/ada/c/{kept.slug}"
            for label in ("desktop", "phone"):
                _shoot(browser, collection, out / f"collection-{label}.png", label)  # as a visitor sees it
                _shoot(browser, base + "/following", out / f"following-{label}.png", label, state)
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--only",
        choices=("all", "feed"),
        default="all",
        help="feed: just the For you, collection and following pages",
    )
    args = parser.parse_args(argv)

    if not Path(args.chromium).exists():
        print(f"{args.chromium} not found: apt-get install -y chromium", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "feed":
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            try:
                feed_shots(browser, args.out)
            finally:
                browser.close()
        return 0
    now = datetime(2026, 8, 13, 18, 0, tzinfo=UTC)  # the day after the newest HF fixture
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'demo.sqlite3'}")
        upgrade(engine)
        load_demo(engine, now)
        with serve(engine, now) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=DESKTOP)
                page.goto(base + "/papers/date/2026-08-12")
                first = page.locator(".card-title a").first.get_attribute("href") or "/papers"
                both = ("desktop", "phone")
                shots = [
                    ("papers", "/papers", "light", both),
                    ("papers-day", "/papers/date/2026-08-12", "light", both),
                    ("paper", first, "light", both),
                    ("paper-math", "/papers/0704.0013", "light", ("desktop",)),
                    ("papers-dark", "/papers/date/2026-08-12", "dark", ("desktop",)),
                    ("paper-dark", first, "dark", ("phone",)),
                    ("papers-weekend", "/papers/date/2026-08-08", "light", ("phone",)),
                    ("search", "/papers?q=video+generation", "light", ("desktop",)),
                ]
                mail = Path(tmp) / "digest.html"
                mail.write_text(digest_html(engine, now, base))
                for label in both:
                    context = browser.new_context(
                        viewport=DESKTOP if label == "desktop" else PHONE,
                        device_scale_factor=1 if label == "desktop" else 2,
                        java_script_enabled=False,  # as a mail client shows it: no script, no images
                    )
                    tab = context.new_page()
                    tab.goto(mail.as_uri())
                    target = args.out / f"digest-{label}.png"
                    tab.screenshot(path=str(target), full_page=label == "desktop")
                    print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
                    context.close()
                member_shots(browser, base, first, args.out)
                feed_shots(browser, args.out)
                for name, path, scheme, widths in shots:
                    for label in widths:
                        context = browser.new_context(
                            viewport=DESKTOP if label == "desktop" else PHONE,
                            device_scale_factor=1 if label == "desktop" else 2,
                            color_scheme=scheme,  # type: ignore[arg-type]
                        )
                        tab = context.new_page()
                        tab.goto(base + path, wait_until="networkidle")
                        target = args.out / f"{name}-{label}.png"
                        tab.screenshot(path=str(target))
                        print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
                        context.close()
            finally:
                browser.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
