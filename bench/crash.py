"""Nothing acknowledged is lost: API writers against a real `paperboy serve`, SIGKILLed again and again.

    python bench/crash.py                                    # 20 writers, 5 kills over 60 s of writing
    python bench/crash.py --kills 10 --duration 300          # longer
    python bench/crash.py --database-url postgresql+psycopg://…/paperboy_crash   # on PostgreSQL

Prepares a database (SQLite file in a temporary data dir, or the given PostgreSQL database, which must be
empty or hold only an earlier run of this bench's papers and members): the bundled demo papers and one
member with an API token per writer. Then starts `paperboy serve --no-sync` on a loopback port as a child
process and runs the writers in threads, each as its own member, one request at a time:

- upvotes: `POST` / `DELETE /api/papers/{id}/upvote` on a few shared papers (the answer's `upvoted`);
- comments: `POST /api/papers/{id}/comments` with a unique body (the answer's `id`);
- subscriptions: `POST /subscribe` with a unique address and the form's CSRF token (the "check your inbox"
  page: a pending subscription, its confirmation and the confirmation mail queued in the outbox).

The writing time (`--duration`) is cut at `--kills` random moments; at each the server gets SIGKILL and is
started again on the same data dir and port. A writer whose request gets no answer (connection refused or
reset while the server is down) sends the same request again until one comes. When the time is up the
writers finish their last request and the server is killed once more (SIGKILL) before the database is opened
directly and compared with what the server acknowledged:

- every acknowledged comment is there, with its author, paper and body;
- every acknowledged subscription request left its subscription, confirmation and outbox mail;
- each (member, paper)'s upvote is the one the member's last acknowledged vote request answered, or, where
  requests after it got no answer, one of the states those requests asked for (`votes_exact` counts the pairs
  that allowed one state only; `lost_votes` those whose state is none of the allowed ones);
- SQLite: `PRAGMA integrity_check` says ok and `PRAGMA foreign_key_check` finds nothing.

Prints one JSON line: `acked` (2xx answers), `lost` (acknowledged writes missing or changed), `integrity`,
the counts per kind, `errors` (answers that were neither 2xx nor a retry), `retries`, `duplicate_comments`
(comments stored twice because the answer to the first attempt was lost in a kill: not a loss), and restart
timings. Exits 1 when anything acknowledged was lost or an error occurred.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from argon2 import PasswordHasher  # noqa: E402

from paperboy import accounts, db, jobs  # noqa: E402
from paperboy.db.schema import comments, confirmations, outbox, papers, subscriptions, votes  # noqa: E402

PAPERS = 8  # the writers' votes and comments land on this many papers (shared, so writers collide)
KINDS = ("vote", "comment", "subscribe")
WEIGHTS = (6, 3, 1)
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
HIGH = "1000000 per minute"  # the writers are not what rate limits are for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server ---------------------------------------------------------------------------------------------


class Server:
    """`paperboy serve --no-sync` as a child process: `start()` waits until it answers, `kill()` SIGKILLs."""

    def __init__(self, data_dir: Path, port: int, database_url: str | None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PAPERBOY_DATA_DIR": str(data_dir),
            "PAPERBOY_EMBEDDING_MODEL": "/no/such/model",  # keyword search only: starts in seconds
            "PAPERBOY_DIGESTS": "false",
            "PAPERBOY_SECRET_KEY": "crash-bench-" + "k" * 32,  # CSRF tokens stay valid across restarts
            "PAPERBOY_RATE_VOTE": HIGH,
            "PAPERBOY_RATE_COMMENT": HIGH,
            "PAPERBOY_RATE_SUBSCRIBE": HIGH,
        }
        self.env.pop("PAPERBOY_DATABASE_URL", None)
        if database_url:
            self.env["PAPERBOY_DATABASE_URL"] = database_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start_s: list[float] = []

    def start(self, timeout: float = 120) -> None:
        log = (self.data_dir / f"server-{self.starts}.log").open("wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paperboy", "serve", "--port", str(self.port), "--no-sync"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.data_dir,
        )
        log.close()
        self.starts += 1
        with httpx.Client(timeout=5) as probe:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"paperboy serve exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"paperboy serve did not answer in {timeout} s:\n{self.log_tail()}")
                try:
                    if probe.get(self.url + "/api/daily_papers?limit=1").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.start_s.append(time.monotonic() - t0)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir / f"server-{self.starts - 1}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- preparing the database ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    user_id: int
    username: str
    token: str


def prepare(url: str, writers: int) -> tuple[list[Member], list[str]]:
    """Migrate, load the demo papers and make one member (with an API token) per writer."""
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        now = datetime.now(UTC)
        with engine.connect() as conn:
            have = conn.execute(sa.select(sa.func.count()).select_from(papers)).scalar_one()
        if not have:
            jobs.load_demo(engine, lambda: now)
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # nobody signs in with it
        run = uuid.uuid4().hex[:6]
        made: list[Member] = []
        with engine.begin() as conn:
            for n in range(writers):
                name = f"crash{run}w{n:02d}"
                user = accounts.create_user(
                    conn,
                    hasher,
                    username=name,
                    email=f"{name}@crash.example.org",
                    password=uuid.uuid4().hex,
                    now=now,
                )
                made.append(Member(user.id, name, accounts.create_token(conn, user, "crash", now).secret))
        with engine.connect() as conn:
            ids = list(
                conn.execute(sa.select(papers.c.arxiv_id).order_by(papers.c.arxiv_id).limit(PAPERS)).scalars()
            )
    finally:
        engine.dispose()
    return made, ids


# --- the writers --------------------------------------------------------------------------------------------


@dataclass
class Op:
    """One write as the writer saw it: `outcome` is `acked` (2xx), `failed` (another status) or `unknown`
    (no answer before the writers were told to stop trying)."""

    kind: str
    arxiv_id: str | None
    want: Any  # vote: True/False; comment: the body; subscribe: the address
    outcome: str = "unknown"
    status: int | None = None
    answer: Any = None  # vote: `upvoted`; comment: the id
    attempts: int = 0


@dataclass
class Writer:
    member: Member
    rng: random.Random
    ops: list[Op] = field(default_factory=list)
    retries: int = 0
    timeouts: int = 0
    csrf: str | None = None


def _send(client: httpx.Client, w: Writer, op: Op, give_up: threading.Event) -> httpx.Response | None:
    """Send until an answer comes; None when `give_up` is set first."""
    auth = {"Authorization": f"Bearer {w.member.token}"}
    while not give_up.is_set():
        op.attempts += 1
        try:
            if op.kind == "vote":
                method = "POST" if op.want else "DELETE"
                return client.request(method, f"/api/papers/{op.arxiv_id}/upvote", headers=auth)
            if op.kind == "comment":
                return client.post(
                    f"/api/papers/{op.arxiv_id}/comments", json={"body": op.want}, headers=auth
                )
            if w.csrf is None:
                form = client.get("/subscribe")
                found = _CSRF.search(form.text)
                if found is None:  # an error page: the op fails with its status
                    return form
                w.csrf = found.group(1)
            return client.post("/subscribe", data={"email": op.want, "csrf_token": w.csrf})
        except httpx.TimeoutException:
            w.timeouts += 1
        except httpx.TransportError:
            pass
        w.retries += 1
        time.sleep(0.05)
    return None


def write(
    w: Writer, base_url: str, papers_: list[str], stop: threading.Event, give_up: threading.Event
) -> None:
    """Write until `stop`; the request under way when it comes is still seen through (until `give_up`)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            kind = w.rng.choices(KINDS, WEIGHTS)[0]
            paper = w.rng.choice(papers_)
            if kind == "vote":
                op = Op("vote", paper, w.rng.random() < 0.6)
            elif kind == "comment":
                op = Op("comment", paper, f"crash test {w.member.username} #{n}: {uuid.uuid4().hex}")
            else:
                op = Op(
                    "subscribe", None, f"{w.member.username}-{n}-{uuid.uuid4().hex[:8]}@crash.example.org"
                )
            w.ops.append(op)
            response = _send(client, w, op, give_up)
            if response is None:
                break
            op.status = response.status_code
            if not 200 <= response.status_code < 300:
                op.outcome = "failed"
                op.answer = response.text[:300]
                continue
            op.outcome = "acked"
            if kind == "vote":
                op.answer = response.json()["upvoted"]
            elif kind == "comment":
                op.answer = response.json()["id"]


# --- checking -----------------------------------------------------------------------------------------------


def check(url: str, writers: list[Writer]) -> dict[str, Any]:
    """Compare the database with what was acknowledged."""
    engine = sa.create_engine(url)  # plain SQLAlchemy: the file (or database) as it is, nothing migrated
    out: dict[str, Any] = {"lost_examples": []}
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
                out["integrity"] = "ok" if rows == ["ok"] else "; ".join(map(str, rows))[:500]
                fks = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                out["foreign_key_check"] = "ok" if not fks else f"{len(fks)} violations"
            else:
                out["integrity"] = "n/a"  # PostgreSQL itself was not killed; only the app was
                out["foreign_key_check"] = "n/a"
            user_ids = [w.member.user_id for w in writers]
            voted = {
                (r.user_id, r.arxiv_id)
                for r in conn.execute(
                    sa.select(votes.c.user_id, votes.c.arxiv_id).where(votes.c.user_id.in_(user_ids))
                )
            }
            stored_comments = {
                r.id: r
                for r in conn.execute(
                    sa.select(comments.c.id, comments.c.user_id, comments.c.arxiv_id, comments.c.body).where(
                        comments.c.user_id.in_(user_ids)
                    )
                )
            }
            sent = [o.want for w in writers for o in w.ops if o.kind == "subscribe"]
            subs: dict[str, int] = {}
            confirmed: set[int] = set()
            mailed: set[str] = set()
            for chunk in range(0, len(sent), 500):
                part = sent[chunk : chunk + 500]
                subs.update(
                    (r.email, r.id)
                    for r in conn.execute(
                        sa.select(subscriptions.c.email, subscriptions.c.id).where(
                            subscriptions.c.email.in_(part)
                        )
                    )
                )
                mailed.update(
                    conn.execute(
                        sa.select(outbox.c.to_addr).where(
                            outbox.c.kind == "confirm", outbox.c.to_addr.in_(part)
                        )
                    ).scalars()
                )
            if subs:
                confirmed = set(
                    conn.execute(
                        sa.select(confirmations.c.subscription_id).where(
                            confirmations.c.subscription_id.in_(list(subs.values()))
                        )
                    ).scalars()
                )
    finally:
        engine.dispose()

    lost: Counter[str] = Counter()
    exact = pairs = 0

    def lose(kind: str, what: str) -> None:
        lost[kind] += 1
        if len(out["lost_examples"]) < 10:
            out["lost_examples"].append(what)

    for w in writers:
        uid = w.member.user_id
        # votes: per paper, the states the last requests allow
        allowed: dict[str, set[bool]] = {}
        for o in w.ops:
            if o.kind != "vote":
                continue
            assert o.arxiv_id is not None
            states = allowed.setdefault(o.arxiv_id, {False})  # a new member has voted for nothing
            if o.outcome == "acked":
                if o.answer != o.want:
                    lose("votes", f"{w.member.username} {o.arxiv_id}: asked {o.want}, answered {o.answer}")
                allowed[o.arxiv_id] = {bool(o.answer)}
            elif o.outcome == "unknown" or (o.status or 0) >= 500:
                states.add(bool(o.want))  # it may or may not have happened
        for paper, states in allowed.items():
            pairs += 1
            exact += len(states) == 1
            have = (uid, paper) in voted
            if have not in states:
                lose("votes", f"{w.member.username} {paper}: upvoted={have}, acknowledged {sorted(states)}")
        for o in w.ops:
            if o.outcome != "acked":
                continue
            if o.kind == "comment":
                row = stored_comments.get(o.answer)
                if row is None or row.body != o.want or row.user_id != uid or row.arxiv_id != o.arxiv_id:
                    lose(
                        "comments",
                        f"comment {o.answer} by {w.member.username}: {'changed' if row else 'missing'}",
                    )
            elif o.kind == "subscribe":
                sid = subs.get(o.want)
                if sid is None or sid not in confirmed or o.want not in mailed:
                    lose("subscriptions", f"{o.want}: subscription={sid} confirmation/mail missing")
    bodies = Counter(r.body for r in stored_comments.values())
    out.update(
        lost=sum(lost.values()),
        lost_votes=lost["votes"],
        lost_comments=lost["comments"],
        lost_subscriptions=lost["subscriptions"],
        vote_pairs=pairs,
        votes_exact=exact,
        duplicate_comments=sum(n - 1 for n in bodies.values() if n > 1),
    )
    return out


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class Run:
    summary: dict[str, Any]
    writers: list[Writer]
    url: str  # the database's


def run(
    *,
    writers: int = 20,
    kills: int = 5,
    duration: float = 60.0,
    seed: int = 20261205,
    database_url: str | None = None,
    data_dir: Path | None = None,
    log: Any = None,
) -> Run:
    """One run: the summary (what main prints), and what each writer sent and was answered."""
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    rng = random.Random(seed)
    own_dir = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="paperboy-crash-")) if data_dir is None else data_dir
    folder.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{folder / 'paperboy.sqlite3'}"
    members, paper_ids = prepare(url, writers)
    say(f"{len(members)} members, papers {paper_ids[:3]}…; data in {folder}")
    server = Server(folder, free_port(), database_url)
    stop, give_up = threading.Event(), threading.Event()
    team = [Writer(m, random.Random(rng.random())) for m in members]
    threads = [
        threading.Thread(target=write, args=(w, server.url, paper_ids, stop, give_up), daemon=True)
        for w in team
    ]
    cuts = sorted(rng.uniform(0, duration) for _ in range(kills))
    segments = [b - a for a, b in zip([0.0, *cuts], [*cuts, duration], strict=True)]
    t0 = time.monotonic()
    try:
        server.start()
        for t in threads:
            t.start()
        for n, seg in enumerate(segments):
            time.sleep(seg)
            if n < kills:
                done = sum(1 for w in team for o in w.ops if o.outcome == "acked")
                server.kill()
                say(f"kill {n + 1}/{kills} after {seg:.2f} s ({done} acknowledged so far)")
                server.start()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        give_up.set()
        for t in threads:
            t.join(timeout=30)
        wall = time.monotonic() - t0
    finally:
        give_up.set()
        stop.set()
        server.kill()  # the last stop is a SIGKILL too: what was acknowledged must be on disk already
    ops = [o for w in team for o in w.ops]
    acked = Counter(o.kind for o in ops if o.outcome == "acked")
    failed = [o for o in ops if o.outcome == "failed"]
    summary: dict[str, Any] = {
        "backend": sa.engine.make_url(url).get_backend_name(),
        "writers": writers,
        "kills": kills,
        "duration_s": duration,
        "wall_s": round(wall, 2),
        "requests": len(ops),
        "acked": sum(acked.values()),
        "acked_votes": acked["vote"],
        "acked_comments": acked["comment"],
        "acked_subscriptions": acked["subscribe"],
        "unanswered": sum(o.outcome == "unknown" for o in ops),
        "errors": len(failed),
        "error_examples": [f"{o.kind} {o.status}: {o.answer}" for o in failed[:5]],
        "retries": sum(w.retries for w in team),
        "timeouts": sum(w.timeouts for w in team),
        "starts": server.starts,
        "start_s_median": round(statistics.median(server.start_s), 2) if server.start_s else None,
        "acked_per_s": round(sum(acked.values()) / duration, 1) if duration else None,
    }
    summary.update(check(url, team))
    if own_dir and summary["lost"] == 0 and not failed:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        summary["data_dir"] = str(folder)
    return Run(summary, team, url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=20, help="API writers (threads), one member each")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs at random moments of the writing")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of writing (server up)")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--database-url", help="a PostgreSQL (or SQLite) URL; default a SQLite file")
    parser.add_argument("--data-dir", type=Path, help="where the server's files go (default: a temp dir)")
    args = parser.parse_args(argv)
    summary = run(
        writers=args.writers,
        kills=args.kills,
        duration=args.duration,
        seed=args.seed,
        database_url=args.database_url,
        data_dir=args.data_dir,
    ).summary
    print(json.dumps(summary), flush=True)
    return (
        0 if summary["lost"] == 0 and summary["errors"] == 0 and summary["integrity"] in ("ok", "n/a") else 1
    )


if __name__ == "__main__":
    sys.exit(main())
