"""Which Hugging Face days a run fetches, and the bundled demo set."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.engine import Engine

from paperboy import jobs
from paperboy.errors import InvalidInput
from paperboy.store import papers as store

SAT, SUN, MON, TUE, WED = (date(2026, 11, d) for d in (21, 22, 23, 24, 25))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"day": TUE}, [TUE]),  # --date: exactly that day, cursor ignored
        ({"since": SAT}, [MON, TUE, WED]),  # weekends skipped
        ({"since": SAT, "cursor_day": TUE}, [TUE, WED]),  # resume from the cursor, re-fetching its day
        ({"since": WED, "cursor_day": MON}, [WED]),  # an explicit later --since wins over an older cursor
        ({}, [MON, TUE, WED]),  # default window: default_days back from today
        ({"cursor_day": TUE}, [TUE, WED]),
    ],
)
def test_hf_days(kwargs: dict[str, date], expected: list[date]) -> None:
    args = {"today": WED, "cursor_day": None, "day": None, "since": None, "default_days": 5}
    assert jobs.hf_days(**{**args, **kwargs}) == expected  # type: ignore[arg-type]


def test_hf_days_rejects_the_future() -> None:
    with pytest.raises(InvalidInput, match="future"):
        jobs.hf_days(today=MON, cursor_day=None, day=WED, since=None, default_days=3)
    with pytest.raises(InvalidInput, match="future"):
        jobs.hf_days(today=MON, cursor_day=None, day=None, since=WED, default_days=3)


def test_demo_set_loads_once_and_is_featured_today(sqlite_engine: Engine) -> None:
    now = datetime(2026, 11, 25, 8, tzinfo=UTC)
    first = jobs.load_demo(sqlite_engine, lambda: now)
    assert first.counts.inserted >= 10
    assert first.counts.featured == first.counts.inserted
    again = jobs.load_demo(sqlite_engine, lambda: now)
    assert again.counts.changed == 0
    with sqlite_engine.connect() as conn:
        assert store.latest_featured_day(conn) == now.date()
        hnsw = store.get_paper(conn, "1603.09320")
    assert hnsw is not None
    assert hnsw.paper.title.startswith("Efficient and robust approximate nearest neighbor search")
    assert hnsw.featuring is not None and hnsw.featuring.source == "demo"
