"""Health checks for a load balancer, systemd or Kubernetes: `GET /healthz` (liveness), `GET /readyz`
(readiness). Neither needs a session, a CSRF token or a rate-limit slot; neither may be cached.

- `/healthz` answers 200 `{"status": "ok"}` whenever the process answers. It touches no database and runs on
  the event loop, so it answers even while every worker thread waits on a slow database: a failing
  `/healthz` means "restart me".
- `/readyz` answers 200 when this process can serve: the database answers (on SQLite: a write could start
  within a second — the file is not locked by another writer), and the search index is loaded when the app
  has one. Its body adds each background loop's last success, last error and backlog (`degraded` when a
  loop's latest run failed: still 200, the pages work). 503 with the reason when the database does not
  answer: "send no traffic here for now".
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, Engine

from paperboy.scheduler import StatusBoard, describe
from paperboy.store import background
from paperboy.store.background import LoopStatus
from paperboy.web.security import SafeJSONResponse

router = APIRouter(tags=["operations"])

NO_STORE = {"Cache-Control": "no-store"}
SQLITE_WRITE_PROBE_MS = 1000  # how long /readyz waits for SQLite's write lock before it says "locked"


class _Out(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class Alive(_Out):
    status: Literal["ok"] = "ok"


class Loop(_Out):
    """One background loop of `paperboy serve` (index, huggingface, arxiv:CAT, digests)."""

    ok: bool = Field(description="False when its latest run failed.")
    last_success_at: str | None = Field(alias="lastSuccessAt", description="ISO 8601, UTC.")
    last_error_at: str | None = Field(alias="lastErrorAt", description="ISO 8601, UTC.")
    last_error: str | None = Field(alias="lastError", description="The exception's class and message.")
    failures: int = Field(description="Runs in a row that failed (0 after a success).")
    backlog: int | None = Field(
        description="Work waiting: papers to index (index), outbox mails due (digests); null: no measure."
    )
    detail: dict[str, Any] | None = Field(description="What the last success reported (backlog parts...).")
    updated_at: str | None = Field(alias="updatedAt", description="When the loop last reported.")


class Index(_Out):
    keyword_docs: int = Field(alias="keywordDocs")
    vectors: int | None = Field(description="Papers in the vector index; null without a model.")


class Ready(_Out):
    status: Literal["ok", "degraded"] = Field(description="`degraded`: some loop's latest run failed.")
    database: Literal["ok"] = "ok"
    index: Index | None = Field(description="The search indexes; null when the app searches the database.")
    loops: dict[str, Loop]
    failing: list[str] = Field(description="The loops whose latest run failed.")


class Unavailable(_Out):
    status: Literal["unavailable"] = "unavailable"
    reason: str = Field(description="What is wrong: `database: …` or `search index: …`.")
    loops: dict[str, Loop] = Field(description="This process's loops as it last saw them (from memory).")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def loop_json(s: LoopStatus) -> dict[str, Any]:
    """A loop's status as /readyz and /api/admin show it."""
    return {
        "ok": s.ok,
        "lastSuccessAt": _iso(s.last_success_at),
        "lastErrorAt": _iso(s.last_error_at),
        "lastError": s.last_error,
        "failures": s.failures,
        "backlog": s.backlog,
        "detail": s.detail,
        "updatedAt": _iso(s.updated_at),
    }


def _probe(conn: Connection) -> None:
    """The database answers; on SQLite, its write lock is free within SQLITE_WRITE_PROBE_MS (readers never
    wait in WAL mode, so a plain SELECT would say "ready" while every write times out)."""
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql("SELECT 1").scalar_one()
        return
    before = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    conn.exec_driver_sql(f"PRAGMA busy_timeout={min(int(before), SQLITE_WRITE_PROBE_MS)}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.rollback()
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(before)}")


def _unavailable(reason: str, board: StatusBoard | None) -> SafeJSONResponse:
    loops = {s.name: loop_json(s) for s in board.statuses()} if board is not None else {}
    body = {"status": "unavailable", "reason": reason, "loops": loops}
    return SafeJSONResponse(body, status_code=503, headers=NO_STORE)


@router.get("/healthz", response_model=Alive)
async def healthz() -> SafeJSONResponse:
    """Liveness: 200 `{"status": "ok"}` as long as the process answers. No database, no thread."""
    return SafeJSONResponse({"status": "ok"}, headers=NO_STORE)


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Unavailable, "description": "The database (or search index) is unavailable."}},
)
def readyz(request: Request) -> SafeJSONResponse:
    """Readiness: the database answers, the search index is loaded; each background loop's status."""
    engine: Engine = request.app.state.engine
    board: StatusBoard | None = getattr(request.app.state, "background", None)
    try:
        with engine.connect() as conn:
            _probe(conn)
            statuses = background.all_statuses(conn)
    except Exception as exc:  # whatever the driver says: not ready, and why
        return _unavailable(f"database: {describe(exc)}", board)
    index = None
    searcher = request.app.state.searcher
    if searcher is not None:
        try:
            if searcher.keyword is None:
                raise LookupError("no keyword index")
            vectors = len(searcher.vector) if searcher.vector is not None else None
            index = {"keywordDocs": searcher.keyword.count(), "vectors": vectors}
        except Exception as exc:
            return _unavailable(f"search index: {describe(exc)}", board)
    loops = {s.name: loop_json(s) for s in statuses}
    failing = [s.name for s in statuses if not s.ok]
    body = {
        "status": "degraded" if failing else "ok",
        "database": "ok",
        "index": index,
        "loops": loops,
        "failing": failing,
    }
    return SafeJSONResponse(body, headers=NO_STORE)
