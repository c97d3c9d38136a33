"""Load: an open-loop client against `paperboy serve` on loopback, beside a static copy of the same pages.

    python bench/load.py                             # 74,728 papers, 50/100/200/400 req/s × 60 s each
    python bench/load.py --workdir /var/tmp/pb-load  # build the hub there once; later runs reuse it
    python bench/load.py --papers 2000 --rates 20,50 --duration 10
    python bench/load.py --file tests/fixtures/arxiv_listing_small.jsonl --rates 10 --duration 3   # CI

**The hub** (built once per --workdir, reused while its hub.json matches): the corpus's papers through the
real ingest (`run_ingest`), one in four featured on its listing day (days shifted by whole weeks so that the
newest listing day falls in the last week: the front page and trending have content) with made-up upstream
upvotes; the precomputed vectors of ../shared/data/embeddings through `paperboy index import-vectors` (papers
the file lacks, e.g. the repo's fixture, get random unit vectors written beside the hub), the keyword index
through `paperboy index update`; 50 members with an API token each.

**The run** starts `paperboy serve --no-sync` on a free loopback port (digests off, the per-member vote and
comment limits raised: 50 members write far more often than people would), signs the members in (a session
row each; the CSRF token is read from a page), then for each rate sends `rate × duration` requests on a fixed
schedule (one every 1/rate s, whether or not earlier ones have answered). Latency is measured from each
request's *scheduled* time, so a server that falls behind shows it (no coordinated omission). The mix:

- 70 % anonymous reads: /papers, /papers/date/…, week, month, trending, paper pages, Atom feeds,
  /api/daily_papers;
- 15 % searches: /papers?q= and /api/papers/search?q= with real titles and topic phrases;
- 15 % signed-in writes by the 50 members: upvote toggles through the HTML form (session cookie + CSRF
  token, 303 expected) and comments through the API (bearer token, 201 expected).

The same generator then sends the same rate of anonymous reads (the same URLs, fetched once from the hub and
written to files) to Python's `http.server`, the plain static file server, so that each figure has the
machine's and the client's own floor beside it.

Prints one JSON line per rate and target (`target` "hub" or "static"): rate, sent, achieved (expected answers
per second, from the first scheduled send to the last answer), p50_ms, p95_ms, p99_ms (over every request,
errors included, a timeout at its time-out), errors_5xx, errors_other (time-outs, connection errors,
unexpected statuses), by_class (read / search / write: n, p50_ms, p99_ms, errors); hub lines add
static_read_p50_ms / static_read_p99_ms and read_vs_static_p50 / read_vs_static_p99 (the hub's anonymous
reads over the static server's, same rate). A last line: max_rate_p99_250ms (the highest rate with p99 ≤ 250
ms and no errors; 0 if none), and the ratios at that rate. --profile DIR records the server with py-spy
(`raw` collapsed stacks per rate).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_FILE = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
DEFAULT_NPY = SHARED / "embeddings" / "minilm_arxiv_cs_f16.npy"
DEFAULT_IDS = SHARED / "embeddings" / "minilm_arxiv_cs_ids.txt"
PAPERBOY = [sys.executable, "-m", "paperboy"]
MEMBERS = 50
PASSWORD = "load-bench-password-1"
FEATURE_ONE_IN = 4
TIMEOUT_S = 10.0
P99_TARGET_MS = 250.0
HUB_FORMAT = 1

TOPICS = [
    "large language models",
    "diffusion models for image generation",
    "reinforcement learning from human feedback",
    "retrieval augmented generation",
    "vision transformers",
    "graph neural networks",
    "speech recognition",
    "multimodal reasoning",
    "3D scene reconstruction",
    "federated learning privacy",
    "code generation benchmark",
    "robot manipulation policy",
    "medical image segmentation",
    "knowledge distillation",
    "mixture of experts",
    "video understanding",
    "adversarial robustness",
    "chain of thought reasoning",
    "autonomous driving perception",
    "neural radiance fields",
    "low-rank adaptation fine-tuning",
    "hallucination detection",
    "sparse attention long context",
    "quantization of transformers",
    "contrastive learning representations",
]

# (class, kind, weight in percent of all requests)
MIX = [
    ("read", "front", 7),
    ("read", "day", 11),
    ("read", "week", 3),
    ("read", "month", 2),
    ("read", "trending", 5),
    ("read", "paper", 22),
    ("read", "feed", 7),
    ("read", "api_daily", 13),
    ("search", "page_search", 8),
    ("search", "api_search", 7),
    ("write", "upvote", 10),
    ("write", "comment", 5),
]


def log(msg: str) -> None:
    print(f"[load] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- the hub


def _open_lines(path: Path) -> Iterator[str]:
    with path.open("rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rt", encoding="utf-8") if gz else path.open(encoding="utf-8") as src:
        for line in src:
            if line.strip():
                yield line


def _featured(arxiv_id: str) -> bool:
    return hashlib.sha256(arxiv_id.encode()).digest()[0] % FEATURE_ONE_IN == 0


def _upstream_upvotes(arxiv_id: str) -> int:
    h = int.from_bytes(hashlib.sha256(b"up" + arxiv_id.encode()).digest()[:4], "little")
    return int((h % 1000) ** 2 / 4000)  # 0 … 249, most papers few


def _week_shift(last_day: date, today: date) -> timedelta:
    """Whole weeks that bring `last_day` into the 7 days up to `today` (weekdays stay weekdays)."""
    weeks = max(0, (today - last_day).days // 7)
    return timedelta(days=7 * weeks)


def _hub_pages(path: Path, limit: int | None, shift: timedelta) -> Iterator[Any]:
    from paperboy.models import Featuring, Page, Record
    from paperboy.sources.snapshot import parse_line

    batch: list[Record] = []
    for n, line in enumerate(_open_lines(path), 1):
        if limit is not None and n > limit:
            break
        raw = json.loads(line)
        paper = parse_line(raw, f"{path}:{n}")
        featuring = None
        if raw.get("listing_date") and _featured(paper.arxiv_id):
            day = date.fromisoformat(raw["listing_date"]) + shift
            featuring = Featuring(
                paper.arxiv_id,
                day,
                "huggingface",
                submitted_at=datetime(day.year, day.month, day.day, 6, tzinfo=UTC),
                upvotes=_upstream_upvotes(paper.arxiv_id),
            )
        batch.append(Record(paper, featuring))
        if len(batch) >= 2000:
            yield Page(batch, {"line": n})
            batch = []
    if batch:
        yield Page(batch, {"line": n})


def _last_listing_day(path: Path, limit: int | None) -> date:
    last = date.min
    for n, line in enumerate(_open_lines(path), 1):
        if limit is not None and n > limit:
            break
        d = json.loads(line).get("listing_date")
        if d:
            last = max(last, date.fromisoformat(d))
    return last if last != date.min else datetime.now(UTC).date()


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(PAPERBOY_DATA_DIR=str(data), PAPERBOY_DIGESTS="false", **extra)
    return env


def _run_cli(data: Path, *args: str) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run([*PAPERBOY, *args], env=_env(data), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"paperboy {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    out["seconds"] = round(time.perf_counter() - start, 1)
    log(f"paperboy {' '.join(a if len(a) < 40 else '…' + a[-30:] for a in args)}: {out}")
    return out


def _share_onnx_export(hub_models: Path, *, into_hub: bool) -> None:
    """Copy the model's ONNX export between the hub's data_dir/models and the user's cache
    (~/.cache/paperboy/models): a new hub then skips the half-minute export."""
    from paperboy.search.embed import default_cache_dir

    src, dst = (default_cache_dir(), hub_models) if into_hub else (hub_models, default_cache_dir())
    if not src.is_dir():
        return
    for folder in src.iterdir():
        if (folder / "meta.json").is_file() and not (dst / folder.name).exists():
            try:
                shutil.copytree(folder, dst / folder.name)
            except OSError as exc:
                log(f"could not copy the ONNX export {folder} to {dst}: {exc}")


def build_hub(workdir: Path, corpus: Path, limit: int | None, npy: Path, ids_file: Path) -> dict[str, Any]:
    """The hub in workdir/data (reused when workdir/hub.json says it was built from the same input)."""
    from argon2 import PasswordHasher

    from paperboy import accounts
    from paperboy.db import make_engine, upgrade
    from paperboy.ingest import run_ingest

    want = {"format": HUB_FORMAT, "corpus": str(corpus.resolve()), "papers": limit, "vectors": str(npy)}
    marker = workdir / "hub.json"
    if marker.is_file():
        have = json.loads(marker.read_text())
        if {k: have.get(k) for k in want} == want:
            log(f"reusing the hub in {workdir}")
            return have
    data = workdir / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    figures: dict[str, Any] = dict(want)
    now = lambda: datetime.now(UTC)  # noqa: E731
    shift = _week_shift(_last_listing_day(corpus, limit), now().date())
    engine = make_engine(f"sqlite:///{data / 'paperboy.sqlite3'}")
    upgrade(engine)
    start = time.perf_counter()
    result = run_ingest(engine, "bench-load", _hub_pages(corpus, limit, shift), now, cursor_name="bench-load")
    figures["ingest_s"] = round(time.perf_counter() - start, 1)
    figures["ingested"] = result.counts.inserted
    log(f"ingested {result.counts.inserted} papers in {figures['ingest_s']} s (days shifted by {shift.days})")

    # vectors: the precomputed file, then random unit vectors for the papers it lacks
    import sqlalchemy as sa

    with engine.connect() as conn:
        hub_ids = [r[0] for r in conn.execute(sa.text("SELECT arxiv_id FROM papers ORDER BY arxiv_id"))]
    covered: set[str] = set()
    if npy.is_file() and ids_file.is_file():
        figures["import_real"] = _run_cli(
            data, "index", "import-vectors", str(npy), str(ids_file), "--no-index"
        )
        covered = set(ids_file.read_text(encoding="utf-8").split())
    missing = [i for i in hub_ids if i not in covered]
    if missing:
        rng = np.random.default_rng(0)
        m = rng.standard_normal((len(missing), 384)).astype(np.float32)
        np.save(workdir / "extra.npy", (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float16))
        (workdir / "extra.txt").write_text("".join(i + "\n" for i in missing), encoding="utf-8")
        figures["import_random"] = _run_cli(
            data,
            "index",
            "import-vectors",
            str(workdir / "extra.npy"),
            str(workdir / "extra.txt"),
            "--no-index",
        )
    _share_onnx_export(data / "models", into_hub=True)
    figures["index_update"] = _run_cli(data, "index", "update")  # keyword index + vector index file
    _share_onnx_export(data / "models", into_hub=False)

    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # the hub never checks them here
    members = []
    with engine.begin() as conn:
        for n in range(MEMBERS):
            user = accounts.create_user(
                conn,
                hasher,
                username=f"member{n:02d}",
                email=f"member{n:02d}@load.example",
                password=PASSWORD,
                now=now(),
                admin=False,
            )
            members.append(
                {"name": user.username, "token": accounts.create_token(conn, user, "load", now()).secret}
            )
    (workdir / "members.json").write_text(json.dumps(members))
    engine.dispose()
    marker.write_text(json.dumps(figures))
    return figures


# ---------------------------------------------------------------------------------------------------- traffic


@dataclass
class Member:
    name: str
    token: str
    session: str = ""
    csrf: str = ""


@dataclass
class Pools:
    days: list[str]
    weeks: list[str]
    months: list[str]
    featured: list[str]
    papers: list[str]
    titles: list[str]
    members: list[Member] = field(default_factory=list)


def _week(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def load_pools(workdir: Path, seed: int) -> Pools:
    import sqlalchemy as sa

    from paperboy.db import make_engine

    engine = make_engine(f"sqlite:///{workdir / 'data' / 'paperboy.sqlite3'}")
    with engine.connect() as conn:
        days = [
            str(r[0]) for r in conn.execute(sa.text("SELECT DISTINCT day FROM featurings ORDER BY day DESC"))
        ]
        featured = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT arxiv_id FROM featurings"))]
        rows = list(conn.execute(sa.text("SELECT arxiv_id, title FROM papers")))
    engine.dispose()
    rng = random.Random(seed)
    featured.sort()
    rows.sort()
    # the pages readers open: 2,000 featured papers and 1,000 others (a static copy of each is made once)
    sample = rng.sample(rows, min(len(rows), 3000))
    ds = [date.fromisoformat(d[:10]) for d in days]
    return Pools(
        days=[d.isoformat() for d in ds],
        weeks=sorted({_week(d) for d in ds}, reverse=True),
        months=sorted({d.strftime("%Y-%m") for d in ds}, reverse=True),
        featured=rng.sample(featured, min(len(featured), 2000)),
        papers=[r[0] for r in sample[:1000]],
        titles=[" ".join(r[1].split()[:12]) for r in sample],
    )


def _recent(rng: random.Random, items: list[str]) -> str:
    """Mostly the newest items (readers look at this week), sometimes the archive."""
    if rng.random() < 0.7:
        return items[min(len(items) - 1, int(rng.expovariate(1 / 3)))]
    return rng.choice(items)


@dataclass(frozen=True)
class Req:
    cls: str
    method: str
    path: str
    expect: int
    member: int = -1
    body: str = ""


def make_request(rng: random.Random, pools: Pools, kind: str, cls: str, n: int) -> Req:
    from urllib.parse import quote

    if kind == "front":
        return Req(cls, "GET", "/papers", 200)
    if kind == "day":
        return Req(cls, "GET", f"/papers/date/{_recent(rng, pools.days)}", 200)
    if kind == "week":
        return Req(cls, "GET", f"/papers/week/{_recent(rng, pools.weeks)}", 200)
    if kind == "month":
        return Req(cls, "GET", f"/papers/month/{_recent(rng, pools.months)}", 200)
    if kind == "trending":
        return Req(cls, "GET", "/papers/trending", 200)
    if kind == "paper":
        pool = pools.featured if rng.random() < 0.7 and pools.featured else pools.papers
        return Req(cls, "GET", f"/papers/{rng.choice(pool)}", 200)
    if kind == "feed":
        which = rng.random()
        if which < 0.4:
            return Req(cls, "GET", "/papers/feed.atom", 200)
        if which < 0.7:
            return Req(cls, "GET", f"/papers/date/{_recent(rng, pools.days)}/feed.atom", 200)
        return Req(cls, "GET", "/papers/trending/feed.atom", 200)
    if kind == "api_daily":
        which = rng.random()
        if which < 0.4:
            return Req(cls, "GET", "/api/daily_papers", 200)
        if which < 0.8:
            return Req(cls, "GET", f"/api/daily_papers?date={_recent(rng, pools.days)}", 200)
        return Req(cls, "GET", "/api/daily_papers?sort=trending", 200)
    if kind in ("page_search", "api_search"):
        q = rng.choice(pools.titles) if rng.random() < 0.5 else rng.choice(TOPICS)
        if kind == "page_search":
            return Req(cls, "GET", f"/papers?q={quote(q)}", 200)
        return Req(cls, "GET", f"/api/papers/search?q={quote(q)}", 200)
    member = rng.randrange(len(pools.members))
    paper = _recent(rng, pools.featured) if pools.featured else rng.choice(pools.papers)
    if kind == "upvote":
        return Req(cls, "POST", f"/papers/{paper}/upvote", 303, member)
    assert kind == "comment"
    body = f"Load test comment {n}: the ablation in section {n % 7 + 1} looks **solid**; see $O(n)$."
    return Req(cls, "POST", f"/api/papers/{paper}/comments", 201, member, body)


def schedule(
    pools: Pools, rate: float, duration: float, seed: int, anonymous_only: bool = False
) -> list[Req]:
    rng = random.Random(seed)
    mix = [m for m in MIX if not anonymous_only or m[0] == "read"]
    weights = [m[2] for m in mix]
    count = max(1, int(rate * duration))
    picks = rng.choices(mix, weights=weights, k=count)
    return [make_request(rng, pools, kind, cls, n) for n, (cls, kind, _) in enumerate(picks)]


@dataclass
class Result:
    cls: str
    status: int  # 0: time-out or connection error
    latency_ms: float
    done_at: float
    expected: bool


async def _send(
    session: Any, base: str, req: Req, members: list[Member], due: float, out: list[Result], path_map: Any
) -> None:
    import aiohttp

    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    status = 0
    headers: dict[str, str] = {}
    data: Any = None
    json_body: Any = None
    path = path_map(req.path) if path_map else req.path
    if req.member >= 0:
        m = members[req.member]
        if req.expect == 303:
            headers["Cookie"] = f"pb_session={m.session}"
            data = {"csrf_token": m.csrf, "next": req.path.removesuffix("/upvote")}
        else:
            headers["Authorization"] = f"Bearer {m.token}"
            json_body = {"body": req.body}
    try:
        async with session.request(
            req.method, base + path, headers=headers, data=data, json=json_body, allow_redirects=False
        ) as resp:
            await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError, OSError):
        status = 0
    end = time.perf_counter()
    out.append(Result(req.cls, status, (end - due) * 1000, end, status == req.expect))


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


async def run_rate(
    base: str, reqs: list[Req], rate: float, members: list[Member], path_map: Any = None
) -> tuple[dict[str, Any], list[Result]]:
    """Send `reqs` at `rate` per second on a fixed schedule; latency from each scheduled time."""
    import aiohttp

    out: list[Result] = []
    connector = aiohttp.TCPConnector(limit=1000, force_close=False)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as s:
        t0 = time.perf_counter() + 0.05
        tasks = []
        for n, req in enumerate(reqs):
            due = t0 + n / rate
            delay = due - time.perf_counter() - 0.002
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(s, base, req, members, due, out, path_map)))
        await asyncio.gather(*tasks)
    return summarise(rate, out, t0), out


def summarise(rate: float, out: list[Result], t0: float) -> dict[str, Any]:
    lat = [r.latency_ms for r in out]
    ok = [r for r in out if r.expected]
    end = max((r.done_at for r in out), default=t0)
    by_class: dict[str, Any] = {}
    for cls in ("read", "search", "write"):
        rs = [r for r in out if r.cls == cls]
        if rs:
            by_class[cls] = {
                "n": len(rs),
                "p50_ms": _pct([r.latency_ms for r in rs], 50),
                "p99_ms": _pct([r.latency_ms for r in rs], 99),
                "errors": sum(not r.expected for r in rs),
            }
    statuses: dict[str, int] = {}
    for r in out:
        if not r.expected:
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    return {
        "rate": rate,
        "sent": len(out),
        "achieved": round(len(ok) / max(end - t0, 1e-9), 1),
        "p50_ms": _pct(lat, 50),
        "p95_ms": _pct(lat, 95),
        "p99_ms": _pct(lat, 99),
        "errors_5xx": sum(r.status >= 500 for r in out),
        "errors_other": sum((not r.expected) and r.status < 500 for r in out),
        "by_class": by_class,
        "unexpected_statuses": statuses,
    }


# ---------------------------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def start_hub(workdir: Path, port: int, threads: int | None, page_cache: float) -> subprocess.Popen[bytes]:
    extra = {"PAPERBOY_RATE_VOTE": "100000 per minute", "PAPERBOY_RATE_COMMENT": "100000 per minute"}
    if threads:
        extra["PAPERBOY_THREADS"] = str(threads)
    extra["PAPERBOY_PAGE_CACHE_SECONDS"] = str(page_cache)
    env = _env(workdir / "data", PAPERBOY_BASE_URL=f"http://127.0.0.1:{port}", **extra)
    log_file = (workdir / "serve.log").open("ab")
    proc = subprocess.Popen(
        [*PAPERBOY, "serve", "--no-sync", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    wait_up(f"http://127.0.0.1:{port}/papers", proc, 300)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sign_in(workdir: Path, base: str, members: list[Member]) -> None:
    """A fresh session per member (a row in the database, as signing in makes), and its CSRF token as the
    hub hands it out on a page."""
    import urllib.request

    from paperboy import accounts
    from paperboy.db import make_engine

    engine = make_engine(f"sqlite:///{workdir / 'data' / 'paperboy.sqlite3'}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for m in members:
            m.session = accounts.start_session(conn, accounts.user_named(conn, m.name), now)
    engine.dispose()
    for m in members:
        req = urllib.request.Request(base + "/about", headers={"Cookie": f"pb_session={m.session}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            html = resp.read().decode("utf-8")
        found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
            r"X-CSRF-Token&#34;: &#34;([^&]+)&#34;|\"X-CSRF-Token\": \"([^\"]+)\"", html
        )
        if not found:
            raise SystemExit(f"no CSRF token on /about for {m.name}: is the session accepted?")
        m.csrf = next(g for g in found.groups() if g)


def mirror(base: str, reqs: list[Req], folder: Path) -> dict[str, str]:
    """Fetch every distinct anonymous URL once and write it under `folder`; path → static path."""
    import urllib.request

    folder.mkdir(parents=True, exist_ok=True)
    mapping: dict[str, str] = {}
    for req in reqs:
        if req.path in mapping:
            continue
        name = hashlib.sha1(req.path.encode(), usedforsecurity=False).hexdigest()[:16] + ".html"
        target = folder / name
        if not target.exists():
            with urllib.request.urlopen(base + req.path, timeout=60) as resp:
                target.write_bytes(resp.read())
        mapping[req.path] = "/" + name
    return mapping


def start_static(folder: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = folder / "probe.html"
    probe.write_text("ok")
    wait_up(f"http://127.0.0.1:{port}/probe.html", proc, 30)
    return proc


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        log("py-spy not found: no profile")
        return None
    # --gil: only the thread holding the GIL is sampled, so a thread queueing for it is not counted against
    # the call that released it; --nonblocking: the server is never paused to be sampled
    args = ["record", "--pid", str(pid), "--format", "raw", "--rate", "97", "--gil", "--nonblocking"]
    return subprocess.Popen(
        [spy, *args, "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help="daily-listing JSON lines (gz or not)"
    )
    parser.add_argument("--papers", type=int, default=None, help="use only the first N papers of --file")
    parser.add_argument("--vectors", type=Path, default=DEFAULT_NPY, help="precomputed vectors (.npy)")
    parser.add_argument("--ids", type=Path, default=DEFAULT_IDS, help="the arXiv id of each row of --vectors")
    parser.add_argument("--rates", default="50,100,200,400", help="requests per second, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at 20 req/s before the first rate")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the hub here (default: a temp dir)")
    parser.add_argument("--threads", type=int, default=None, help="PAPERBOY_THREADS for the server")
    parser.add_argument(
        "--page-cache", type=float, default=0, help="PAPERBOY_PAGE_CACHE_SECONDS for the server (0: off)"
    )
    parser.add_argument("--no-static", action="store_true", help="skip the static-server comparison")
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy profiles of the server here")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"bench/load.py: {args.file}: no such file (pass --file)", file=sys.stderr)
        return 2
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    if not rates or min(rates) <= 0 or args.duration <= 0:
        parser.error("--rates and --duration must be positive")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `finally` then stops the servers
    temp = args.workdir is None
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / f"paperboy-load-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, rates, workdir)
    finally:
        if temp:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, rates: list[float], workdir: Path) -> int:
    build_hub(workdir, args.file, args.papers, args.vectors, args.ids)
    pools = load_pools(workdir, args.seed)
    pools.members = [
        Member(m["name"], m["token"]) for m in json.loads((workdir / "members.json").read_text())
    ]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hub = start_hub(workdir, port, args.threads, args.page_cache)
    static = None
    lines: list[dict[str, Any]] = []
    try:
        sign_in(workdir, base, pools.members)
        static_base = ""
        path_map = None
        if not args.no_static:
            all_reads = [
                r
                for n, rate in enumerate(rates)
                for r in schedule(pools, rate, args.duration, args.seed + n, True)
            ]
            mapping = mirror(base, all_reads, workdir / "static")
            sport = free_port()
            static = start_static(workdir / "static", sport)
            static_base = f"http://127.0.0.1:{sport}"
            path_map = mapping.__getitem__
        if args.warmup > 0:
            warm = schedule(pools, 20, args.warmup, args.seed + 1000)
            asyncio.run(run_rate(base, warm, 20, pools.members))
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        for n, rate in enumerate(rates):
            reqs = schedule(pools, rate, args.duration, args.seed + n)
            spy = start_profiler(hub.pid, args.profile / f"hub_{int(rate)}.txt") if args.profile else None
            line, _ = asyncio.run(run_rate(base, reqs, rate, pools.members))
            stop_profiler(spy)
            line = {"target": "hub", **line}
            if static is not None:
                time.sleep(1)
                reads = schedule(pools, rate, args.duration, args.seed + n, True)
                sline, _ = asyncio.run(run_rate(static_base, reads, rate, pools.members, path_map))
                sline = {"target": "static", **sline}
                read = line["by_class"].get("read", {})
                line["static_read_p50_ms"] = sline["p50_ms"]
                line["static_read_p99_ms"] = sline["p99_ms"]
                line["read_vs_static_p50"] = round(read.get("p50_ms", 0) / max(sline["p50_ms"], 0.1), 2)
                line["read_vs_static_p99"] = round(read.get("p99_ms", 0) / max(sline["p99_ms"], 0.1), 2)
                print(json.dumps(sline), flush=True)
            print(json.dumps(line), flush=True)
            lines.append(line)
            time.sleep(2)  # let the server drain before the next rate
    finally:
        stop(hub)
        if static is not None:
            stop(static)
    good = [
        ln for ln in lines if ln["p99_ms"] <= P99_TARGET_MS and ln["errors_5xx"] + ln["errors_other"] == 0
    ]
    best = max(good, key=lambda ln: ln["rate"]) if good else None
    final: dict[str, Any] = {"max_rate_p99_250ms": best["rate"] if best else 0}
    if best is not None:
        for key in ("p99_ms", "read_vs_static_p50", "read_vs_static_p99"):
            if key in best:
                final[f"at_max_{key}"] = best[key]
    print(json.dumps(final), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
