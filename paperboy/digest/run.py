"""One digest round, as `paperboy digest send` and `paperboy serve` run it: plan what is due, then send
what the outbox holds (when a mailer is configured)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from jinja2 import Environment
from sqlalchemy.engine import Engine

from paperboy.digest.plan import Context, PlanReport, plan_due
from paperboy.digest.send import SendReport, send_pending
from paperboy.mailer import Mailer

if TYPE_CHECKING:
    from paperboy.search.embed import Embedder


@dataclass(frozen=True)
class RoundReport:
    plan: PlanReport
    send: SendReport | None  # None: no mailer (PAPERBOY_SMTP_URL unset) or a dry run

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "due": self.plan.due,
            "planned": self.plan.planned,
            "mails": self.plan.mails,
            "empty": self.plan.empty,
            "already_planned": self.plan.already,
        }
        if self.send is not None:
            out.update(
                sent=self.send.sent,
                retry_later=self.send.retried,
                failed=self.send.failed,
                cancelled=self.send.cancelled,
            )
            if self.send.stopped:
                out["stopped"] = self.send.stopped
        return out


def digest_round(
    engine: Engine,
    as_of: datetime,
    ctx: Context,
    env: Environment,
    mailer: Mailer | None,
    now: Callable[[], datetime],
    *,
    rate: float,
    embedder: Embedder | Callable[[], Embedder | None] | None = None,
    dry_run: bool = False,
    lease: timedelta = timedelta(minutes=10),
) -> RoundReport:
    """Plan what is due at `as_of`, then (with a mailer) send the outbox; `lease`: how long a row left
    `sending` by a sender that died waits before another sender takes it again."""
    plan = plan_due(engine, as_of, ctx, env, now=now, embedder=embedder, dry_run=dry_run)
    if dry_run or mailer is None:
        return RoundReport(plan, None)
    return RoundReport(plan, send_pending(engine, mailer, now, sender=ctx.sender, rate=rate, lease=lease))
