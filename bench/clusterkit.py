"""The pieces bench/cluster.py builds a cluster from: PostgreSQL (pgserver), redis-server, an SMTP server
(aiosmtpd), `paperboy web` and `paperboy worker` processes each with its own data folder, and the data
(the corpus through the real ingest, precomputed vectors, members, subscribers). tests/test_cluster.py uses
them through bench/cluster.py."""

from __future__ import annotations

import contextlib
import email
import email.policy
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))

import load as bench_load  # noqa: E402  (bench/load.py: its upvote figures and request pools)

SHARED = REPO_ROOT.parent / "shared" / "data"
NPY = SHARED / "embeddings" / "minilm_arxiv_cs_f16.npy"
IDS = SHARED / "embeddings" / "minilm_arxiv_cs_ids.txt"
PAPERBOY = [sys.executable, "-m", "paperboy"]
KEY = "cluster-bench-secret-" + "k" * 40  # PAPERBOY_SECRET_KEY, the same on every node
PASSWORD = "cluster-bench-password-1"


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], seconds: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1)


# ---------------------------------------------------------------------------------------------- the servers


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL (pgserver) with an empty database; its SQLAlchemy URL (psycopg 3)."""
    import pgserver

    # a short path: the Unix socket's path must stay under ~100 bytes; not 0700 under someone's home
    pgdata = Path(tempfile.mkdtemp(prefix="pb-cluster-pg-"))
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        admin = sa.create_engine(
            server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as c:
            c.execute(sa.text("CREATE DATABASE paperboy_cluster"))
        url = admin.url.set(database="paperboy_cluster").render_as_string(hide_password=False)
        admin.dispose()
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """redis-server on a free loopback port, nothing saved; its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *args, "--daemonize", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Inbox:
    """An aiosmtpd handler keeping every message's Message-ID and recipients."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self.recipients: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.message_ids.append(str(msg.get("Message-ID", "")))
            self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.message_ids)


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", inbox
    finally:
        controller.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (its threads included), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Node:
    name: str
    role: str  # web | worker
    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0
    worker_id: int | None = None  # procrastinate_workers.id of a worker
    started: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class Cluster:
    """The web and worker processes, each with its own data folder (search replica, model cache link) and
    the same database, secret key, Redis and upstreams."""

    def __init__(self, workdir: Path, database_url: str, env: dict[str, str], engine: sa.Engine) -> None:
        self.workdir = workdir
        self.engine = engine
        base = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
        base.pop("FORWARDED_ALLOW_IPS", None)
        base.update(
            PAPERBOY_DATABASE_URL=database_url,
            PAPERBOY_SECRET_KEY=KEY,
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        base.update(env)
        self.env = base
        self.nodes: dict[str, Node] = {}

    def _folder(self, name: str) -> Path:
        folder = self.workdir / "nodes" / name
        folder.mkdir(parents=True, exist_ok=True)
        models = self.env.get("CLUSTER_MODELS")
        if models and not (folder / "models").exists():
            (folder / "models").symlink_to(models)  # the ONNX export made once, shared
        return folder

    def _spawn(self, name: str, role: str, args: list[str], **extra: str) -> Node:
        folder = self._folder(name)
        env = {**self.env, "PAPERBOY_DATA_DIR": str(folder), **extra}
        env.pop("CLUSTER_MODELS", None)
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen([*PAPERBOY, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        node = Node(name, role, proc, log_path, started=time.monotonic())
        self.nodes[name] = node
        return node

    def start_web(self, name: str) -> Node:
        port = free_port()
        node = self._spawn(
            name,
            "web",
            ["web", "--host", "127.0.0.1", "--port", str(port)],
            PAPERBOY_BASE_URL=f"http://127.0.0.1:{port}",
        )
        node.port = port
        return node

    def wait_web(self, node: Node, seconds: float = 180) -> float:
        import httpx

        def up() -> bool:
            if not node.alive():
                raise RuntimeError(f"web node {node.name} exited:\n{node.tail()}")
            try:
                return httpx.get(node.url + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, seconds, f"web node {node.name} to answer /healthz", every=0.2)
        return time.monotonic() - node.started

    def start_worker(self, name: str) -> Node:
        """A worker, waited for until it has registered with the queue (its id is learnt then)."""
        before = self.worker_ids()
        node = self._spawn(name, "worker", ["worker"])

        def registered() -> int | None:
            if not node.alive():
                raise RuntimeError(f"worker {name} exited:\n{node.tail()}")
            new = self.worker_ids() - before
            return min(new) if new else None

        node.worker_id = wait_for(registered, 120, f"worker {name} to register")
        return node

    def worker_ids(self) -> set[int]:
        with self.engine.connect() as conn:
            return {int(r[0]) for r in conn.execute(sa.text("SELECT id FROM procrastinate_workers"))}

    def kill(self, node: Node) -> None:
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.alive():
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            try:
                node.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()


# ------------------------------------------------------------------------------------------------- the data


def _lines(path: Path, limit: int | None) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener: Any = gzip.open if gz else open
    out = []
    with opener(path, "rt", encoding="utf-8") as src:
        for line in src:
            if line.strip():
                out.append(json.loads(line))
                if limit is not None and len(out) >= limit:
                    break
    return out


def _featured(arxiv_id: str, one_in: int) -> bool:
    return hashlib.sha256(arxiv_id.encode()).digest()[0] % one_in == 0


def load_corpus(engine: sa.Engine, path: Path, limit: int | None, feature_one_in: int) -> dict[str, Any]:
    """The papers through the real ingest; one in `feature_one_in` featured on its listing day, the days
    shifted so that the newest is yesterday (digests due now find papers in their window)."""
    from paperboy.ingest import run_ingest
    from paperboy.models import Featuring, Page, Record
    from paperboy.sources.snapshot import parse_line

    raws = _lines(path, limit)
    days = [date.fromisoformat(r["listing_date"]) for r in raws if r.get("listing_date")]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    shift = yesterday - max(days) if days else timedelta(0)

    def pages() -> Iterator[Any]:
        batch: list[Any] = []
        for n, raw in enumerate(raws, 1):
            paper = parse_line(raw, f"{path}:{n}")
            featuring = None
            if raw.get("listing_date") and _featured(paper.arxiv_id, feature_one_in):
                day = date.fromisoformat(raw["listing_date"]) + shift
                featuring = Featuring(
                    paper.arxiv_id,
                    day,
                    "huggingface",
                    submitted_at=datetime(day.year, day.month, day.day, 6, tzinfo=UTC),
                    upvotes=bench_load._upstream_upvotes(paper.arxiv_id),
                )
            batch.append(Record(paper, featuring))
            if len(batch) >= 2000:
                yield Page(batch, {"line": n})
                batch = []
        if batch:
            yield Page(batch, {"line": len(raws)})

    start = time.perf_counter()
    result = run_ingest(
        engine, "bench-cluster", pages(), lambda: datetime.now(UTC), cursor_name="bench-cluster"
    )
    return {
        "papers": result.counts.inserted,
        "featured": result.counts.featured,
        "ingest_s": round(time.perf_counter() - start, 1),
    }


def import_vectors(env: dict[str, str], data_dir: Path) -> dict[str, Any]:
    """The precomputed vectors of ../shared/data/embeddings through `paperboy index import-vectors
    --no-index` (the web nodes' replicas add them to their vector indexes themselves)."""
    start = time.perf_counter()
    run_env = {**env, "PAPERBOY_DATA_DIR": str(data_dir)}
    run_env.pop("CLUSTER_MODELS", None)
    done = subprocess.run(
        [*PAPERBOY, "index", "import-vectors", str(NPY), str(IDS), "--no-index"],
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"paperboy index import-vectors failed:\n{done.stderr[-3000:]}")
    summary = json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])
    return {"imported": summary.get("imported"), "import_s": round(time.perf_counter() - start, 1)}


def drop_vectors(engine: sa.Engine, leave_out: int, seed: int) -> int:
    """Delete the stored vectors of `leave_out` papers picked at random: the embedding backlog."""
    with engine.begin() as conn:
        ids = sorted(r[0] for r in conn.execute(sa.text("SELECT arxiv_id FROM embeddings")))
        chosen = random.Random(seed).sample(ids, min(leave_out, len(ids)))
        for i in range(0, len(chosen), 1000):
            conn.execute(
                sa.text("DELETE FROM embeddings WHERE arxiv_id = ANY(:ids)"), {"ids": chosen[i : i + 1000]}
            )
    return len(chosen)


@dataclass
class Member:
    name: str
    user_id: int
    token: str


def make_members(engine: sa.Engine, n: int) -> list[Member]:
    """Members with an API token each, written straight into the database (as bench/load.py does)."""
    from argon2 import PasswordHasher

    from paperboy import accounts

    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    now = datetime.now(UTC)
    out = []
    with engine.begin() as conn:
        for i in range(n):
            user = accounts.create_user(
                conn,
                hasher,
                username=f"member{i:03d}",
                email=f"member{i:03d}@cluster.example",
                password=PASSWORD,
                now=now,
                admin=False,
            )
            out.append(Member(user.username, user.id, accounts.create_token(conn, user, "bench", now).secret))
    return out


def make_subscribers(engine: sa.Engine, n: int) -> list[str]:
    """`n` confirmed subscribers whose weekly digest is due now (today's weekday, 00:00 UTC): the next
    planning round mails each of them once."""
    from paperboy.store import subscriptions as sub_store

    now = datetime.now(UTC)
    emails = [f"reader{i:04d}@cluster.example" for i in range(n)]
    with engine.begin() as conn:
        for address in emails:
            sub = sub_store.insert_subscription(conn, email=address, now=now)
            sub_store.update_preferences(
                conn,
                sub.id,
                cadence="weekly",
                send_hour=0,
                weekly_day=now.weekday(),
                timezone="UTC",
                max_papers=5,
                categories=(),
                authors=(),
                exclude=(),
            )
            sub_store.set_status(conn, sub.id, "active", now)
    return emails


def request_pools(engine: sa.Engine, seed: int) -> Any:
    """bench/load.py's request pools, read from the cluster's database."""
    with engine.connect() as conn:
        days = [str(r[0])[:10] for r in conn.execute(sa.text("SELECT DISTINCT day FROM featurings"))]
        featured = sorted(r[0] for r in conn.execute(sa.text("SELECT DISTINCT arxiv_id FROM featurings")))
        rows = sorted(tuple(r) for r in conn.execute(sa.text("SELECT arxiv_id, title FROM papers")))
    rng = random.Random(seed)
    sample = rng.sample(rows, min(len(rows), 3000))
    ds = sorted((date.fromisoformat(d) for d in set(days)), reverse=True)
    return bench_load.Pools(
        days=[d.isoformat() for d in ds],
        weeks=sorted({bench_load._week(d) for d in ds}, reverse=True),
        months=sorted({d.strftime("%Y-%m") for d in ds}, reverse=True),
        featured=rng.sample(featured, min(len(featured), 2000)),
        papers=[r[0] for r in sample[:1000]],
        titles=[" ".join(r[1].split()[:12]) for r in sample],
    )
