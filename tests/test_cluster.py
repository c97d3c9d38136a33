"""A small cluster, as bench/cluster.py --small builds it: PostgreSQL, redis-server, two `paperboy web` and
two `paperboy worker` processes, an SMTP server and a recorded Hugging Face, all on loopback, over the
repo's 60-paper fixture (no embedding model). One run, every check of issue 13's point 5 but embedding:

- an upvote through node A is counted at once on B (read back with another member's token and anonymously),
  an unvote through B at once on A;
- wrong passwords for one account spread over both nodes: 10 are checked, then 429, as on one node;
- with both workers up, each Hugging Face slot (every 3 s) is queued once and run once, and a digest round
  (every 4 s) mails each subscriber once (Message-IDs counted at the SMTP server);
- node A and the worker running an ingest are killed with SIGKILL under an open-loop load of reads,
  searches, upvotes and comments: every acknowledged write is in the database, B answers every request, and
  the killed worker's job is taken again by the other and finished, though the next slot was already
  waiting behind it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.engine import Engine

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[1] / "bench" / "cluster.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cluster", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cluster"] = module
    spec.loader.exec_module(module)
    return module


def test_a_small_cluster_shares_votes_limits_schedules_and_mail_and_survives_kills(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found (apt-get install redis-server; scripts/test.sh does it as root)")
    for package in ("redis", "aiohttp", "aiosmtpd"):
        pytest.importorskip(package, reason=f"{package} is not installed (pip install '.[test]')")
    bench = load_bench()
    url = postgres_engine.url.render_as_string(hide_password=False)
    with bench.redis_server(tmp_path) as redis_url:
        report = bench.run(url, tmp_path / "cluster", redis_url, bench.small_options())
    print(f"\n{report}")

    vote = report["vote"]
    assert vote["counted"] == vote["before"] + 1
    assert vote["seen_on_others"] == {"B": {"member": vote["counted"], "anonymous": vote["counted"]}}
    assert vote["uncounted"] == vote["before"] and vote["seen_after_unvote"] == {"A": vote["before"]}

    signin = report["signin_limit"]
    assert signin["codes"] == "x" * 10 + "L" * 20, signin  # 10 checked across both nodes, as on one

    digests = report["digests"]
    assert digests["received"] == digests["distinct_message_ids"] == digests["subscribers"] == 5, digests
    assert digests["every_subscriber_once"] and digests["outbox"] == {"sent": 5}, digests
    assert digests["planning_rounds"] >= 2, digests  # later rounds planned nothing again

    schedule = report["schedule"]
    assert schedule["slots_queued"] == schedule["distinct_slots"], schedule
    assert schedule["ingest_runs"].get("ok") == schedule["succeeded"], schedule
    assert schedule["slots_with_both_workers_up"] >= 3, schedule
    assert set(schedule["taken_by"]) <= {"W1", "W2"} and schedule["taken_by"], schedule

    kill = report["kill"]
    assert kill["acknowledged_writes"] > 20, kill
    assert kill["lost_votes"] == 0 and kill["lost_comments"] == 0, kill
    assert kill["survivors_before_kill"]["errors"] == 0, kill
    assert kill["survivors_after_kill"]["errors"] == 0 and kill["survivors_after_kill"]["requests"] > 0, kill
    assert kill["worker_tasks_held_at_kill"] == ["ingest_huggingface"], kill
    assert kill["held_jobs"] == [{"task": "ingest_huggingface", "status": "succeeded", "attempts": 2}], kill
    assert schedule["taken_again_after_the_kill"] == kill["worker_jobs_held_at_kill"], schedule
    assert report["ok"], report
