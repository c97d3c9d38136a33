"""Member submissions, as the featurings table records them (`source = 'member'`, the member's account id as
`submitter_user_id` beside their username as `submitter_name`, which is only what is shown). Writing one goes
through `papers.upsert_records` like every other featuring."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import featurings

MEMBER_SOURCE = "member"


def submitted_ids(conn: Connection, user_id: int, limit: int) -> list[str]:
    """The papers the member (by account id) put on the daily list, the latest submission first.

    Matched by id, never by name: an imported Hugging Face submitter who happens to share the name is not
    this member, and neither is a deleted account whose username was registered again (its submissions
    have no account any more: ON DELETE SET NULL)."""
    stmt = (
        sa.select(featurings.c.arxiv_id)
        .where(featurings.c.source == MEMBER_SOURCE, featurings.c.submitter_user_id == user_id)
        .order_by(
            featurings.c.submitted_at.desc().nulls_last(), featurings.c.day.desc(), featurings.c.id.desc()
        )
        .limit(limit)
    )
    return list(dict.fromkeys(conn.execute(stmt).scalars()))


def is_featured(conn: Connection, arxiv_id: str) -> bool:
    """Whether the paper was ever on the daily list, on any day."""
    stmt = sa.select(featurings.c.id).where(featurings.c.arxiv_id == arxiv_id).limit(1)
    return conn.execute(stmt).first() is not None
