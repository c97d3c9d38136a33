"""paperboy.search.vector.VectorIndex: incremental updates, recall, filters, persistence, damage, threads."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from paperboy.errors import IndexUnusable, PaperboyError
from paperboy.search.vector import VectorIndex

DIM = 32
MODEL = "test-model"


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    m = rng.normal(size=(n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def ids_of(n: int, start: int = 0) -> list[str]:
    return [f"2601.{i:05d}" for i in range(start, start + n)]


def exact(matrix: np.ndarray, ids: list[str], q: np.ndarray, k: int) -> list[str]:
    sims = matrix @ q
    return [ids[j] for j in np.argsort(-sims)[:k]]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    return ids_of(3000), unit(rng, 3000)


@pytest.fixture(scope="module")
def built(corpus: tuple[list[str], np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    ids, m = corpus
    index = VectorIndex.create(tmp_path_factory.mktemp("v") / "vectors.hnsw", DIM, MODEL)
    index.upsert(ids, m)
    return index


def test_add_update_delete_incrementally(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index = VectorIndex.create(tmp_path / "v.hnsw", DIM, MODEL)
    assert len(index) == 0 and index.search(unit(rng, 1)[0], 5) == []
    ids, m = ids_of(200), unit(rng, 200)
    for s in range(0, 200, 50):  # in several batches, as ingest does
        index.upsert(ids[s : s + 50], m[s : s + 50])
    assert len(index) == 200 and "2601.00007" in index and "nope" not in index
    top = index.search(m[7], 3)
    assert top[0][0] == "2601.00007" and top[0][1] == pytest.approx(1.0, abs=2e-3)
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)

    new = unit(rng, 1)[0]
    index.upsert(["2601.00007"], new)  # replace: same id, new vector
    assert len(index) == 200
    assert index.search(new, 1)[0][0] == "2601.00007"
    assert "2601.00007" not in [i for i, _ in index.search(m[7], 3) if _ > 0.99]
    stored = index.get("2601.00007")
    assert stored is not None and float(stored @ new) == pytest.approx(1.0, abs=2e-3)

    index.delete(["2601.00008", "2601.00009", "never-added"])
    assert len(index) == 198 and "2601.00008" not in index and index.get("2601.00008") is None
    assert all(i not in {"2601.00008", "2601.00009"} for i, _ in index.search(m[8], 200))
    index.upsert(["2601.00008"], m[8])  # back again, on a reused key
    assert len(index) == 199 and index.search(m[8], 1)[0][0] == "2601.00008"

    # a later duplicate in one batch wins; vectors are normalised on the way in
    index.upsert(["dup", "dup"], np.stack([m[0] * 3, m[1] * 3]))
    assert len(index) == 200 and index.search(m[1], 1)[0][0] == "dup"
    with pytest.raises(ValueError):
        index.upsert(["x"], np.zeros((1, DIM)))
    with pytest.raises(ValueError):
        index.upsert(["x", "y"], m[:3])


def test_recall_against_exact_search(built: VectorIndex, corpus: tuple[list[str], np.ndarray]) -> None:
    ids, m = corpus
    rng = np.random.default_rng(2)
    queries = unit(rng, 100)
    hits = 0
    for q in queries:
        got = [i for i, _ in built.search(q, 10)]
        assert len(got) == 10
        hits += len(set(got) & set(exact(m, ids, q, 10)))
    assert hits / (10 * len(queries)) >= 0.95


def test_selective_filters_still_return_k(built: VectorIndex, corpus: tuple[list[str], np.ndarray]) -> None:
    ids, m = corpus
    rng = np.random.default_rng(3)
    q = unit(rng, 1)[0]
    for share in (0.5, 0.05, 0.005):
        keep = {ids[j] for j in rng.choice(len(ids), int(len(ids) * share), replace=False)}
        rows = [j for j, i in enumerate(ids) if i in keep]
        want = exact(m[rows], [ids[j] for j in rows], q, 10)
        for allowed in (keep.__contains__, lambda i, keep=keep: i in keep):  # a set, and a plain callable
            got = built.search(q, 10, allowed)
            assert len(got) == 10 and all(i in keep for i, _ in got)
            assert len(set(i for i, _ in got) & set(want)) >= 9
    few = set(ids[:4])
    assert sorted(i for i, _ in built.search(q, 10, few.__contains__)) == sorted(few)
    assert built.search(q, 10, lambda _: False) == []


def test_save_load_round_trip(tmp_path: Path, corpus: tuple[list[str], np.ndarray]) -> None:
    ids, m = corpus
    path = tmp_path / "idx" / "vectors.hnsw"
    index = VectorIndex.create(path, DIM, MODEL)
    index.upsert(ids[:500], m[:500])
    index.delete(ids[:10])
    index.synced_at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    index.save()
    assert sorted(p.name for p in path.parent.iterdir()) == ["vectors.hnsw", "vectors.hnsw.json"]
    side = json.loads((path.parent / "vectors.hnsw.json").read_text())
    assert side["model"] == MODEL and side["dim"] == DIM and side["count"] == 490

    loaded = VectorIndex.load(path, DIM, MODEL)
    assert len(loaded) == 490 and ids[5] not in loaded and ids[50] in loaded
    assert loaded.synced_at == index.synced_at
    for j in (20, 300, 499):
        assert loaded.search(m[j], 5) == index.search(m[j], 5)
    loaded.upsert(ids[500:600] + ids[:1], m[500:601])  # keeps working after a load, reusing free keys
    assert len(loaded) == 591 and loaded.search(m[600], 1)[0][0] == ids[0]
    loaded.save()
    assert len(VectorIndex.load(path, DIM, MODEL)) == 591


def test_unusable_files_raise(tmp_path: Path, corpus: tuple[list[str], np.ndarray]) -> None:
    ids, m = corpus
    path = tmp_path / "vectors.hnsw"
    with pytest.raises(IndexUnusable):
        VectorIndex.load(path, DIM, MODEL)  # missing
    index = VectorIndex.create(path, DIM, MODEL)
    index.upsert(ids[:300], m[:300])
    index.save()
    good, side = path.read_bytes(), (tmp_path / "vectors.hnsw.json").read_bytes()
    assert issubclass(IndexUnusable, PaperboyError)

    with pytest.raises(IndexUnusable, match="other-model"):
        VectorIndex.load(path, DIM, "other-model")
    with pytest.raises(IndexUnusable):
        VectorIndex.load(path, DIM + 1, MODEL)

    damaged = {
        "truncated": good[: len(good) // 2],
        "garbage": b"not an index" * 100,
        "flipped": good[:2000] + bytes(b ^ 0xFF for b in good[2000:2100]) + good[2100:],
    }
    for body in damaged.values():
        path.write_bytes(body)
        with pytest.raises(IndexUnusable):
            VectorIndex.load(path, DIM, MODEL)
    path.write_bytes(good)
    bad_sides = (
        b"{broken",
        b"[]",
        b"\xff\xfe",
        side.replace(b'"count":300', b'"count":301'),
        side.replace(b'"2601.00001"', b'"2601.00002"'),  # one id twice
    )
    for bad_side in bad_sides:
        (tmp_path / "vectors.hnsw.json").write_bytes(bad_side)
        with pytest.raises(IndexUnusable):
            VectorIndex.load(path, DIM, MODEL)
    (tmp_path / "vectors.hnsw.json").unlink()
    with pytest.raises(IndexUnusable):
        VectorIndex.load(path, DIM, MODEL)
    (tmp_path / "vectors.hnsw.json").write_bytes(side)
    assert len(VectorIndex.load(path, DIM, MODEL)) == 300


def test_grows_past_capacity(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    index = VectorIndex.create(tmp_path / "v.hnsw", DIM, MODEL, capacity=10)
    ids, m = ids_of(1500), unit(rng, 1500)
    index.upsert(ids[:7], m[:7])
    index.upsert(ids[7:1000], m[7:1000])
    for j in range(1000, 1500, 100):
        index.upsert(ids[j : j + 100], m[j : j + 100])
    assert len(index) == 1500 and index.capacity >= 1500
    assert all(index.search(m[j], 1)[0][0] == ids[j] for j in range(0, 1500, 97))


def test_searches_run_while_one_writer_upserts(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    index = VectorIndex.create(tmp_path / "v.hnsw", DIM, MODEL)
    ids, m = ids_of(4000), unit(rng, 4000)
    index.upsert(ids[:500], m[:500])
    queries = unit(rng, 50)
    errors: list[BaseException] = []
    during = 0

    def writer() -> None:
        try:
            for s in range(500, 4000, 250):
                index.upsert(ids[s : s + 250], m[s : s + 250])
            index.delete(ids[:100])
            index.upsert(ids[:50], m[:50])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        nonlocal during
        try:
            j = 0
            while w.is_alive():
                got = index.search(queries[j % 50], 10, (lambda i: i[-1] in "02468") if j % 3 == 0 else None)
                assert len(got) == 10 and all(-1.01 <= s <= 1.01 for _, s in got)
                during += 1
                j += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    w = threading.Thread(target=writer)
    readers = [threading.Thread(target=reader) for _ in range(2)]
    w.start()
    for r in readers:
        r.start()
    w.join(timeout=60)
    for r in readers:
        r.join(timeout=60)
    assert not errors, errors
    assert during > 0
    assert len(index) == 3950
    assert index.search(m[3000], 1)[0][0] == ids[3000]
