"""Screenshots of the main pages at desktop and phone widths, and of a rendered digest mail (its HTML part),
into docs/screenshots/.

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Starts the real app (uvicorn in a thread, on a free port) over a temporary SQLite database loaded with demo
data: the bundled demo papers (paperboy/demo/, featured on the demo "today") and, when ../shared/data is
there, real Hugging Face daily lists and an arXiv snapshot excerpt (for a paper page with formulas).
Drives the Debian chromium (`apt-get install chromium`) through Playwright; no `playwright install`.
"""

from __future__ import annotations

import argparse
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
def serve(engine: Engine, now: datetime) -> Iterator[str]:
    """The app on a free local port, in a thread; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(engine, site=Site(name="paperboy", public_url=base, trending_days=7), clock=lambda: now)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)

    if not Path(args.chromium).exists():
        print(f"{args.chromium} not found: apt-get install -y chromium", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
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
