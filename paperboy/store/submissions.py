"""Member submissions, as the featurings table records them (`source = 'member'`, the member's username as
`submitter_name`). Writing one goes through `papers.upsert_records` like every other featuring."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import featurings

MEMBER_SOURCE = "member"


def submitted_ids(conn: Connection, username: str, limit: int) -> list[str]:
    """The papers the member put on the daily list, the latest submission first.

    Only featurings made by members of this hub: an imported Hugging Face submitter who happens to share
    the name is not this member."""
    stmt = (
        sa.select(featurings.c.arxiv_id)
        .where(featurings.c.source == MEMBER_SOURCE, featurings.c.submitter_name == username)
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
