"""A cluster on loopback, checked: PostgreSQL, Redis, three `paperboy web` and two `paperboy worker`.

    python bench/cluster.py                      # the 74,728 papers of ../shared/data, ~20 minutes
    python bench/cluster.py --n 5000             # the first 5,000 of them
    python bench/cluster.py --small              # the repo's 60-paper fixture, no model, ~1.5 minutes

Starts, in a temporary folder: PostgreSQL (pgserver; as root it runs the server as a `pgserver` system user),
redis-server on a free port (PAPERBOY_RATE_LIMIT_STORAGE), a real SMTP server (aiosmtpd) and a local HTTP
server answering Hugging Face's daily-papers API with a recorded response (tests/upstream.py). Loads the
corpus through the real ingest (`run_ingest`; one paper in four featured, listing days shifted so the newest
is yesterday), its precomputed vectors through `paperboy index import-vectors` (all but `--embed` papers,
left for the workers to embed), members with API tokens, then starts web nodes A, B, C (`paperboy web`, each
its own data folder and search replica) and checks, printing one JSON object:

1. `vote`: an upvote through A (its 200) is counted at once on B and C: read back right after, through their
   JSON API with another member's token and anonymously (a URL those nodes have not cached); an unvote
   through B likewise on A and C.
2. `signin_limit`: wrong passwords for one account spread over A, B, C (each from its own 127.0.0.N address,
   each form's CSRF token fetched from another node than the one posted to): how many are checked before
   the 429s, against the single-node limit (PAPERBOY_RATE_SIGNIN, 10).
3. `embedding` (not with --small): worker W1 alone, then W1 and W2 (PAPERBOY_EMBEDDING_THREADS=1 each):
   papers/s from the growth of the embeddings table, once each worker has finished a batch, from one
   stored batch until `--embed-batches` more (twice as many with two workers) are stored; the CPU seconds
   per abstract from the workers' /proc/PID/stat over the same span, and the ratio. This machine has
   `cores` cores, shared with whatever else runs: two one-thread workers can at most double.
4. `schedule`: with both workers up (PAPERBOY_HF_SYNC_CRON every few seconds), each Hugging Face slot is
   queued once and run once (jobs, their attempts, `ingest_runs`), and which worker took each; `digests`:
   subscribers made active in the database (weekly, due now), a digest round every few seconds
   (PAPERBOY_DIGEST_CRON): each mail arrives once (Message-IDs counted at the SMTP server).
5. `kill`: an open-loop client (reads and searches from bench/load.py's mix, signed-in upvotes and comments
   through the API, spread over the nodes) while web node A and the worker running a job are killed with
   SIGKILL: every acknowledged write (2xx) is in the database afterwards, the surviving nodes' errors and
   latency before and after, and the killed worker's job taken again by the other (after the 20 s
   heartbeat timeout) and finished.

--small is what tests/test_cluster.py runs (two web nodes, two workers, no embedding model).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # upstream.py: the recorded-response HTTP server

import load as bench_load  # noqa: E402  (bench/load.py: its read and search mix)
from clusterkit import (  # noqa: E402
    NPY,
    Cluster,
    Inbox,
    Member,
    Node,
    drop_vectors,
    import_vectors,
    load_corpus,
    log,
    make_members,
    make_subscribers,
    percentile,
    postgres,
    redis_server,
    request_pools,
    smtp_server,
    wait_for,
)

SHARED = REPO_ROOT.parent / "shared" / "data"
CORPUS = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
HF_RECORDED = SHARED / "hf_daily_papers" / "fixtures" / "daily_papers_2026-08-12.json"
SMALL_CORPUS = REPO_ROOT / "tests" / "fixtures" / "arxiv_listing_small.jsonl"
SMALL_HF = REPO_ROOT / "tests" / "fixtures" / "hf_daily_papers_small.json"
PAPERBOY = [sys.executable, "-m", "paperboy"]
EMBED_BATCH = 256  # paperboy.tasks.EMBED_BATCH_SIZE: papers per embedding job, stored in one go
SIGNIN_LIMIT = 10  # PAPERBOY_RATE_SIGNIN's default, "10 per 5 minutes": what one node allows alone


# ------------------------------------------------------------------------------------------------ the checks


def check_vote(web: list[Node], members: list[Member], paper: str) -> dict[str, Any]:
    """A vote through the first node, read back at once on the others (another member's token, and
    anonymously on a URL they have not served); an unvote through the second node, read on the rest."""
    import httpx

    voter, reader = members[0], members[1]
    bearer = lambda m: {"Authorization": f"Bearer {m.token}"}  # noqa: E731
    out: dict[str, Any] = {"paper": paper, "nodes": [n.name for n in web]}
    with httpx.Client(timeout=30) as c:
        before = c.get(f"{web[0].url}/api/papers/{paper}", headers=bearer(reader)).json()["upvotes"]
        r = c.post(f"{web[0].url}/api/papers/{paper}/upvote", headers=bearer(voter))
        acked = time.perf_counter()
        assert r.status_code == 200, r.text
        counted = r.json()["upvotes"]
        seen = {}
        for node in web[1:]:
            token_read = c.get(f"{node.url}/api/papers/{paper}", headers=bearer(reader)).json()["upvotes"]
            anonymous = c.get(f"{node.url}/api/papers/{paper}").json()["upvotes"]
            seen[node.name] = {"member": token_read, "anonymous": anonymous}
        read_ms = round((time.perf_counter() - acked) * 1000, 1)
        r = c.delete(f"{web[1].url}/api/papers/{paper}/upvote", headers=bearer(voter))
        assert r.status_code == 200, r.text
        uncounted = r.json()["upvotes"]
        seen_after = {
            node.name: c.get(f"{node.url}/api/papers/{paper}", headers=bearer(reader)).json()["upvotes"]
            for node in web
            if node is not web[1]
        }
    out.update(
        before=before,
        after_vote_on=web[0].name,
        counted=counted,
        seen_on_others=seen,
        read_back_ms=read_ms,
        after_unvote_on=web[1].name,
        uncounted=uncounted,
        seen_after_unvote=seen_after,
        ok=counted == before + 1
        and all(v["member"] == counted and v["anonymous"] == counted for v in seen.values())
        and uncounted == before
        and all(v == before for v in seen_after.values()),
    )
    return out


def check_signin_limit(web: list[Node], account: str, guesses: int = 30) -> dict[str, Any]:
    """Wrong passwords for one account, round-robin over the nodes, each from its own loopback address, each
    form's token taken from the node before the one posted to (one secret key signs them all)."""
    import re

    import httpx

    pattern = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
    codes = []
    by_node: dict[str, list[int]] = {n.name: [] for n in web}
    for i in range(guesses):
        node, other = web[i % len(web)], web[(i + 1) % len(web)]
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{20 + i}")
        with httpx.Client(transport=transport, timeout=30) as c:
            found = pattern.search(c.get(other.url + "/login").text)
            assert found, "no csrf_token on /login"
            r = c.post(
                node.url + "/login",
                data={"username": account, "password": f"wrong guess {i}", "csrf_token": found.group(1)},
                follow_redirects=False,
            )
        codes.append(r.status_code)
        by_node[node.name].append(r.status_code)
    checked = codes.count(400)
    return {
        "guesses": guesses,
        "nodes": len(web),
        "single_node_limit": SIGNIN_LIMIT,
        "checked_before_429": checked,
        "first_429_at": codes.index(429) + 1 if 429 in codes else None,
        "codes": "".join("x" if c == 400 else ("L" if c == 429 else f"[{c}]") for c in codes),
        "by_node": {k: Counter(v) for k, v in by_node.items()},
        "ok": codes == [400] * SIGNIN_LIMIT + [429] * (guesses - SIGNIN_LIMIT),
    }


class JobWatcher:
    """Samples the queue's running jobs every 0.2 s: which worker ran which job (procrastinate forgets a
    worker's id when the worker leaves), and what a worker holds at a given moment."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.ran_by: dict[int, set[int]] = {}
        self.task_of: dict[int, str] = {}
        self.seen: dict[int, tuple[float, float]] = {}  # job: first and last time.monotonic() seen running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="job-watcher")

    def doing(self) -> list[tuple[int, str, int | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, task_name, worker_id FROM procrastinate_jobs WHERE status = 'doing'")
            )
            return [(int(r[0]), str(r[1]), None if r[2] is None else int(r[2])) for r in rows]

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                now = time.monotonic()
                for job, task, worker in self.doing():
                    self.task_of[job] = task
                    self.seen[job] = (self.seen.get(job, (now, now))[0], now)
                    if worker is not None:
                        self.ran_by.setdefault(job, set()).add(worker)
            self._stop.wait(0.2)

    def ran_on(self, worker: int | None, since: float, until: float) -> list[tuple[str, float]]:
        """(task, seconds it was seen running) of the jobs `worker` ran at some time in [since, until]."""
        return [
            (self.task_of[job], round(last - first, 1))
            for job, (first, last) in sorted(self.seen.items())
            if worker in self.ran_by.get(job, set()) and last >= since and first <= until
        ]

    def time_on_other_jobs(
        self, workers: set[int | None], task: str, since: float, until: float
    ) -> dict[str, float]:
        """Seconds `workers` were seen running jobs of other tasks than `task` within [since, until]."""
        out: dict[str, float] = {}
        for job, (first, last) in self.seen.items():
            name = self.task_of[job]
            if name == task or not self.ran_by.get(job, set()) & workers:
                continue
            overlap = min(last, until) - max(first, since)
            if overlap > 0:
                out[name] = out.get(name, 0.0) + overlap
        return out

    def __enter__(self) -> JobWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _jobs(engine: sa.Engine, task: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, status::text AS status, attempts, args FROM procrastinate_jobs"
                " WHERE task_name = :t ORDER BY id"
            ),
            {"t": task},
        ).mappings()
        return [dict(r) for r in rows]


def check_schedule(
    engine: sa.Engine,
    watcher: JobWatcher,
    workers: dict[int, str],
    since: float,
    cron: str,
    killed_jobs: list[int],
) -> dict[str, Any]:
    """Every Hugging Face slot queued once and run once; the runs it made; who ran the slots since both
    workers were up."""
    jobs = _jobs(engine, "ingest_huggingface")
    slots = [j["args"]["timestamp"] for j in jobs]
    with engine.connect() as conn:
        runs = dict(
            conn.execute(
                sa.text(
                    "SELECT status, count(*) FROM ingest_runs"
                    " WHERE source LIKE 'huggingface%' GROUP BY status"
                )
            ).all()
        )
    succeeded = [j for j in jobs if j["status"] == "succeeded"]
    both_up = [j for j in succeeded if j["args"]["timestamp"] >= since]
    takers = Counter(
        workers.get(w, f"worker {w}") for j in both_up for w in watcher.ran_by.get(int(j["id"]), set())
    )
    return {
        "cron": cron,
        "slots_queued": len(slots),
        "distinct_slots": len(set(slots)),
        "succeeded": len(succeeded),
        "slots_with_both_workers_up": len(both_up),
        "taken_by": dict(takers),
        "attempts": dict(Counter(int(j["attempts"]) for j in succeeded)),
        "taken_again_after_the_kill": [j["id"] for j in jobs if j["id"] in killed_jobs],
        "ingest_runs": runs,
        "ok": len(slots) == len(set(slots))
        and runs.get("ok", 0) == len(succeeded)
        and len(both_up) >= 3
        and all(j["attempts"] == 1 for j in both_up if j["id"] not in killed_jobs),
    }


def check_digests(engine: sa.Engine, inbox: Inbox, subscribers: list[str], quiet_s: float) -> dict[str, Any]:
    """Wait for one mail per subscriber, then `quiet_s` more (more rounds run): each Message-ID once."""
    start = time.monotonic()
    wanted = f"{len(subscribers)} digests to arrive"
    wait_for(lambda: inbox.count() >= len(subscribers), 300, wanted, every=0.5)
    arrived_s = time.monotonic() - start
    time.sleep(quiet_s)
    with inbox.lock:
        ids = list(inbox.message_ids)
        rcpts = list(inbox.recipients)
    counts = Counter(ids)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT count(*) FROM digest_runs")).scalar()
        outbox = dict(conn.execute(sa.text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
    rounds = len(_jobs(engine, "plan_digests"))
    shards = _jobs(engine, "digest_shard")
    return {
        "subscribers": len(subscribers),
        "received": len(ids),
        "distinct_message_ids": len(counts),
        "max_copies": max(counts.values(), default=0),
        "every_subscriber_once": sorted(rcpts) == sorted(subscribers),
        "arrived_s": round(arrived_s, 1),
        "planning_rounds": rounds,
        "shard_jobs": len(shards),
        "digest_runs": runs,
        "outbox": outbox,
        "ok": len(ids) == len(counts) == len(subscribers) and sorted(rcpts) == sorted(subscribers),
    }


# ------------------------------------------------------------------------------------------ kill under load


@dataclass
class Sent:
    node: str
    cls: str  # read | search | vote | comment
    status: int  # 0: connection refused, reset or timed out
    expected: int
    at: float  # seconds since the start, when it answered
    ms: float  # latency from its scheduled time
    member: int = -1
    paper: str = ""
    comment_id: int | None = None
    error: str = ""  # with status 0: the exception's name
    timed_out: bool = False  # no answer within 30 s


def _plan(pools: Any, members: list[Member], n: int, seed: int, write_share: float) -> list[tuple[Any, ...]]:
    """n requests: `write_share` signed-in writes (2/3 upvotes, 1/3 comments through the API), the rest
    bench/load.py's reads and searches in its proportions."""
    rng = random.Random(seed)
    reads = [m for m in bench_load.MIX if m[0] != "write"]
    out: list[tuple[Any, ...]] = []
    for i in range(n):
        if rng.random() < write_share:
            member = rng.randrange(len(members))
            paper = rng.choice(pools.featured)
            kind = "vote" if rng.random() < 2 / 3 else "comment"
            out.append((kind, member, paper, i))
        else:
            cls, kind, _ = rng.choices(reads, weights=[m[2] for m in reads])[0]
            req = bench_load.make_request(rng, pools, kind, cls, i)
            out.append((cls, req.path, req.expect))
    return out


async def _drive(
    nodes: list[Node],
    plan: list[tuple[Any, ...]],
    members: list[Member],
    rate: float,
    at: dict[float, Callable[[], None]],
    clock: dict[str, float],
) -> list[Sent]:
    """Send `plan` open loop at `rate`, request i to node i mod len(nodes); run each `at` action when its
    second comes (the kills)."""
    import aiohttp

    out: list[Sent] = []
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter() + 0.05
    clock["t0"] = t0
    for when, action in at.items():
        loop.call_at(loop.time() + 0.05 + when, action)

    async def one(session: aiohttp.ClientSession, i: int, item: tuple[Any, ...], due: float) -> None:
        node = nodes[i % len(nodes)]
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        kw: dict[str, Any] = {}
        sent = Sent(node.name, item[0], 0, 0, 0.0, 0.0)
        if item[0] in ("vote", "comment"):
            kind, member, paper, n = item
            sent.member, sent.paper = member, paper
            kw["headers"] = {"Authorization": f"Bearer {members[member].token}"}
            if kind == "vote":
                method, path, sent.expected = "POST", f"/api/papers/{paper}/upvote", 200
            else:
                method, path, sent.expected = "POST", f"/api/papers/{paper}/comments", 201
                kw["json"] = {"body": f"cluster comment {n}: the ablation in section {n % 7 + 1} holds up."}
        else:
            method, path, sent.expected = "GET", item[1], item[2]
        try:
            async with session.request(method, node.url + path, allow_redirects=False, **kw) as resp:
                body = await resp.read()
                sent.status = resp.status
                if item[0] == "comment" and resp.status == 201:
                    sent.comment_id = int(json.loads(body)["id"])
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            sent.status, sent.error = 0, type(exc).__name__
            sent.timed_out = isinstance(exc, TimeoutError)
        end = time.perf_counter()
        sent.at, sent.ms = end - t0, (end - due) * 1000
        out.append(sent)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=500), cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        tasks = []
        for i, item in enumerate(plan):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter() - 0.002))
            tasks.append(asyncio.create_task(one(session, i, item, due)))
        await asyncio.gather(*tasks)
    return out


def check_kill(
    cluster: Cluster,
    watcher: JobWatcher,
    web: list[Node],
    workers: list[Node],
    members: list[Member],
    *,
    rate: float,
    seconds: float,
    kill_at: float,
    seed: int,
    retry_wait: float = 120,
    prefer: str = "embed_batch",
) -> dict[str, Any]:
    """The kill under load; see the module docstring (5). The worker killed is one running a `prefer` job
    if one does within 5 s of the kill's time."""
    engine = cluster.engine
    pools = request_pools(engine, seed)
    plan = _plan(pools, members, int(rate * seconds), seed, write_share=0.4)
    victim_web = web[0]
    killed: dict[str, Any] = {}
    clock: dict[str, float] = {}

    def kill_both() -> None:
        # the worker running a job of the task `prefer` (waited for up to 5 s), else one running any job,
        # else the first worker
        by_id = {n.worker_id: n for n in workers}
        held: list[tuple[int, str, Node]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            held = [
                (j, t, by_id[w]) for j, t, w in JobWatcher(engine).doing() if w in by_id and by_id[w].alive()
            ]
            if any(t == prefer for _, t, _ in held):
                break
            time.sleep(0.05)
        preferred = [h for h in held if h[1] == prefer] or held
        victim = preferred[0][2] if preferred else workers[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim_web.proc.send_signal(signal.SIGKILL)
        killed["at_s"] = time.perf_counter() - clock["t0"]
        killed["at"] = time.monotonic()
        killed["worker"] = victim.name
        killed["jobs_held"] = [(j, t) for j, t, n in held if n is victim]

    def kill_soon() -> None:
        threading.Thread(target=kill_both, name="killer").start()

    sent = asyncio.run(_drive(web, plan, members, rate, {kill_at: kill_soon}, clock))
    wait_for(lambda: "worker" in killed, 30, "the kill")
    for node in (victim_web, *workers):
        if node is victim_web or node.name == killed["worker"]:
            node.proc.wait()
    kill_at = round(killed["at_s"], 2)

    # every acknowledged write is in the database
    votes = {(members[s.member].user_id, s.paper) for s in sent if s.cls == "vote" and s.status == 200}
    comment_ids = [s.comment_id for s in sent if s.cls == "comment" and s.comment_id is not None]
    with engine.connect() as conn:
        stored_votes = {
            (int(u), a)
            for u, a in conn.execute(
                sa.text("SELECT user_id, arxiv_id FROM votes WHERE user_id = ANY(:u)"),
                {"u": sorted({m.user_id for m in members})},
            )
        }
        stored_comments = {
            int(r[0])
            for r in conn.execute(
                sa.text("SELECT id FROM comments WHERE id = ANY(:ids)"), {"ids": comment_ids}
            )
        }
    lost_votes = len(votes - stored_votes)
    lost_comments = len(set(comment_ids) - stored_comments)

    def summary(rows: list[Sent]) -> dict[str, Any]:
        bad = [s for s in rows if s.status != s.expected]
        return {
            "requests": len(rows),
            "errors": len(bad),
            "error_rate": round(len(bad) / len(rows), 4) if rows else None,
            "statuses": dict(Counter(str(s.status or s.error) for s in bad)),
            "timeouts": sum(s.timed_out for s in bad),
            "p50_ms": percentile([s.ms for s in rows], 50),
            "p99_ms": percentile([s.ms for s in rows], 99),
        }

    survivors = [s for s in sent if s.node != victim_web.name]
    killed_node = [s for s in sent if s.node == victim_web.name]
    out: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "killed_at_s": kill_at,
        "killed_web": victim_web.name,
        "killed_worker": killed["worker"],
        "acknowledged_writes": len(votes) + len(comment_ids),
        "acknowledged_votes": len(votes),
        "acknowledged_comments": len(comment_ids),
        "acknowledged_by_killed_node": sum(
            1 for s in killed_node if s.cls in ("vote", "comment") and s.status == s.expected
        ),
        "lost_votes": lost_votes,
        "lost_comments": lost_comments,
        "survivors_before_kill": summary([s for s in survivors if s.at < kill_at]),
        "survivors_after_kill": summary([s for s in survivors if s.at >= kill_at]),
        "killed_node_after_kill": summary([s for s in killed_node if s.at >= kill_at + 0.5]),
    }

    # the killed worker's job: taken again by the other worker once the heartbeat is stale, and finished
    held = killed["jobs_held"]
    out["worker_jobs_held_at_kill"] = [j for j, _ in held]
    out["worker_tasks_held_at_kill"] = [t for _, t in held]
    if held:
        ids = [j for j, _ in held]

        def finished() -> list[dict[str, Any]] | None:
            with engine.connect() as conn:
                rows = [
                    dict(r)
                    for r in conn.execute(
                        sa.text(
                            "SELECT id, task_name, status::text AS status, attempts FROM procrastinate_jobs"
                            " WHERE id = ANY(:ids)"
                        ),
                        {"ids": ids},
                    ).mappings()
                ]
            return rows if all(r["status"] in ("succeeded", "failed") for r in rows) else None

        try:
            rows = wait_for(finished, retry_wait, "the killed worker's jobs to be taken again", every=0.5)
            out["held_jobs_done_after_kill_s"] = round(time.monotonic() - killed["at"], 1)
            # what the surviving worker ran meanwhile (one job at a time: a long one delays the retry,
            # which is itself a job)
            survivor = next(w for w in workers if w.alive())
            out["survivor_ran_meanwhile"] = [
                f"{task} {seconds} s"
                for task, seconds in watcher.ran_on(survivor.worker_id, killed["at"], time.monotonic())
            ]
            out["held_jobs"] = [
                {"task": r["task_name"], "status": r["status"], "attempts": r["attempts"]} for r in rows
            ]
        except TimeoutError as exc:
            out["held_jobs"] = str(exc)
    # the surviving nodes: no error but a time-out, and time-outs (CPU starvation, not failure) under 1 %
    both = (out["survivors_before_kill"], out["survivors_after_kill"])
    survivors_ok = all(p["errors"] == p["timeouts"] and p["timeouts"] <= 0.01 * p["requests"] for p in both)
    held_ok = not held or (
        isinstance(out.get("held_jobs"), list)
        and all(j["status"] == "succeeded" and j["attempts"] >= 2 for j in out["held_jobs"])
    )
    out["ok"] = lost_votes == 0 and lost_comments == 0 and survivors_ok and held_ok
    return out


# ------------------------------------------------------------------------------------------------ embedding


def _embedded(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM embeddings")).scalar() or 0)


def _batches_done_by(watcher: JobWatcher, engine: sa.Engine, worker_id: int | None) -> int:
    done = {j["id"] for j in _jobs(engine, "embed_batch") if j["status"] == "succeeded"}
    return sum(1 for j in done if worker_id in watcher.ran_by.get(int(j), set()))


def measure_embedding(
    engine: sa.Engine, watcher: JobWatcher, workers: list[Node], batches: int, tries: int = 3
) -> dict[str, Any]:
    """Papers embedded per second by `workers` (each having finished a batch first) over `batches` batches
    of 256, timed from one stored batch to the last (a batch is stored in one go: a fixed window would
    count whole batches in or out), and the workers' CPU seconds per paper over the same span. A span in
    which the workers spent more than 5 % of their time on other jobs (the hourly index_upkeep rebuilds a
    worker's replica for minutes; /proc counts its CPU too) is measured again, up to `tries` times."""
    wait_for(
        lambda: all(_batches_done_by(watcher, engine, w.worker_id) >= 1 for w in workers),
        900,
        "each worker to finish an embedding batch",
        every=1,
    )
    ids = {w.worker_id for w in workers}
    timed = 0
    while True:
        timed += 1
        n = _embedded(engine)
        wait_for(lambda n=n: _embedded(engine) > n, 900, "a batch to be stored", every=0.1)
        n0, c0, t0 = _embedded(engine), sum(w.cpu() for w in workers), time.monotonic()
        target = n0 + batches * EMBED_BATCH
        wait_for(lambda t=target: _embedded(engine) >= t, 3600, f"{batches} more batches", every=0.1)
        n1, c1, t1 = _embedded(engine), sum(w.cpu() for w in workers), time.monotonic()
        other = watcher.time_on_other_jobs(ids, "embed_batch", t0, t1)
        if sum(other.values()) <= 0.05 * (t1 - t0) * len(workers) or timed == tries:
            break
        log(f"embedding: the workers also ran {other} while timed; timing again")
    papers = n1 - n0
    return {
        "workers": len(workers),
        "seconds": round(t1 - t0, 1),
        "papers": papers,
        "papers_per_s": round(papers / (t1 - t0), 2),
        "cpu_s_per_paper": round((c1 - c0) / papers, 4) if papers else None,
        "cpu_cores_busy": round((c1 - c0) / (t1 - t0), 2),
        "other_jobs_s": {k: round(v, 1) for k, v in other.items()},
        "timed": timed,
    }


# ------------------------------------------------------------------------------------------------------ run


@dataclass
class Options:
    small: bool = False
    n: int | None = None  # papers (None: the whole corpus)
    web_nodes: int = 3
    embed: int = 8192  # papers left to the workers to embed
    embed_batches: int = 3  # batches timed with one worker (twice as many with two)
    subscribers: int = 100
    load_rate: float = 25.0
    load_seconds: float = 45.0
    kill_at: float = 15.0
    hf_cron: str = "* * * * * */5"
    digest_cron: str = "* * * * * */10"
    members: int = 40
    seed: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def small_options() -> Options:
    return Options(
        small=True,
        web_nodes=2,
        embed=0,
        subscribers=5,
        load_rate=20.0,
        load_seconds=10.0,
        kill_at=4.0,
        hf_cron="* * * * * */3",
        digest_cron="* * * * * */4",
        members=10,
    )


def run(database_url: str, workdir: Path, redis_url: str, opts: Options) -> dict[str, Any]:
    """Everything after the database and Redis exist: load, start, check. Returns the JSON report."""
    from upstream import Reply, Upstream

    from paperboy.db import make_engine, upgrade

    report: dict[str, Any] = {
        "papers": None,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    engine = make_engine(database_url)
    upgrade(engine)
    corpus = SMALL_CORPUS if opts.small else CORPUS
    loaded = load_corpus(engine, corpus, opts.n, 1 if opts.small else 4)
    report["papers"] = loaded["papers"]
    report["load"] = loaded
    log(f"loaded {loaded}")
    members = make_members(engine, opts.members)

    hf = json.loads((SMALL_HF if opts.small else HF_RECORDED).read_text())
    with smtp_server() as (smtp_url, inbox), Upstream() as upstream:
        # the recorded list for any day; in --small each answer takes a while, so a worker is mid-job
        # when it is killed
        upstream.route("/api/daily_papers", None, Reply.json(hf, delay=1.0 if opts.small else 0.5))
        env = {
            "PAPERBOY_RATE_LIMIT_STORAGE": redis_url,
            "PAPERBOY_HF_ENDPOINT": upstream.url,
            "PAPERBOY_HF_SYNC_CRON": opts.hf_cron,
            "PAPERBOY_HF_INITIAL_DAYS": "3",
            "PAPERBOY_DIGEST_CRON": opts.digest_cron,
            "PAPERBOY_SMTP_URL": smtp_url,
            "PAPERBOY_MAIL_FROM": "Cluster Papers <papers@cluster.example>",
            "PAPERBOY_MAIL_RATE": "100",
            "PAPERBOY_HTTP_RETRIES": "0",
            "PAPERBOY_RATE_VOTE": "100000 per minute",
            "PAPERBOY_RATE_COMMENT": "100000 per minute",
            "PAPERBOY_EMBEDDING_THREADS": "1",
        }
        if opts.small:
            env["PAPERBOY_EMBEDDING_MODEL"] = "/no/such/model"  # keyword search only: quick starts
        else:
            env["CLUSTER_MODELS"] = str(_model_cache())
        cluster = Cluster(workdir, database_url, env, engine)
        try:
            if not opts.small:
                report["vectors"] = import_vectors(cluster.env, workdir / "import")
                report["vectors"]["left_to_embed"] = drop_vectors(engine, opts.embed, opts.seed)
                log(f"vectors {report['vectors']}")
            _run_cluster(cluster, engine, members, inbox, opts, report)
        finally:
            cluster.stop()
            report["logs"] = str(workdir) if opts.extra.get("keep") else None
        report["jobs_at_end"] = _jobs_command(cluster.env, workdir)
    engine.dispose()
    checks = ("vote", "signin_limit", "schedule", "digests", "kill")
    report["ok"] = all(report.get(k, {}).get("ok") for k in checks)
    return report


def _model_cache() -> Path:
    """The ONNX export of the default model, made once here (every node links to it)."""
    from paperboy.search.embed import default_cache_dir, load_embedder

    load_embedder(None, backend="onnx-int8", cache_dir=default_cache_dir())
    return default_cache_dir()


def _jobs_command(env: dict[str, str], workdir: Path) -> Any:
    run_env = {**env, "PAPERBOY_DATA_DIR": str(workdir / "jobs")}
    run_env.pop("CLUSTER_MODELS", None)
    done = subprocess.run(
        [*PAPERBOY, "jobs", "--json", "--limit", "1"],
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr[-500:]}
    out = json.loads(done.stdout)
    return {"counts": out["counts"], "workers_alive": out["workers"]}


def _run_cluster(
    cluster: Cluster,
    engine: sa.Engine,
    members: list[Member],
    inbox: Inbox,
    opts: Options,
    report: dict[str, Any],
) -> None:
    names = "ABC"[: opts.web_nodes] if opts.web_nodes <= 3 else [f"web{i}" for i in range(opts.web_nodes)]
    web = [cluster.start_web(str(name)) for name in names]
    report["web_started_s"] = {n.name: round(cluster.wait_web(n), 1) for n in web}
    log(f"web nodes up: {report['web_started_s']}")

    with engine.connect() as conn:
        paper = conn.execute(sa.text("SELECT arxiv_id FROM featurings ORDER BY day DESC, arxiv_id")).scalar()
    report["vote"] = check_vote(web, members, str(paper))
    log(f"vote: {report['vote']['ok']}")
    report["signin_limit"] = check_signin_limit(web, members[2].name)
    log(f"sign-in limit: {report['signin_limit']['codes']}")

    if not opts.small:
        report["search_complete_s"] = _search_complete(engine, web)
        log(f"search complete on every node: {report['search_complete_s']}")

    with JobWatcher(engine) as watcher:
        w1 = cluster.start_worker("W1")
        embedding: dict[str, Any] = {}
        if not opts.small:
            embedding["one_worker"] = measure_embedding(engine, watcher, [w1], opts.embed_batches)
            log(f"embedding, one worker: {embedding['one_worker']}")
        w2 = cluster.start_worker("W2")
        workers = [w1, w2]
        both_up = time.time()
        if not opts.small:
            embedding["two_workers"] = measure_embedding(engine, watcher, workers, 2 * opts.embed_batches)
            one, two = embedding["one_worker"], embedding["two_workers"]
            embedding["ratio"] = round(two["papers_per_s"] / one["papers_per_s"], 2)
            embedding["cores"] = os.cpu_count()
            embedding["threads_per_worker"] = 1
            embedding["note"] = (
                f"this machine has {os.cpu_count()} cores, shared with the web nodes, PostgreSQL and anything"
                " else running: two one-thread workers can at most double; on separate machines the rate"
                " adds up per worker, each at 1 / cpu_s_per_paper papers/s per core"
            )
            log(f"embedding, two workers: {embedding['two_workers']}")
            report["embedding"] = embedding

        subscribers = make_subscribers(engine, opts.subscribers)
        report["digests"] = check_digests(
            engine, inbox, subscribers, quiet_s=_seconds(opts.digest_cron) * 2 + 2
        )
        log(f"digests: {report['digests']}")
        slot = _seconds(opts.hf_cron)
        wait_for(
            lambda: (
                sum(
                    1
                    for j in _jobs(engine, "ingest_huggingface")
                    if j["status"] == "succeeded" and j["args"]["timestamp"] >= both_up
                )
                >= 3
            ),
            slot * 10 + 60,
            "three Hugging Face slots with both workers up",
            every=0.5,
        )
        worker_names = {w.worker_id: w.name for w in workers if w.worker_id is not None}
        report["kill"] = check_kill(
            cluster,
            watcher,
            web,
            workers,
            members,
            rate=opts.load_rate,
            seconds=opts.load_seconds,
            kill_at=opts.kill_at,
            seed=opts.seed,
            retry_wait=120 if opts.small else 900,
            # --small: an ingest, whose next slot is queued behind it (the retry must get past that)
            prefer="ingest_huggingface" if opts.small else "embed_batch",
        )
        log(f"kill: {report['kill']}")
        survivor = next(w for w in workers if w.alive())
        # slots go on with one worker left; then stop it cleanly so every run it started is finished
        survivor.proc.send_signal(signal.SIGTERM)
        survivor.proc.wait(timeout=60)
        report["schedule"] = check_schedule(
            engine, watcher, worker_names, both_up, opts.hf_cron, report["kill"]["worker_jobs_held_at_kill"]
        )
        log(f"schedule: {report['schedule']}")


def _seconds(cron: str) -> float:
    """The interval of a `* * * * * */N` cron line (N s), else 60."""
    parts = cron.split()
    if len(parts) == 6 and parts[5].startswith("*/"):
        return float(parts[5][2:])
    return 60.0


def _search_complete(engine: sa.Engine, web: list[Node], seconds: float = 900) -> dict[str, float]:
    """Seconds from each web node's start until its replica holds every paper and every stored vector."""
    import httpx

    with engine.connect() as conn:
        papers = conn.execute(sa.text("SELECT count(*) FROM papers")).scalar()
        vectors = conn.execute(sa.text("SELECT count(*) FROM embeddings")).scalar()
    out: dict[str, float] = {}

    def complete() -> bool:
        for node in web:
            if node.name in out:
                continue
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                index = httpx.get(node.url + "/readyz", timeout=10).json()["index"]
                if index["keywordDocs"] >= papers and (index["vectors"] or 0) >= vectors:
                    out[node.name] = round(time.monotonic() - node.started, 1)
        return len(out) == len(web)

    wait_for(complete, seconds, "every web node's search to be complete", every=2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="CI size: the 60-paper fixture, 2 web, no model")
    parser.add_argument("--n", type=int, default=None, help="load only the first N papers of the corpus")
    parser.add_argument("--embed", type=int, default=8192, help="papers left for the workers to embed")
    parser.add_argument(
        "--embed-batches", type=int, default=3, help="batches of 256 timed with one worker (x2 with two)"
    )
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second during the kill")
    parser.add_argument("--seconds", type=float, default=45.0, help="seconds of load during the kill")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.small:
        opts = small_options()
    else:
        if not CORPUS.is_file() or not NPY.is_file():
            print(
                f"bench/cluster.py: {SHARED} is missing the corpus or its vectors (try --small)",
                file=sys.stderr,
            )
            return 2
        opts = Options(
            n=args.n,
            embed=args.embed,
            embed_batches=args.embed_batches,
            subscribers=args.subscribers,
            load_rate=args.rate,
            load_seconds=args.seconds,
            kill_at=args.seconds / 3,
            seed=args.seed,
        )
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        print("bench/cluster.py: redis-server not found (apt-get install redis-server)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `finally` blocks stop the servers
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pb-cluster-"))
    workdir.mkdir(parents=True, exist_ok=True)
    opts.extra["keep"] = keep
    started = time.monotonic()
    try:
        with postgres() as url, redis_server(workdir) as redis_url:
            report = run(url, workdir, redis_url, opts)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["total_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, default=str), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
