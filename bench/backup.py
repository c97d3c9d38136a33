"""Backing up a SQLite hub while it is written to: SQLite's backup API against `VACUUM INTO`.

    python bench/backup.py                              # 74,728 papers of ../shared/data, 3 rounds
    python bench/backup.py --workdir /var/tmp/pb-backup # build the database there once; reuse it
    python bench/backup.py --file tests/fixtures/arxiv_listing_small.jsonl --rounds 1   # CI

**The database**: the corpus's papers through the real ingest (`run_ingest`), and a 384-float vector per
paper in `embeddings` (random unit vectors: the size of the real ones), migrated to head; built once per
--workdir and reused while its build.json matches.

**Each round**, for each method in turn (`paperboy.db.backup.backup_sqlite`, integrity check off so that
the copy alone is timed), a writer in another process commits one row per transaction (`BEGIN IMMEDIATE`,
insert, commit, as the hub's writes do) into the same file, --write-rate commits a second on a fixed
schedule, before, during and after the copy. Then `PRAGMA integrity_check` of the copy is timed on its own,
and the copy is checked to hold every row the writer had committed before the copy started.

One untimed copy first puts the file in the page cache. Prints one JSON line per method (medians over the
rounds): copy_s, copy_cpu_s (CPU time of the copying process), check_s, bytes, writes_during (commits
the writer made while the copy ran), write_p50_ms / write_p99_ms / write_max_ms during the copy, and
idle_write_p99_ms (the writer alone, the same length of time, for comparison); then a line with the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
BUILD_FORMAT = 1
DIM = 384


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _lines(path: Path) -> Iterator[str]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        yield from f


def _pages(path: Path, limit: int | None) -> Iterator[Any]:
    from paperboy.models import Page, Record
    from paperboy.sources.snapshot import parse_line

    batch: list[Record] = []
    n = 0
    for n, line in enumerate(_lines(path), 1):
        if limit is not None and n > limit:
            break
        batch.append(Record(parse_line(json.loads(line), f"{path}:{n}"), None))
        if len(batch) >= 2000:
            yield Page(batch, {"line": n})
            batch = []
    if batch:
        yield Page(batch, {"line": n})


def build(workdir: Path, corpus: Path, limit: int | None) -> Path:
    """The database in workdir (reused when build.json says it was made from the same input)."""
    import sqlalchemy as sa

    from paperboy.db import make_engine, transaction, upgrade
    from paperboy.ingest import run_ingest
    from paperboy.store import embeddings

    want = {"format": BUILD_FORMAT, "corpus": str(corpus.resolve()), "papers": limit}
    marker, path = workdir / "build.json", workdir / "paperboy.sqlite3"
    if marker.is_file() and path.is_file() and json.loads(marker.read_text()).get("want") == want:
        log(f"reusing {path}")
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    for leftover in workdir.glob("paperboy.sqlite3*"):
        leftover.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    now = lambda: datetime.now(UTC)  # noqa: E731
    start = time.perf_counter()
    result = run_ingest(engine, "bench-backup", _pages(corpus, limit), now, cursor_name="bench-backup")
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT arxiv_id FROM papers ORDER BY arxiv_id"))]
    rng = np.random.default_rng(0)
    for i in range(0, len(ids), 2000):
        chunk = ids[i : i + 2000]
        m = rng.standard_normal((len(chunk), DIM)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        rows = [(a, m[j].tobytes(), f"h{j}") for j, a in enumerate(chunk)]
        with transaction(engine) as conn:
            embeddings.save(conn, "bench-model", DIM, rows, now())
    engine.dispose()
    built = {"want": want, "papers": result.counts.inserted, "build_s": round(time.perf_counter() - start, 1)}
    marker.write_text(json.dumps(built))
    log(f"built {path}: {built}")
    return path


def _writer(path: str, rate: float, stop: Any, ready: Any, out: Any) -> None:
    """Commit one row per transaction, `rate` a second on a fixed schedule, until `stop`; send back
    (commit time, latency s) pairs, latency counted from the scheduled time (a stall shows in full)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_writes (id INTEGER PRIMARY KEY, at REAL, body TEXT)")
    conn.execute("DELETE FROM bench_writes")  # the last round's rows: the file stays the same size
    ready.set()
    samples = []
    t0 = time.perf_counter()
    while not stop.is_set():
        t0 += 1.0 / rate
        pause = t0 - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_writes (at, body) VALUES (?, ?)", (t0, "x" * 200))
        conn.execute("COMMIT")
        samples.append((time.perf_counter(), time.perf_counter() - t0))
    conn.close()
    out.send(samples)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_round(source: Path, scratch: Path, method: str, rate: float) -> dict[str, Any]:
    from paperboy.db.backup import backup_sqlite, integrity

    target = scratch / f"copy-{method}.sqlite3"
    target.unlink(missing_ok=True)
    ctx = mp.get_context("spawn")
    stop, ready = ctx.Event(), ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    writer = ctx.Process(target=_writer, args=(str(source), rate, stop, ready, send))
    writer.start()
    ready.wait(60)
    time.sleep(0.5)
    with sqlite3.connect(source) as c:  # rows committed before the copy starts must be in it
        committed = c.execute("SELECT max(id) FROM bench_writes").fetchone()[0] or 0
    began, cpu = time.perf_counter(), time.process_time()
    copied = backup_sqlite(source, target, method=method, check=False)  # type: ignore[arg-type]
    ended, cpu = time.perf_counter(), time.process_time() - cpu
    time.sleep(ended - began)  # the writer alone for as long, to compare
    stop.set()
    samples = receive.recv()
    writer.join(60)
    during = [lat * 1000 for at, lat in samples if began <= at <= ended]
    idle = [lat * 1000 for at, lat in samples if ended < at <= ended + (ended - began)]
    conn = sqlite3.connect(target)
    t0 = time.perf_counter()
    verdict = integrity(conn)
    check_s = time.perf_counter() - t0
    in_copy = conn.execute("SELECT count(*) FROM bench_writes WHERE id <= ?", (committed,)).fetchone()[0]
    with sqlite3.connect(source) as c:
        expected = c.execute("SELECT count(*) FROM bench_writes WHERE id <= ?", (committed,)).fetchone()[0]
    conn.close()
    target.unlink()
    return {
        "copy_s": copied.seconds,
        "copy_cpu_s": cpu,
        "check_s": check_s,
        "bytes": copied.bytes,
        "integrity": verdict,
        "missing_rows": expected - in_copy,
        "writes_during": len(during),
        "write_p50_ms": _percentile(during, 0.5),
        "write_p99_ms": _percentile(during, 0.99),
        "write_max_ms": max(during, default=0.0),
        "idle_write_p99_ms": _percentile(idle, 0.99),
    }


def main(argv: list[str] | None = None) -> int:
    from paperboy.db.backup import backup_sqlite

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, default=CORPUS, help="JSON-lines corpus (.gz or plain).")
    parser.add_argument("--papers", type=int, default=None, help="Use at most this many papers.")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Build the database here once and reuse it."
    )
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per method (medians are printed).")
    parser.add_argument("--write-rate", type=float, default=200.0, help="The writer's commits per second.")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        raise SystemExit(f"no corpus at {args.file}: give one with --file")
    scratch = Path(tempfile.mkdtemp(prefix="pb-backup-"))
    workdir = args.workdir or scratch / "db"
    try:
        source = build(workdir, args.file, args.papers)
        results: dict[str, list[dict[str, Any]]] = {"backup-api": [], "vacuum-into": []}
        warm = scratch / "warm.sqlite3"  # one untimed copy: the file in the page cache for every round
        backup_sqlite(source, warm, check=False)
        warm.unlink()
        for r in range(args.rounds):
            for method in results:
                results[method].append(one_round(source, scratch, method, args.write_rate))
                log(f"round {r + 1} {method}: {results[method][-1]}")
        lines = {}
        for method, runs in results.items():
            line: dict[str, Any] = {"method": method, "rounds": len(runs)}
            for key in runs[0]:
                values = [run[key] for run in runs]
                if key == "integrity":
                    line[key] = "ok" if all(v == "ok" for v in values) else values
                elif key == "missing_rows":
                    line[key] = max(values)
                else:
                    line[key] = round(statistics.median(values), 3)
            lines[method] = line
            print(json.dumps(line), flush=True)
        api, vac = lines["backup-api"], lines["vacuum-into"]
        print(
            json.dumps(
                {
                    "papers": json.loads((workdir / "build.json").read_text())["papers"],
                    "database_bytes": source.stat().st_size,
                    "vacuum_over_backup_api_copy_s": round(vac["copy_s"] / max(api["copy_s"], 1e-9), 2),
                    "vacuum_over_backup_api_bytes": round(vac["bytes"] / max(api["bytes"], 1), 3),
                }
            ),
            flush=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
