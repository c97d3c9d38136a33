"""The BM25 keyword index: ranking, fields, filters, updates, persistence, damage, hostile input, threads."""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from paperboy.errors import IndexUnusable, PaperboyError
from paperboy.search.keyword import SIDECAR, Filters, KeywordDoc, KeywordIndex

FILLER = "We report experiments on standard benchmarks and discuss the limits of the approach."

PAPERS = [
    KeywordDoc(
        "2501.00001",
        "Layer-wise quantization of large language models",
        "Quantization reduces memory. We quantize each layer separately. " + FILLER,
        ("Alice Smith", "Bob Jones"),
        ("cs.CL", "cs.LG"),
        date(2025, 1, 10),
    ),
    KeywordDoc(
        "2501.00002",
        "Efficient inference for transformers",
        "A survey touching on quantization among many other topics. " + FILLER,
        ("Carol White",),
        ("cs.LG",),
        date(2025, 2, 1),
    ),
    KeywordDoc(
        "2501.00003",
        "Convolutional networks for document recognition",
        "Gradient-based learning applied to handwritten digits. " + FILLER,
        ("Yann LeCun", "Leon Bottou"),
        ("cs.CV",),
        date(2025, 3, 5),
    ),
    KeywordDoc(
        "2501.00004",
        "Energy-based models, a tutorial",
        "Energy functions over configurations. " + FILLER,
        ("Yann LeCun",),
        ("cs.LG", "stat.ML"),
        date(2025, 3, 6),
    ),
    KeywordDoc(
        "2501.00005",
        "Yann and LeCun: two words in a title",
        "Nothing about convolutional networks at all. " + FILLER,
        ("Yann Dauphin",),
        ("math.OC",),
        None,
    ),
    KeywordDoc(
        "2501.00006",
        "多语言文本检索",
        "我们研究深度学习模型在跨语言检索中的应用。日本語の検索も扱う。",
        ("王伟",),
        ("cs.IR",),
        date(2025, 4, 1),
    ),
]


@pytest.fixture
def index(tmp_path: Path) -> KeywordIndex:
    """An index of PAPERS that the test may change."""
    ix = KeywordIndex.open(tmp_path / "kw")
    ix.upsert(PAPERS)
    ix.commit()
    return ix


@pytest.fixture(scope="module")
def papers(tmp_path_factory: pytest.TempPathFactory) -> KeywordIndex:
    """An index of PAPERS shared by the tests that only search (building one per test is most of the time)."""
    ix = KeywordIndex.open(tmp_path_factory.mktemp("shared") / "kw")
    ix.upsert(PAPERS)
    ix.commit()
    ix.close()
    return ix


def ids(results: list[tuple[str, float]]) -> list[str]:
    return [i for i, _ in results]


def test_bm25_orders_by_relevance_and_leaves_out_non_matches(papers: KeywordIndex) -> None:
    results = papers.search("quantization", 10)
    assert ids(results) == ["2501.00001", "2501.00002"]  # three mentions, title included, beat one
    assert results[0][1] > results[1][1] > 0
    assert papers.search("handwritten digits", 10)[0][0] == "2501.00003"
    assert papers.search("zeppelin", 10) == []


def test_a_word_in_the_title_outranks_the_same_word_in_the_abstract(tmp_path: Path) -> None:
    ix = KeywordIndex.open(tmp_path / "kw")
    ix.upsert(
        [
            KeywordDoc("a", "Methods for sparse attention", "We study pruning here. " + FILLER),
            KeywordDoc("b", "Methods for sparse attention", "We study attention here. " + FILLER),
            KeywordDoc("c", "Pruning methods for sparse models", "We study attention here. " + FILLER),
        ]
    )
    ix.commit()
    # "pruning" appears once in a's abstract and once in c's title: the title wins
    assert ids(ix.search("pruning", 10)) == ["c", "a"]


def test_stemming_matches_other_forms_of_a_word(papers: KeywordIndex) -> None:
    assert ids(papers.search("quantizing layers", 10))[0] == "2501.00001"
    assert "2501.00003" in ids(papers.search("network", 10))


def test_an_author_name_finds_that_authors_papers_first(papers: KeywordIndex) -> None:
    found = ids(papers.search("Yann LeCun", 10))
    assert set(found[:2]) == {"2501.00003", "2501.00004"}
    # the title that merely contains both words, and the other Yann, come after
    assert found.index("2501.00005") > 1
    # one word alone is not known to be a name: the author field counts like the text
    assert set(ids(papers.search("lecun", 10))) == {"2501.00003", "2501.00004", "2501.00005"}
    assert ids(papers.search("Bottou", 10)) == ["2501.00003"]


def test_date_filter_is_inclusive_and_skips_undated_papers(papers: KeywordIndex) -> None:
    q = "networks convolutional energy quantization yann"
    assert set(ids(papers.search(q, 10, Filters(start=date(2025, 3, 5))))) == {"2501.00003", "2501.00004"}
    assert ids(papers.search(q, 10, Filters(start=date(2025, 3, 5), end=date(2025, 3, 5)))) == ["2501.00003"]
    assert set(ids(papers.search(q, 10, Filters(end=date(2025, 2, 1))))) == {"2501.00001", "2501.00002"}
    assert papers.search(q, 10, Filters(start=date(2025, 4, 1), end=date(2025, 3, 1))) == []
    assert "2501.00005" in ids(papers.search(q, 10))


def test_category_filter_is_any_of_and_an_archive_matches_its_categories(papers: KeywordIndex) -> None:
    q = "networks convolutional energy quantization yann"
    assert set(ids(papers.search(q, 10, Filters(categories=("cs.CV",))))) == {"2501.00003"}
    assert set(ids(papers.search(q, 10, Filters(categories=("cs.CV", "math.OC"))))) == {
        "2501.00003",
        "2501.00005",
    }
    assert set(ids(papers.search(q, 10, Filters(categories=("stat",))))) == {"2501.00004"}
    in_cs = set(ids(papers.search(q, 10, Filters(categories=("cs",)))))
    assert in_cs == {"2501.00001", "2501.00002", "2501.00003", "2501.00004"}
    assert papers.search(q, 10, Filters(categories=("nonsense.XX",))) == []
    assert papers.search(q, 10, Filters(categories=("cs.cv",))) == []  # as arXiv writes them
    both = Filters(start=date(2025, 3, 1), categories=("cs.LG",))
    assert ids(papers.search(q, 10, both)) == ["2501.00004"]


def test_filters_do_not_change_scores(papers: KeywordIndex) -> None:
    plain = dict(papers.search("yann lecun", 10))
    for i, score in papers.search("yann lecun", 10, Filters(categories=("cs",))):
        assert score == pytest.approx(plain[i])


def test_upsert_replaces_and_delete_removes(index: KeywordIndex) -> None:
    assert index.count() == len(PAPERS)
    index.upsert([KeywordDoc("2501.00001", "Zeppelin aerodynamics", "Airships.", (), ("physics.flu-dyn",))])
    assert ids(index.search("zeppelin", 10)) == []  # not before commit
    index.commit()
    assert index.count() == len(PAPERS)
    assert ids(index.search("zeppelin", 10)) == ["2501.00001"]
    assert ids(index.search("quantization", 10)) == ["2501.00002"]
    assert ids(index.search("airships", 10, Filters(categories=("physics",)))) == ["2501.00001"]
    index.delete(["2501.00001", "2501.00002", "no-such-id"])
    index.commit()
    assert index.count() == len(PAPERS) - 2
    assert index.search("zeppelin quantization", 10) == []


def test_the_same_id_twice_in_one_batch_keeps_the_last(tmp_path: Path) -> None:
    ix = KeywordIndex.open(tmp_path / "kw")
    ix.upsert([KeywordDoc("x", "first version", ""), KeywordDoc("x", "second version", "")])
    ix.commit()
    assert ix.count() == 1
    assert ids(ix.search("second", 10)) == ["x"]
    assert ix.search("first", 10) == []


def test_every_kind_of_id_comes_back_as_given(tmp_path: Path) -> None:
    kinds = ["0704.0001", "1412.9999", "2501.00001", "2512.99999", "hep-th/9901001", "math.AG/0309136", "x"]
    ix = KeywordIndex.open(tmp_path / "kw")
    ix.upsert([KeywordDoc(i, "zebra", f"number {n}") for n, i in enumerate(kinds)])
    ix.commit()
    assert sorted(ids(ix.search("zebra", 10))) == sorted(kinds)


def test_everything_persists_across_reopening(tmp_path: Path) -> None:
    ix = KeywordIndex.open(tmp_path / "kw")
    assert ix.synced_at is None and ix.count() == 0
    ix.upsert(PAPERS)
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    ix.synced_at = at
    ix.commit()
    ix.close()
    again = KeywordIndex.open(tmp_path / "kw")
    assert again.synced_at == at
    assert again.count() == len(PAPERS)
    assert ids(again.search("Yann LeCun", 2)) == ids(ix.search("Yann LeCun", 2))
    assert ids(again.search("检索", 10)) == ["2501.00006"]  # the tokenizers are registered again
    again.upsert([KeywordDoc("2501.00099", "A later paper on quantization", "")])
    again.commit()
    assert "2501.00099" in ids(again.search("quantization", 10))


def test_synced_at_must_be_aware(tmp_path: Path) -> None:
    ix = KeywordIndex.open(tmp_path / "kw")
    ix.synced_at = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="timezone"):
        ix.commit()


def _damage(folder: Path, suffix: str) -> None:
    for f in folder.glob(f"*{suffix}"):
        data = bytearray(f.read_bytes())
        data[0] ^= 0xFF  # the body, before tantivy's footer
        f.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed index folder of PAPERS with one deletion (so it has a .del file); tests damage copies."""
    folder = tmp_path_factory.mktemp("pristine") / "kw"
    ix = KeywordIndex.open(folder)
    ix.upsert(PAPERS)
    ix.commit()
    ix.delete(["2501.00002"])
    ix.commit()
    ix.close()
    return folder


@pytest.mark.parametrize("suffix", [".idx", ".term", ".pos", ".store", ".fieldnorm", ".fast", ".del"])
def test_a_damaged_segment_file_makes_the_index_unusable(pristine: Path, tmp_path: Path, suffix: str) -> None:
    folder = Path(shutil.copytree(pristine, tmp_path / "kw"))
    assert KeywordIndex.open(folder).count() == len(PAPERS) - 1
    damaged = list(folder.glob(f"*{suffix}"))
    assert damaged
    for f in damaged:
        data = bytearray(f.read_bytes())
        data[0] ^= 0xFF  # in the body, before tantivy's footer
        f.write_bytes(bytes(data))
    with pytest.raises(IndexUnusable, match="checksum"):
        KeywordIndex.open(folder)


@pytest.mark.parametrize(
    "breakage",
    ["garbage meta", "no meta", "no sidecar", "bad sidecar", "old schema", "truncated", "missing file"],
)
def test_a_broken_index_folder_is_unusable_and_can_be_rebuilt(
    pristine: Path, tmp_path: Path, breakage: str
) -> None:
    folder = Path(shutil.copytree(pristine, tmp_path / "kw"))
    segment = sorted(folder.glob("*.idx"))[0]
    match breakage:
        case "garbage meta":
            (folder / "meta.json").write_text("{not json", encoding="utf-8")
        case "no meta":
            (folder / "meta.json").unlink()
        case "no sidecar":
            (folder / SIDECAR).unlink()
        case "bad sidecar":
            (folder / SIDECAR).write_text("[]", encoding="utf-8")
        case "old schema":
            (folder / SIDECAR).write_text(json.dumps({"schema_version": 0, "synced_at": None}), "utf-8")
        case "truncated":
            segment.write_bytes(segment.read_bytes()[:10])
        case "missing file":
            segment.unlink()
    with pytest.raises(IndexUnusable):
        KeywordIndex.open(folder)
    # what the caller does: delete the folder, open afresh, fill it from the database
    shutil.rmtree(folder)
    fresh = KeywordIndex.open(folder)
    assert fresh.count() == 0 and fresh.synced_at is None
    fresh.upsert(PAPERS[:2])
    fresh.commit()
    assert fresh.count() == 2


def test_a_folder_of_something_else_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "kw").mkdir()
    (tmp_path / "kw" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(IndexUnusable):
        KeywordIndex.open(tmp_path / "kw")
    assert (tmp_path / "kw" / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        '"',
        '"unbalanced quote',
        "*",
        "quant*",
        "NEAR(quantization layer)",
        "title:quantization",
        "abstract:",
        "(",
        "((((",
        ")",
        "-quantization",
        "quantization -layer",
        "AND",
        "OR OR OR",
        "quantization AND OR NOT layer",
        "a:b:c",
        "^2",
        "quantization^100",
        "~",
        "[0 TO 9]",
        "{}",
        "\\",
        "/regex.*/",
        "\x00",
        "!!!???...",
        "—–…·•",
        "🙂🚀",
        "Привет мир",
        "مرحبا",
        "한국어 검색",
        "ภาษาไทย",
        "x" * 10_000,
        "quantization " * 2_000,
        " ".join(f"word{i}" for i in range(3_000)),
        "深" * 5_000,
    ],
)
def test_hostile_queries_return_a_list_quickly(papers: KeywordIndex, query: str) -> None:
    started = time.perf_counter()
    results = papers.search(query, 10, Filters(start=date(2020, 1, 1), categories=("cs",)))
    unfiltered = papers.search(query, 10)
    assert isinstance(results, list) and isinstance(unfiltered, list)
    assert all(isinstance(i, str) and isinstance(s, float) for i, s in unfiltered)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("query", ["", "   ", "!!!", "...", "—", '"()*:-', "🙂"])
def test_queries_without_a_word_find_nothing(papers: KeywordIndex, query: str) -> None:
    assert papers.search(query, 10) == []


def test_query_syntax_is_plain_text(papers: KeywordIndex) -> None:
    # a leading minus does not exclude, a field prefix does not select a field, NEAR is a word
    assert ids(papers.search("-quantization", 10)) == ids(papers.search("quantization", 10))
    assert ids(papers.search("title:quantization", 10))[0] == "2501.00001"
    assert ids(papers.search('"layer-wise quantization', 10))[0] == "2501.00001"
    assert ids(papers.search("NEAR(handwritten digits)", 10)) == ["2501.00003"]


def test_k_is_bounded(papers: KeywordIndex) -> None:
    assert papers.search("quantization", 0) == []
    assert papers.search("quantization", -5) == []
    assert len(papers.search("benchmarks", 10**9)) == len(PAPERS) - 1  # all but the Chinese abstract
    assert len(papers.search("benchmarks", 2)) == 2


def test_cjk_text_is_searchable_by_part_of_a_phrase(papers: KeywordIndex) -> None:
    assert ids(papers.search("深度学习", 10)) == ["2501.00006"]
    assert ids(papers.search("跨语言", 10)) == ["2501.00006"]
    assert ids(papers.search("検索", 10)) == ["2501.00006"]  # Japanese in the same abstract
    assert ids(papers.search("王伟", 10)) == ["2501.00006"]
    assert papers.search("量子", 10) == []


def test_another_writer_is_refused_until_the_first_closes(index: KeywordIndex) -> None:
    index.upsert([KeywordDoc("2501.00100", "holding the writer", "")])
    other = KeywordIndex.open(index.path)
    with pytest.raises(PaperboyError, match="cannot be written"):
        other.upsert([KeywordDoc("2501.00101", "second writer", "")])
    assert other.count() == len(PAPERS)  # reading is fine meanwhile
    index.close()  # drops the uncommitted upsert
    other.upsert([KeywordDoc("2501.00101", "second writer", "")])
    other.commit()
    assert other.count() == len(PAPERS) + 1
    # a reader sees the other's commit once tantivy's watcher notices meta.json change (or at once when
    # it commits itself)
    deadline = time.monotonic() + 10
    while ids(index.search("writer", 10)) != ["2501.00101"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ids(index.search("writer", 10)) == ["2501.00101"]


def test_searches_run_while_one_thread_writes(tmp_path: Path) -> None:
    ix = KeywordIndex.open(tmp_path / "kw")
    ix.upsert(PAPERS)
    ix.commit()
    errors: list[BaseException] = []
    done = threading.Event()
    counts: list[int] = []

    def read() -> None:
        try:
            while not done.is_set():
                found = ix.search("quantization networks yann", 10, Filters(categories=("cs",)))
                assert len(found) >= 1
                counts.append(len(found))
        except BaseException as exc:
            errors.append(exc)

    def write() -> None:
        try:
            for batch in range(5):
                ix.upsert(
                    [
                        KeywordDoc(
                            f"2601.{batch:02d}{n:03d}", f"quantization study {n}", FILLER, (), ("cs.LG",)
                        )
                        for n in range(50)
                    ]
                )
                ix.commit()
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    writer = threading.Thread(target=write)
    for t in [*readers, writer]:
        t.start()
    writer.join(timeout=30)
    done.set()
    for t in readers:
        t.join(timeout=10)
    assert not errors, errors
    assert counts
    assert ix.count() == len(PAPERS) + 250
    assert len(ix.search("quantization", 1000)) == 252
