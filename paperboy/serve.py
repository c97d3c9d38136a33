"""What `paperboy serve` does around the web app: the first-start import, the sync schedule, the digest
loop, the index worker, and storing the HTML of comments that lack it.

An entry-point helper (like cli): it reads Settings and builds the clients the jobs need. Every background
loop here survives any exception (logged, backed off, retried) and reports its last success, last error and
backlog on a `StatusBoard` (table `background_status`: `paperboy index status`, /admin, /readyz).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from paperboy import jobs
from paperboy.community import comments
from paperboy.config import Settings, normalize_base_url, url_host
from paperboy.errors import EmbeddingUnavailable, PaperboyError
from paperboy.scheduler import (
    Backoff,
    Job,
    Scheduler,
    StatusBoard,
    describe,
    next_arxiv_run,
    next_hf_run,
)
from paperboy.sources.http import PoliteClient
from paperboy.store import embeddings as embedding_store
from paperboy.store import outbox as outbox_store
from paperboy.store.papers import count_papers

if TYPE_CHECKING:  # the search stack (numpy, tantivy, the model) loads only when a command needs it
    from paperboy.digest.plan import Context as DigestContext
    from paperboy.search.embed import Embedder
    from paperboy.search.hybrid import Searcher
    from paperboy.search.keyword import KeywordIndex
    from paperboy.search.vector import VectorIndex

Clock = Callable[[], datetime]
Progress = Callable[[int, int | None], None]
log = logging.getLogger("paperboy.serve")


def first_start(
    engine: Engine, settings: Settings, now: Clock, client: PoliteClient, echo: Callable[[str], None]
) -> str:
    """Fill an empty database: recent Hugging Face days when sync is on and the network allows, else the
    bundled demo papers. Returns what it did ("existing", "huggingface" or "demo")."""
    with engine.connect() as conn:
        if count_papers(conn) > 0:
            return "existing"
    if settings.sync:
        echo(
            f"empty database: importing the last {settings.hf_initial_days} days"
            f" from {settings.hf_endpoint} …"
        )
        try:
            result = jobs.ingest_hf_api(
                engine, client, settings.hf_endpoint, now, default_days=settings.hf_initial_days
            )
            if result.counts.inserted > 0:
                echo(f"imported {result.counts.inserted} papers from Hugging Face")
                return "huggingface"
            echo("Hugging Face returned no papers")
        except PaperboyError as exc:
            echo(f"could not reach Hugging Face ({exc})")
    result = jobs.load_demo(engine, now)
    echo(f"loaded {result.counts.inserted} bundled demo papers (run `paperboy ingest …` for real data)")
    return "demo"


def render_stale_comments(engine: Engine, batch: int = 200) -> int:
    """Render and store the HTML of every comment that has none, or an older renderer's: rows written before
    migration 0011, or before an upgrade that raised `paperboy.markdown.VERSION`. Batch by batch, each in its
    own transaction; how many comments it looked at (0 once all are current)."""
    done, after = 0, 0
    while True:
        with engine.begin() as conn:
            ids = comments.rerender_stale(conn, after, batch)
        if not ids:
            return done
        done += len(ids)
        after = ids[-1]


def start_comment_html(engine: Engine) -> threading.Thread:
    """`render_stale_comments` in a background thread, once per start: the server answers meanwhile (a view
    renders a comment whose HTML is not stored yet, and stores nothing). A failure is logged; the next start
    tries again."""

    def run() -> None:
        try:
            count = render_stale_comments(engine)
        except Exception:  # the server goes on: views render these comments until the next start
            log.exception("could not store the HTML of older comments")
            return
        if count:
            log.info("stored the HTML of %d comments rendered again", count)

    thread = threading.Thread(target=run, name="comment-html", daemon=True)
    thread.start()
    return thread


def build_scheduler(
    engine: Engine, settings: Settings, now: Clock, board: StatusBoard | None = None
) -> Scheduler:
    """The jobs of the sync schedule, from the settings: Hugging Face, then each followed arXiv category.
    Each reports to `board` under its name (`huggingface`, `arxiv:cs.CL`)."""
    sched_jobs: list[Job] = []
    if settings.hf_sync:
        hf = PoliteClient(retries=settings.http_retries, timeout=settings.http_timeout)
        every = timedelta(minutes=settings.hf_sync_minutes)
        sched_jobs.append(
            Job(
                "huggingface",
                lambda last, current: next_hf_run(last, current, every),
                partial(jobs.ingest_hf_api, engine, hf, settings.hf_endpoint, now, default_days=1),
            )
        )
    if settings.arxiv_categories:
        arxiv = PoliteClient(
            min_interval=settings.arxiv_min_interval,
            retries=settings.http_retries,
            timeout=settings.http_timeout,
        )
        for category in settings.arxiv_categories:
            sched_jobs.append(
                Job(
                    f"arxiv:{category}",
                    next_arxiv_run,
                    partial(
                        jobs.ingest_arxiv,
                        engine,
                        arxiv,
                        settings.arxiv_rss_url,
                        settings.arxiv_api_url,
                        category,
                        now,
                        cross_lists=settings.arxiv_cross_lists,
                        feature_new=settings.feature_arxiv_new,
                    ),
                )
            )
    return Scheduler(sched_jobs, now, board=board if board is not None else StatusBoard(engine, now))


# --- the public URL ----------------------------------------------------------------------------------------


def serving_settings(settings: Settings, echo: Callable[[str], None]) -> Settings:
    """The settings `paperboy serve` runs with: PAPERBOY_BASE_URL when set; else the URL it serves at, so
    that every link in mail and feeds names this server (told once through `echo`): http://HOST:PORT, with
    `localhost` for a loopback address and this machine's name when it listens on all interfaces."""
    if settings.base_url:
        return settings
    url = settings.named_url
    if url is None:
        host = "localhost"
        if settings.host.strip().strip("[]") in ("0.0.0.0", "::", "", "*"):  # noqa: S104 - compares, binds nothing
            host = socket.getfqdn() or socket.gethostname() or "localhost"
        try:
            url = normalize_base_url(f"http://{url_host(host)}:{settings.port}")
        except ValueError:  # a machine name no URL can hold
            url = f"http://localhost:{settings.port}"
    echo(
        f"PAPERBOY_BASE_URL is not set: links in mail and feeds use {url}, where this server listens;"
        " set PAPERBOY_BASE_URL to the address readers use"
    )
    return settings.model_copy(update={"base_url": url})


# --- the first account -------------------------------------------------------------------------------------


def only_this_machine(settings: Settings) -> bool:
    """Whether only this machine reaches the hub: it listens on a loopback address (not all interfaces) and
    its public URL, when set, names a loopback host too (a proxy in front makes the hub public)."""
    import ipaddress
    from urllib.parse import urlsplit

    def loopback(host: str) -> bool:
        name = host.strip().strip("[]").lower()
        if name in ("localhost", "localhost.") or name.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    public = urlsplit(settings.base_url).hostname if settings.base_url else None
    return loopback(settings.host) and (public is None or loopback(public))


def first_account_code(
    engine: Engine, settings: Settings, echo: Callable[[str], None], *, shared: bool = False
) -> str | None:
    """The one-time code the first sign-up must give (it makes the admin), told through `echo`, when the hub
    has no member yet and others can reach it; None otherwise (a hub on this machine only signs its first
    account up as before). A new code at every start until someone has signed up; with `shared` (web nodes
    of many, behind one balancer) the code every node derives from the shared secret key, so the sign-up
    form may reach any of them."""
    from paperboy.accounts import derived_setup_code, new_setup_code
    from paperboy.store.users import count_users

    if only_this_machine(settings):
        return None
    with engine.connect() as conn:
        if count_users(conn) > 0:
            return None
    code = derived_setup_code(secret_key(settings)) if shared else new_setup_code()
    echo(
        f"no members yet: the first account, made at {settings.public_url}/signup, becomes the admin and "
        f"must give the setup code {code}"
    )
    return code


# --- digests -----------------------------------------------------------------------------------------------

DIGEST_EVERY = timedelta(minutes=5)


def digest_context(settings: Settings, model: str | None = None) -> DigestContext:
    """What digest mails need to know about this hub; `model`: the embedding model whose stored vectors
    topics are compared with (default: the configured one)."""
    from paperboy.digest.plan import Context
    from paperboy.search.embed import DEFAULT_MODEL

    return Context(
        site_name=settings.site_name,
        public_url=settings.public_url,
        sender=settings.sender,
        key=secret_key(settings),
        model=model or settings.embedding_model or DEFAULT_MODEL,
    )


def build_digest_scheduler(
    engine: Engine,
    settings: Settings,
    now: Clock,
    embedder: Embedder | None = None,
    board: StatusBoard | None = None,
) -> Scheduler:
    """Every 5 minutes, in its own thread (a long ingest never delays mail): plan the digests that have come
    due and send what the outbox holds. Without PAPERBOY_SMTP_URL digests are planned but wait unsent.
    It reports to `board` as `digests`, its backlog the outbox rows due.

    Its `wake()` sends the outbox at once: the web app calls it (`app.state.on_outbox`) after a request has
    committed an outbox row, so a confirmation mail leaves within seconds, not at the next 5-minute round.
    The 5-minute round stays the fallback for rows queued by another process (a second server, cron); a
    cross-process signal (PostgreSQL LISTEN/NOTIFY) would call the same `wake()`."""
    from paperboy.digest.run import digest_round
    from paperboy.digest.send import send_pending
    from paperboy.mailer import SmtpMailer
    from paperboy.templating import make_environment

    ctx = digest_context(settings, embedder.model if embedder is not None else None)
    env = make_environment()
    mailer = (
        SmtpMailer(settings.smtp_url.get_secret_value(), connections=settings.smtp_connections)
        if settings.smtp_url is not None
        else None
    )

    def one_round() -> object:
        report = digest_round(
            engine, now(), ctx, env, mailer, now, rate=settings.mail_rate, embedder=embedder
        )
        return report.summary()

    def send_now() -> object:
        assert mailer is not None  # noqa: S101 - send_now is only scheduled when a mailer exists
        return send_pending(engine, mailer, now, sender=ctx.sender, rate=settings.mail_rate)

    def due_mails() -> int:
        with engine.connect() as conn:
            return outbox_store.count_due(conn, now())

    job = Job(
        "digests",
        lambda last, current: current if last is None else last + DIGEST_EVERY,
        one_round,
        backlog=due_mails,
        on_wake=send_now if mailer is not None else None,
    )
    return Scheduler([job], now, board=board if board is not None else StatusBoard(engine, now))


# --- search indexes ----------------------------------------------------------------------------------------


def secret_key(settings: Settings) -> bytes:
    """PAPERBOY_SECRET_KEY, or the random key kept in data_dir/secret_key (made owner-only on first use)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < 32:
        raise PaperboyError(f"{path} holds too short a key: delete it to have a new one made")
    return key.encode()


def index_dir(settings: Settings) -> Path:
    """Where the search indexes live: beside the SQLite file, in `data_dir/index/`."""
    return settings.data_dir / "index"


def load_embedder_or_none(settings: Settings, echo: Callable[[str], None] = log.warning) -> Embedder | None:
    """The configured embedding model, or None (keyword-only search) with the reason told once."""
    from paperboy.search.embed import load_embedder

    try:
        return load_embedder(
            settings.embedding_model,
            threads=settings.embedding_threads,
            backend=settings.embedding_backend,
            cache_dir=settings.data_dir / "models",
        )
    except EmbeddingUnavailable as exc:
        echo(f"search by meaning is off: {exc}")
        return None


@dataclass
class SearchParts:
    keyword: KeywordIndex
    vector: VectorIndex | None
    embedder: Embedder | None

    def searcher(self) -> Searcher:
        from paperboy.search.hybrid import Searcher

        return Searcher(self.keyword, self.vector, self.embedder)


def open_search(
    settings: Settings,
    engine: Engine,
    *,
    embedder: Embedder | None = None,
    with_vectors: bool = True,
    sync: bool = True,
    progress: Progress | None = None,
    root: Path | None = None,
    snapshot: bool = False,
) -> SearchParts:
    """Open the keyword index and, with an embedder, the vector index (in `root`, default `index_dir`);
    rebuilt from the database when unusable, and brought up to date unless `sync` is False (then the
    IndexWorker does it). `snapshot`: first restore what is missing (or far behind) from the newest index
    snapshot in the database (search/snapshot.py), so that only the changes since it are synced."""
    from paperboy.search import indexer

    root = root or index_dir(settings)
    if snapshot:
        from paperboy.search.snapshot import restore_latest

        model = embedder.model if with_vectors and embedder is not None else None
        restore_latest(engine, root, model)
    keyword = indexer.open_keyword_index(root / "keyword", engine, progress, sync=sync)
    vector = None
    if with_vectors and embedder is not None:
        vector = indexer.open_vector_index(
            root / "vectors.hnsw", engine, embedder.model, embedder.dim, sync=sync
        )
    return SearchParts(keyword, vector, embedder)


def build_searcher(settings: Settings, engine: Engine) -> Searcher:
    """The hybrid searcher `paperboy serve` and `paperboy search` use (keyword-only without a model)."""
    return open_search(settings, engine, embedder=load_embedder_or_none(settings)).searcher()


BACKLOG_EVERY = 60.0  # seconds: how stale the index worker's backlog may get while it idles


class IndexWorker:
    """Keeps the indexes current while the server runs: keyword at once, vectors behind it, in one thread.

    Each tick: put changed papers into the keyword index (fast), add vectors another process stored, then
    embed up to `batch * batches_per_tick` pending papers. It naps when there is nothing to do. Ingest never
    waits for it; searches keep answering from what is indexed.

    A tick that fails for any reason (the database locked or restarting, a constraint, the model, the disk)
    is logged and retried after a back-off (1 s doubling to 5 minutes, reset by a success); the thread never
    ends. After each tick it reports to `board` as `index`, with its backlog: papers not yet in the keyword
    index plus papers waiting for a vector (`detail` holds the two counts).
    """

    def __init__(
        self,
        engine: Engine,
        parts: SearchParts,
        now: Clock,
        batch: int = 32,
        batches_per_tick: int = 8,
        *,
        board: StatusBoard | None = None,
        backoff: Backoff | None = None,
        embed: bool = True,
        name: str = "index",
    ) -> None:
        self.engine = engine
        self.parts = parts
        self.embed = embed  # False on a web node of many: workers embed, it only follows (`sync_vector`)
        self.now = now
        self.batch = batch
        self.batches_per_tick = batches_per_tick
        self.health = (board if board is not None else StatusBoard(engine, now)).loop(name)
        self.backoff = backoff or Backoff()
        self._backlog_at: float | None = None  # monotonic time the backlog was last counted
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """One round of work; returns how many papers were indexed or embedded (0: idle)."""
        from paperboy.search import indexer

        done = indexer.sync_keyword(self.engine, self.parts.keyword)
        if self.parts.vector is not None and self.parts.embedder is not None:
            done += indexer.sync_vector(self.engine, self.parts.vector, self.parts.embedder.model)
        if self.embed and self.parts.vector is not None and self.parts.embedder is not None:
            done += indexer.embed_pending(
                self.engine,
                self.parts.embedder,
                self.parts.vector,
                self.now,
                batch=self.batch,
                limit=self.batch * self.batches_per_tick,
                should_stop=self._stop.is_set,
            )
        return done

    def backlog(self) -> dict[str, int]:
        """The work waiting: papers not in the keyword index and, with a model, papers without a current
        vector."""
        with self.engine.connect() as conn:
            papers = count_papers(conn)
            vectors = (
                embedding_store.count_pending(conn, self.parts.embedder.model)
                if self.parts.vector is not None and self.parts.embedder is not None
                else None
            )
        out = {"keyword": max(0, papers - self.parts.keyword.count())}
        if vectors is not None:
            out["vectors"] = vectors
        return out

    def run_once(self) -> float:
        """One tick with its report; never raises. Returns how long to wait before the next one (0: go on
        at once, -1: idle, nap).

        The backlog is counted after a tick that did work or followed a failure, and at least every
        BACKLOG_EVERY seconds (counting papers without a vector takes ~150 ms over 75,000 papers: not on
        every idle tick)."""
        try:
            done = self.tick()
            stale = self._backlog_at is None or monotonic() - self._backlog_at >= BACKLOG_EVERY
            backlog = self.backlog() if done > 0 or self.backoff.failures > 0 or stale else None
        except Exception as exc:  # anything: the thread must outlive a locked or restarting database
            wait = self.backoff.failed()
            if self.backoff.failures == 1:
                log.exception("indexer: tick failed; retrying in %.3g s", wait)
            else:
                log.warning(
                    "indexer: tick failed %d times in a row (%s); retrying in %.3g s",
                    self.backoff.failures,
                    describe(exc),
                    wait,
                )
            self.health.failed(exc)
            return wait
        self.backoff.reset()
        if backlog is None:
            self.health.succeeded()  # the last count stands
        else:
            self._backlog_at = monotonic()
            self.health.succeeded(backlog=sum(backlog.values()), detail=backlog)
        return 0.0 if done > 0 else -1.0

    def _loop(self, idle_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                wait = self.run_once()
            except Exception:  # pragma: no cover - run_once catches everything; belt and braces
                log.exception("indexer: unexpected failure; carrying on")
                wait = idle_seconds
            if wait < 0:
                wait = idle_seconds
            if wait > 0:
                self._stop.wait(wait)

    def start(self, idle_seconds: float = 10.0) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(idle_seconds,), name="paperboy-index", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.health.flush()
        if self.parts.vector is not None:
            self.parts.vector.save()
        self.parts.keyword.close()
