"""BM25 keyword search over title, abstract and authors: a tantivy index kept beside the database.

Why tantivy: measured here on the 74,728 real abstracts it answers 11-word OR-queries in about a
millisecond (p50), updates one paper in place where bm25s rebuilds everything, answers two orders of
magnitude faster than SQLite FTS5, and ranks on a par with both (docs/search.md, `## Keyword search`;
`bench/keyword_engines.py`).

The database stays the source of truth: the index can be deleted at any time and rebuilt with `upsert`.
`synced_seq` (the `papers.change_seq`, in commit order, up to which the index is current) and `synced_at`
(the time of that change, for people) live in a small JSON sidecar inside the index folder, written by
`commit()` after the documents are committed, so a crash leaves it behind the
documents (re-syncing is idempotent), never ahead of them.

User text never reaches tantivy's query parser: `search` tokenizes it with the index's own analyzers and
builds the query from term and phrase queries, so `"`, `*`, `NEAR`, `:`, `(`, `-`, `AND` / `OR` are plain
text. The query is cut to `MAX_QUERY_CHARS` characters and `MAX_TERMS` distinct terms.

Tokenizing: words are runs of letters, digits and marks (NFC-normalised, lower-cased, folded to ASCII where
possible, English-stemmed; tokens over 40 bytes are dropped). Han, Hiragana and Katakana have no spaces
between words, so each of those characters is a token of its own and a run of them in a query is searched
as a phrase (plus its characters, for partial matches). Hangul is split on spaces like Latin text. Thai,
Lao, Khmer and Burmese text, which is written without spaces too, is one token per run: such words are
found only whole.

Filters: `start` / `end` are inclusive dates on `published` (papers without a date never pass a date
filter); `categories` is any-of, case-sensitive as arXiv writes them, and a category without a dot names
an archive: `cs` matches every `cs.*`, `cs.CL` only itself (the same rule as `store.papers.filter_ids`).
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import tantivy

from paperboy.errors import IndexUnusable, PaperboyError
from paperboy.search import writer_pid

SCHEMA_VERSION = 4  # 4: author_key (each author's whole name, for finding people by name)
SIDECAR = "paperboy-keyword.json"
MAX_QUERY_CHARS = 2000  # of user text looked at (a 10 kB paste is cut, not refused)
MAX_TERMS = 64  # distinct terms per query
MAX_K = 1000  # results per search
# BM25 runs over `text` (title and abstract as one field) plus the title again at this weight: measured on
# bench/relevance.py's collections, one field with a title boost beat summing separate title and abstract
# fields (nDCG@10 CISI 0.373 against 0.356, Cranfield 0.382 against 0.374); 0.3 and 0.5 tie, 0.5 keeps
# the title's words first for the short topic queries people type.
TITLE_BOOST = 0.5
AUTHOR_BOOST = 1.0
AUTHOR_PHRASE_BOOST = 4.0  # "Yann LeCun": the name as written, in one author entry, ranks first
# People's names in a query (`find_names`): runs of 2 to 8 words that are some author's whole name (in the
# 74,728-paper snapshot 99.997% of author entries have at most 8 words; 6- to 8-word names such as "Wil M. P.
# van der Aalst" were missed at 5); the first MAX_NAME_SCAN words of a query are looked at, so finding names
# costs at most 7 x 48 term lookups (about 0.1 ms for an 8-word query).
MIN_NAME_WORDS = 2  # one word ("Chen", "Wang") is a surname shared by thousands: ordinary keyword search
MAX_NAME_WORDS = 8
MAX_NAME_SCAN = 48
MAX_NAMES = 4  # names per query
CJK_PHRASE_BOOST = 2.0
AUTHOR_MATCH_SCORE = 1000.0  # per name a paper's authors hold, in `by_authors`: above any BM25 score
WRITER_HEAP_BYTES = 64_000_000

_TEXT = "pb_text"
_NAME = "pb_name"
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_TOKEN_PATTERN = rf"[{_CJK}]|[\p{{L}}\p{{N}}\p{{M}}--{_CJK}]+"


def _analyzer(stem: bool, stopwords: bool = False) -> tantivy.TextAnalyzer:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(_TOKEN_PATTERN))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.remove_long(40))
    )
    if stopwords:
        builder = builder.filter(tantivy.Filter.stopword("english"))
    if stem:
        builder = builder.filter(tantivy.Filter.stemmer("english"))
    return builder.build()


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("arxiv_id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("text", tokenizer_name=_TEXT, index_option="position")  # title + abstract
    sb.add_text_field("title", tokenizer_name=_TEXT, index_option="freq")
    sb.add_text_field("authors", tokenizer_name=_NAME, index_option="position")
    # each author's whole name as one term (`name_key`): "Song Han" matches that author, never a paper with
    # a "Li Song" and a "Han Wei"
    sb.add_text_field("author_key", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("categories", tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("published", indexed=True, fast=True)  # date.toordinal()
    sb.add_integer_field("key", fast=True)  # a new-style arXiv id as a number: read without the doc store
    return sb.build()


def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _is_cjk(token: str) -> bool:
    if len(token) != 1:
        return False
    name = unicodedata.name(token, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA"))


def _category_terms(categories: Sequence[str]) -> set[str]:
    """`cs.CL` is indexed as `cs.CL` and `cs`, so that a filter on the archive finds it."""
    out: set[str] = set()
    for c in categories:
        c = c.strip()
        if c:
            out.add(c)
            out.add(c.split(".", 1)[0])
    return out


@dataclass(frozen=True)
class KeywordDoc:
    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    published: date | None = None


@dataclass(frozen=True)
class NameMatch:
    """What `KeywordIndex.find_names` found in a query."""

    names: tuple[str, ...]  # name keys (`KeywordIndex.name_key`), in query order
    rest: str  # the query without the words of those names


@dataclass(frozen=True)
class Filters:
    """Inclusive date range on `published`; any-of categories (`cs` matches every `cs.*`)."""

    start: date | None = None
    end: date | None = None
    categories: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.start is not None or self.end is not None or bool(self.categories)


class KeywordIndex:
    """A BM25 index of papers. Searches may run in any number of threads while one thread writes.

    Writes (`upsert`, `delete`) become visible to searches at `commit()`. Only one process may write to an
    index at a time (tantivy's lock file); any number may read it.
    """

    def __init__(
        self, path: Path, index: tantivy.Index, synced_at: datetime | None, synced_seq: int | None = None
    ) -> None:
        self.path = path
        self.synced_at = synced_at
        # papers.change_seq up to which every change is in the index (indexer.sync_keyword); None: an
        # index made before change sequences, synced by `synced_at` alone
        self.synced_seq = synced_seq
        self._index = index
        self._schema = index.schema
        self._text = _analyzer(stem=True)
        self._name = _analyzer(stem=False)
        # Queries drop English stop words (unless nothing else is left): measured, +0.5 to +1 point of
        # nDCG@10 on both collections of bench/relevance.py. Documents keep them, for phrases.
        self._text_query_words = _analyzer(stem=True, stopwords=True)
        self._name_query_words = _analyzer(stem=False, stopwords=True)
        self._writer: tantivy.IndexWriter | None = None
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> KeywordIndex:
        """The index in folder `path`, created empty when the folder is missing or empty.

        Raises IndexUnusable when the folder holds something else, a damaged index or one of another
        schema version: the caller deletes the folder and rebuilds from the database.
        """
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            present = {p.name for p in path.iterdir()}
        except OSError as exc:
            raise IndexUnusable(f"keyword index folder {path} cannot be used: {exc}") from exc
        if not present:
            index = tantivy.Index(_schema(), str(path), reuse=False)
            _register(index)
            _write_sidecar(path, None, 0)
            return cls(path, index, None, 0)
        if "meta.json" not in present or SIDECAR not in present:
            raise IndexUnusable(f"{path} is not a complete paperboy keyword index")
        synced_at, synced_seq = _read_sidecar(path)
        _verify_checksums(path)
        try:
            index = tantivy.Index.open(str(path))
            _register(index)
            searcher = index.searcher()
            for field in ("arxiv_id", "text", "title", "authors", "categories", "published"):
                searcher.doc_freq(field, "0" if field != "published" else 0)
            hits = searcher.search(tantivy.Query.all_query(), 1).hits
            if hits:
                searcher.doc(hits[0][1])
        except (ValueError, OSError, RuntimeError) as exc:
            raise IndexUnusable(f"keyword index at {path} is damaged: {exc}") from exc
        return cls(path, index, synced_at, synced_seq)

    # -- writing ---------------------------------------------------------------------------------------

    def upsert(self, docs: Sequence[KeywordDoc]) -> None:
        """Add papers, replacing any already indexed under the same arXiv id (visible after `commit`)."""
        with self._write_lock:
            writer = self._writer_locked()
            for d in docs:
                writer.delete_documents_by_term("arxiv_id", d.arxiv_id)
                writer.add_document(self._document(d))

    def delete(self, ids: Sequence[str]) -> None:
        with self._write_lock:
            writer = self._writer_locked()
            for i in ids:
                writer.delete_documents_by_term("arxiv_id", i)

    def commit(self) -> None:
        """Make the writes so far durable and searchable, then record `synced_at`."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.commit()
                self._index.reload()
            _write_sidecar(self.path, self.synced_at, self.synced_seq)

    def close(self) -> None:
        """Drop uncommitted writes and release the writer lock (searching still works)."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.rollback()
                self._writer = None
                writer_pid.release(self.path)

    def _writer_locked(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)
            except ValueError as exc:  # LockBusy: another process writes to this index; say which
                raise PaperboyError(writer_pid.busy_message("keyword", self.path, exc)) from exc
            writer_pid.claim(self.path)  # `<index>.writer.pid`: who holds the lock, for the next one
        return self._writer

    def _document(self, d: KeywordDoc) -> tantivy.Document:
        doc = tantivy.Document()
        doc.add_text("arxiv_id", d.arxiv_id)
        title = _norm(d.title)
        doc.add_text("text", f"{title}\n{_norm(d.abstract)}")
        doc.add_text("title", title)
        for a in d.authors:
            doc.add_text("authors", _norm(a))
            name = self.name_key(a)
            if name:
                doc.add_text("author_key", name)
        for c in sorted(_category_terms(d.categories)):
            doc.add_text("categories", c)
        if d.published is not None:
            doc.add_integer("published", d.published.toordinal())
        key = _id_key(d.arxiv_id)
        if key is not None:
            doc.add_integer("key", key)
        return doc

    # -- reading ---------------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._index.searcher().num_docs)

    def holding(self, ids: Sequence[str]) -> list[str]:
        """Which of `ids` the index holds (committed)."""
        searcher = self._index.searcher()
        return [i for i in ids if searcher.doc_freq("arxiv_id", i) > 0]

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Up to `k` (arxiv_id, BM25 score) pairs, best first; [] when the query has no searchable word."""
        return self.search_counted(query, k, filters, count=False)[0]

    def search_counted(
        self, query: str, k: int, filters: Filters | None = None, count: bool = True
    ) -> tuple[list[tuple[str, float]], int]:
        """`search`, and how many papers match the query's words in all (0 when not `count`): papers that hold
        at least one of its words (stop words aside) or its CJK characters, within the filters."""
        text_query = self._text_query(query)
        if text_query is None:
            return [], 0
        return self._run(self._filtered(text_query, filters), k, count)

    def matching(self, query: str, ids: Sequence[str], filters: Filters | None = None) -> set[str]:
        """Those of `ids` that match the query's words (what `search_counted` counts), within the filters."""
        text_query = self._text_query(query)
        wanted = list(dict.fromkeys(ids))[:MAX_K]
        if text_query is None or not wanted:
            return set()
        only = tantivy.Query.term_set_query(self._schema, "arxiv_id", wanted)
        both = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, text_query),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(only, 0.0)),
            ]
        )
        return {i for i, _ in self._run(self._filtered(both, filters), len(wanted), False)[0]}

    # -- people ----------------------------------------------------------------------------------------

    def name_key(self, name: str) -> str:
        """An author's name as the index compares names: its words, lower-cased and folded to ASCII where
        possible ("Bernhard Schölkopf" and "bernhard scholkopf" are one key)."""
        return " ".join(self._name.analyze(_norm(name)))

    def find_names(self, query: str) -> NameMatch:
        """Authors' whole names written in `query` (case and accents aside), and the query without them.

        Greedy from the left, the longest run first: "Yann LeCun self-supervised" finds "yann lecun" and
        leaves "self-supervised". Only runs of MIN_NAME_WORDS to MAX_NAME_WORDS words that are exactly some
        author's name count, so "Song Han" is found as that person and never as a "Song" beside a "Han".
        Bounded: the first MAX_NAME_SCAN words, MAX_NAMES names."""
        chunks = _norm(query[:MAX_QUERY_CHARS]).split()
        tokens: list[tuple[str, int]] = []  # (name token, index of the chunk it came from)
        for n, chunk in enumerate(chunks[:MAX_NAME_SCAN]):
            tokens.extend((t, n) for t in self._name.analyze(chunk))
            if len(tokens) >= MAX_NAME_SCAN:
                break
        tokens = tokens[:MAX_NAME_SCAN]
        if len(tokens) < MIN_NAME_WORDS:
            return NameMatch((), query)
        searcher = self._index.searcher()
        names: list[str] = []
        used: set[int] = set()
        i = 0
        while i < len(tokens) and len(names) < MAX_NAMES:
            for size in range(min(MAX_NAME_WORDS, len(tokens) - i), MIN_NAME_WORDS - 1, -1):
                key = " ".join(t for t, _ in tokens[i : i + size])
                if searcher.doc_freq("author_key", key) > 0:
                    if key not in names:
                        names.append(key)
                    used.update(c for _, c in tokens[i : i + size])
                    i += size
                    break
            else:
                i += 1
        if not names:
            return NameMatch((), query)
        rest = " ".join(c for n, c in enumerate(chunks) if n not in used)
        return NameMatch(tuple(names), rest)

    def by_authors(
        self, names: Sequence[str], rest: str, k: int, filters: Filters | None = None
    ) -> tuple[list[tuple[str, float]], int]:
        """Papers by any of `names` (keys from `find_names`) and how many there are: papers by more of them
        first, then by how well they match `rest` (BM25), then newest first."""
        keys = [n for n in dict.fromkeys(names) if n][:MAX_NAMES]
        if not keys:
            return [], 0
        people = tantivy.Query.boolean_query(
            [
                (
                    tantivy.Occur.Should,
                    tantivy.Query.const_score_query(self._term("author_key", key), AUTHOR_MATCH_SCORE),
                )
                for key in keys
            ]
        )
        words = self._text_query(rest) if rest.strip() else None
        query = (
            people
            if words is None
            else tantivy.Query.boolean_query([(tantivy.Occur.Must, people), (tantivy.Occur.Should, words)])
        )
        return self._run(self._filtered(query, filters), k, True, newest_first=True)

    # -- running queries -------------------------------------------------------------------------------

    def _filtered(self, query: tantivy.Query, filters: Filters | None) -> tantivy.Query | None:
        if filters is None or not filters.active:
            return query
        filter_query = self._filter_query(filters)
        if filter_query is None:
            return None
        return tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, query),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(filter_query, 0.0)),
            ]
        )

    def _run(
        self, query: tantivy.Query | None, k: int, count: bool, newest_first: bool = False
    ) -> tuple[list[tuple[str, float]], int]:
        """The best `k` hits of `query` (score ties newest first with `newest_first`), and the match count."""
        k = min(k, MAX_K)
        if query is None or k <= 0:
            return [], 0
        try:
            searcher = self._index.searcher()
            found = searcher.search(query, k, count=count)
            hits = found.hits
            addrs = [addr for _, addr in hits]
            keys = searcher.fast_field_values("key", addrs) if hits else []
            out = [
                (_key_id(int(key)) if key else str(searcher.doc(addr)["arxiv_id"][0]), float(score))
                for (score, addr), key in zip(hits, keys, strict=True)
            ]
            if newest_first and out:
                days = searcher.fast_field_values("published", addrs)
                order = sorted(range(len(out)), key=lambda n: (-out[n][1], -(days[n] or 0), out[n][0]))
                out = [out[n] for n in order]
            return out, int(getattr(found, "count", 0) or 0) if count else 0
        except (ValueError, OSError) as exc:
            raise IndexUnusable(f"keyword index at {self.path} failed to read: {exc}") from exc
        except BaseException as exc:  # tantivy panics on files damaged after open (pyo3's PanicException)
            if type(exc).__name__ == "PanicException":
                raise IndexUnusable(f"keyword index at {self.path} failed to read: {exc}") from exc
            raise

    def _text_query(self, query: str) -> tantivy.Query | None:
        text = _norm(query[:MAX_QUERY_CHARS])
        every = self._text.analyze(text)
        if not every:
            return None
        # A word repeated in the query weighs more (BM25's query term frequency): +5 points of nDCG@10 on
        # CISI's long questions; a short query names each word once and is unaffected.
        terms = Counter(self._text_query_words.analyze(text) or every).most_common(MAX_TERMS)
        all_names = self._name.analyze(text)
        names = _distinct(self._name_query_words.analyze(text) or all_names)[:MAX_TERMS]
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        should = tantivy.Occur.Should
        for term, times in terms:
            clauses.append((should, self._boosted("text", term, times)))
            clauses.append((should, self._boosted("title", term, TITLE_BOOST * times)))
        for name in names:
            clauses.append((should, self._boosted("authors", name, AUTHOR_BOOST)))
        words = [n for n in all_names if not _is_cjk(n)]
        if 2 <= len(words) <= 6:  # could be a person's name: the words together in one author entry
            # (slop 0: with slop 1 the phrase reaches across two authors, "Li Song" and "Han Wei")
            phrase = tantivy.Query.phrase_query(self._schema, "authors", _words(words), slop=0)
            clauses.append((should, tantivy.Query.boost_query(phrase, AUTHOR_PHRASE_BOOST)))
        for run in _cjk_runs(every)[:MAX_TERMS]:
            phrase = tantivy.Query.phrase_query(self._schema, "text", _words(run))
            clauses.append((should, tantivy.Query.boost_query(phrase, CJK_PHRASE_BOOST)))
        return tantivy.Query.boolean_query(clauses)

    def _term(self, field: str, value: str) -> tantivy.Query:
        return tantivy.Query.term_query(self._schema, field, value)

    def _boosted(self, field: str, value: str, boost: float) -> tantivy.Query:
        q = self._term(field, value)
        return q if boost == 1.0 else tantivy.Query.boost_query(q, boost)

    def _filter_query(self, filters: Filters) -> tantivy.Query | None:
        parts: list[tuple[tantivy.Occur, tantivy.Query]] = []
        if filters.start is not None or filters.end is not None:
            lo = filters.start.toordinal() if filters.start else None
            hi = filters.end.toordinal() if filters.end else None
            if lo is not None and hi is not None and lo > hi:
                return None
            parts.append(
                (
                    tantivy.Occur.Must,
                    tantivy.Query.range_query(self._schema, "published", tantivy.FieldType.Integer, lo, hi),
                )
            )
        if filters.categories:
            wanted = [c.strip() for c in filters.categories if c.strip()]
            if not wanted:
                return None
            parts.append(
                (tantivy.Occur.Must, tantivy.Query.term_set_query(self._schema, "categories", wanted))
            )
        return tantivy.Query.boolean_query(parts)


_NEW_STYLE_ID = re.compile(r"(\d{4})\.(\d{4,5})")


def _id_key(arxiv_id: str) -> int | None:
    """2501.00001 -> a positive integer that `_key_id` turns back into it; None for other ids.

    Fetching 100 ids from tantivy's doc store took about 8 ms here; a fast field of numbers, microseconds.
    """
    m = _NEW_STYLE_ID.fullmatch(arxiv_id)
    if m is None:
        return None
    five_digits = len(m.group(2)) == 5
    return 1 + (int(m.group(1)) * 2 + five_digits) * 100_000 + int(m.group(2))


def _key_id(key: int) -> str:
    rest, number = divmod(key - 1, 100_000)
    yymm, five_digits = divmod(rest, 2)
    return f"{yymm:04d}.{number:05d}" if five_digits else f"{yymm:04d}.{number:04d}"


def _words(tokens: list[str]) -> list[str | tuple[int, str]]:
    return list(tokens)


def _distinct(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(tokens))


def _cjk_runs(tokens: list[str]) -> list[list[str]]:
    """Runs of two or more consecutive Han / Kana tokens (searched as phrases), at most 32 characters each."""
    runs: list[list[str]] = []
    current: list[str] = []
    for t in [*tokens, ""]:
        if _is_cjk(t):
            current.append(t)
            continue
        if len(current) >= 2:
            runs.append(current[:32])
        current = []
    return runs


def _register(index: tantivy.Index) -> None:
    index.register_tokenizer(_TEXT, _analyzer(stem=True))
    index.register_tokenizer(_NAME, _analyzer(stem=False))


_FOOTER_MAGIC = 1337


def segment_files(path: Path, meta: Any) -> set[str]:
    """The names of the files in folder `path` that hold the segments `meta` (its meta.json, parsed) lists:
    what a copy of the committed index needs besides meta.json and the sidecar."""
    wanted: set[str] = set()
    for seg in meta["segments"]:
        prefix = str(seg["segment_id"]).replace("-", "")
        for f in path.glob(prefix + ".*"):
            if not f.name.endswith(".del"):
                wanted.add(f.name)
        if seg.get("deletes"):
            wanted.add(f"{prefix}.{seg['deletes']['opstamp']}.del")
    return wanted


def _verify_checksums(path: Path) -> None:
    """Check every file of the committed segments against the CRC-32 in its tantivy footer.

    tantivy checks a file's footer when it opens it but not its contents, and a damaged posting list makes
    it panic mid-search; reading the files once here (about 0.1 s per 100 MB) turns that into IndexUnusable.
    A writer in another process may commit and delete merged-away files meanwhile: a missing file is an
    error only when meta.json did not change under us.
    """
    for attempt in range(3):
        meta_text: str | None = None
        try:
            meta_text = (path / "meta.json").read_text(encoding="utf-8")
            wanted = segment_files(path, json.loads(meta_text))
            for name in sorted(wanted):
                _verify_file(path / name)
            return
        except FileNotFoundError as exc:
            try:
                now: str | None = (path / "meta.json").read_text(encoding="utf-8")
            except OSError:
                now = None
            if meta_text is None or now is None or now == meta_text or attempt == 2:
                raise IndexUnusable(f"keyword index at {path} is damaged: {exc}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexUnusable(f"keyword index at {path} is damaged: {exc}") from exc


def _verify_file(file: Path) -> None:
    with file.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size < 8:
            raise ValueError(f"{file.name} is truncated")
        f.seek(size - 8)
        footer_len, magic = struct.unpack("<II", f.read(8))
        if magic != _FOOTER_MAGIC or footer_len > size - 8:
            raise ValueError(f"{file.name} has no tantivy footer")
        body = size - 8 - footer_len
        f.seek(body)
        expected = json.loads(f.read(footer_len))["crc"]
        f.seek(0)
        crc, left = 0, body
        while left:
            chunk = f.read(min(left, 1 << 22))
            if not chunk:
                raise ValueError(f"{file.name} is truncated")
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
        if crc != expected:
            raise ValueError(f"{file.name} fails its checksum")


def _read_sidecar(path: Path) -> tuple[datetime | None, int | None]:
    try:
        data: Any = json.loads((path / SIDECAR).read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise IndexUnusable(
                f"keyword index at {path} has schema version {data.get('schema_version')!r}, "
                f"this paperboy uses {SCHEMA_VERSION}"
            )
        raw = data.get("synced_at")
        seq = data.get("synced_seq")
        if seq is not None and not isinstance(seq, int):
            raise ValueError(f"synced_seq {seq!r} is not a number")
        return (None if raw is None else datetime.fromisoformat(raw)), seq
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise IndexUnusable(f"keyword index at {path} has an unreadable {SIDECAR}: {exc}") from exc


def _write_sidecar(path: Path, synced_at: datetime | None, synced_seq: int | None) -> None:
    if synced_at is not None and synced_at.tzinfo is None:
        raise ValueError("synced_at must be timezone-aware (UTC)")
    data = {
        "schema_version": SCHEMA_VERSION,
        "synced_at": synced_at.isoformat() if synced_at else None,
        "synced_seq": synced_seq,
    }
    tmp = path / (SIDECAR + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path / SIDECAR)
