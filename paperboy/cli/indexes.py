"""`paperboy index …` and `paperboy search`: the search indexes and searching from a terminal."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine

from paperboy.cli import (  # the shared helpers and the `main` group these commands hang on
    DATE,
    load_settings,
    main,
    open_engine,
    utcnow,
)
from paperboy.config import Settings
from paperboy.errors import PaperboyError


@main.group()
def index() -> None:
    """Search indexes: BM25 (keyword) and HNSW (meaning), kept beside the database in data_dir/index."""


@index.command("status")
def index_status() -> None:
    """How many papers are indexed by keyword and by meaning, and how many wait for their vector; and how
    each background loop of `paperboy serve` is doing (`background`: last success, last error, consecutive
    failures, backlog), as /readyz shows it."""
    from paperboy.search.keyword import KeywordIndex
    from paperboy.serve import index_dir, load_embedder_or_none
    from paperboy.store import background
    from paperboy.store import embeddings as embedding_store
    from paperboy.store.papers import count_papers
    from paperboy.web.health import loop_json

    settings = load_settings()
    engine = open_engine(settings)
    embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    with engine.connect() as conn:
        status: dict[str, Any] = {"papers": count_papers(conn)}
        if embedder is not None:
            status["model"] = embedder.model
            status["vectors"] = embedding_store.count(conn, embedder.model)
            status["pending"] = embedding_store.count_pending(conn, embedder.model)
        status["background"] = {s.name: loop_json(s) for s in background.all_statuses(conn)}
    try:
        status["keyword_docs"] = KeywordIndex.open(index_dir(settings) / "keyword").count()
    except PaperboyError as exc:
        status["keyword_docs"] = None
        status["keyword_error"] = str(exc)
    vector_file = index_dir(settings) / "vectors.hnsw"
    status["vector_index_bytes"] = vector_file.stat().st_size if vector_file.exists() else 0
    click.echo(json.dumps(status))


@contextmanager
def progress_counter(label: str) -> Iterator[Any]:
    """A rich progress bar for (done, total) callbacks on a terminal; nothing elsewhere."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _update_indexes(
    settings: Settings,
    engine: Engine,
    *,
    embedder: Any = None,
    batch: int = 32,
    limit: int | None = None,
) -> None:
    """Open (rebuilding when unusable) and sync both indexes, embed pending papers, print a JSON summary."""
    from paperboy.search import indexer
    from paperboy.serve import load_embedder_or_none, open_search

    if embedder is None:
        embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    try:
        with progress_counter("keyword index") as progress:
            parts = open_search(settings, engine, embedder=embedder, progress=progress)
        embedded = 0
        if parts.vector is not None and embedder is not None:
            with progress_counter("embedding") as progress:
                embedded = indexer.embed_pending(
                    engine, embedder, parts.vector, utcnow, batch=batch, limit=limit, progress=progress
                )
        parts.keyword.close()
    except PaperboyError as exc:
        raise click.ClickException(str(exc)) from exc
    vectors = len(parts.vector) if parts.vector is not None else 0
    click.echo(json.dumps({"keyword_docs": parts.keyword.count(), "vectors": vectors, "embedded": embedded}))


@index.command("update")
@click.option("--limit", type=click.IntRange(1), help="Embed at most this many papers in this run.")
@click.option(
    "--batch", type=click.IntRange(1, 1024), default=32, show_default=True, help="Papers per batch."
)
def index_update(limit: int | None, batch: int) -> None:
    """Bring both indexes up to date: changed papers into the keyword index, missing vectors embedded.

    Resumable: vectors are stored in the database batch by batch, so an interrupted run continues where it
    stopped. Stop `paperboy serve` first or let its own indexer do this work (one writer at a time).
    """
    settings = load_settings()
    _update_indexes(settings, open_engine(settings), batch=batch, limit=limit)


@index.command("rebuild")
@click.option(
    "--keep-vectors",
    is_flag=True,
    help="Rebuild the index files from the stored vectors instead of embedding every paper again.",
)
@click.confirmation_option(prompt="Rebuild the search indexes (embedding every paper again can take hours)?")
def index_rebuild(keep_vectors: bool) -> None:
    """Delete both index files and rebuild them from the database; re-embeds every paper with the configured
    model unless --keep-vectors (needed after changing PAPERBOY_EMBEDDING_MODEL: vectors are per model)."""
    import shutil

    from paperboy.search import indexer
    from paperboy.serve import index_dir, load_embedder_or_none

    settings = load_settings()
    engine = open_engine(settings)
    embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    root = index_dir(settings)
    shutil.rmtree(root / "keyword", ignore_errors=True)
    for leftover in root.glob("vectors.hnsw*"):
        leftover.unlink()
    if embedder is not None and not keep_vectors:
        indexer.forget_vectors(engine, embedder.model)
    _update_indexes(settings, engine, embedder=embedder)


@index.command("import-vectors")
@click.argument("npy", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("ids", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model",
    default=None,
    help="The model the vectors come from (default: PAPERBOY_EMBEDDING_MODEL, or all-MiniLM-L6-v2).",
)
@click.option(
    "--batch", type=click.IntRange(1, 100_000), default=2000, show_default=True, help="Rows per transaction."
)
@click.option(
    "--no-index",
    is_flag=True,
    help="Only store the vectors: a running `paperboy serve` adds them to its vector index by itself.",
)
def index_import_vectors(npy: Path, ids: Path, model: str | None, batch: int, no_index: bool) -> None:
    """Import precomputed embeddings: NPY (a papers × dim float array, L2-normalised rows) and IDS (one arXiv
    id a line, line i naming row i), for the papers this hub holds; then add them to the vector index.

    Both files are checked in full first (shape, the model's dimension, as many ids as rows, finite values,
    unit length), and against NPY's manifest (NPY with .json, as export-vectors writes it) when there is one:
    vectors of another model are refused. A bad file changes nothing and exits 1; the import is one
    transaction. Vectors are stored with the hash of each paper's
    text, so `index update` and the server never embed those papers again. Ids the hub lacks are skipped;
    running it twice changes nothing. Prints a JSON summary: rows, imported, current (already stored),
    skipped, vectors (stored for the model), indexed (in the vector index). Stop `paperboy serve` first, or
    pass --no-index.
    """
    from paperboy.search import indexer
    from paperboy.search import vector_import as vi
    from paperboy.serve import index_dir
    from paperboy.store import embeddings as embedding_store

    settings = load_settings()
    engine = open_engine(settings)
    name = vi.model_name(model or settings.embedding_model)
    with engine.connect() as conn:
        dim = embedding_store.stored_dim(conn, name)
    dim = dim or vi.model_dimension(name)
    if dim is None:
        raise click.ClickException(
            f"cannot tell the dimension of model {name!r}: its files are not on this machine and no vectors "
            "of it are stored"
        )
    try:
        matrix, arxiv_ids = vi.read_inputs(npy, ids, dim)
        vi.check_manifest(npy, name, matrix, arxiv_ids)
        with progress_counter("importing vectors") as progress:
            counts = vi.import_vectors(
                engine, name, matrix, arxiv_ids, utcnow, batch=batch, progress=progress
            )
        summary: dict[str, Any] = {"model": name, **dataclasses.asdict(counts)}
        with engine.connect() as conn:
            summary["vectors"] = embedding_store.count(conn, name)
        if not no_index:
            vector = indexer.open_vector_index(index_dir(settings) / "vectors.hnsw", engine, name, dim)
            summary["indexed"] = len(vector)
    except PaperboyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(summary))


@index.command("export-vectors")
@click.argument("npy", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    default=None,
    help="The model whose vectors to write (default: PAPERBOY_EMBEDDING_MODEL, or all-MiniLM-L6-v2).",
)
def index_export_vectors(npy: Path, model: str | None) -> None:
    """Write the stored vectors of the model, for import-vectors on another hub: NPY (a papers × dim float32
    array), NPY with .txt (one arXiv id a line, line i naming row i) and NPY with .json (a manifest: model,
    dimension, count). Prints the manifest."""
    from paperboy.search import vector_import as vi

    settings = load_settings()
    engine = open_engine(settings)
    name = vi.model_name(model or settings.embedding_model)
    try:
        manifest = vi.export_vectors(engine, name, npy)
    except PaperboyError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {npy}: {exc.strerror or exc}") from exc
    click.echo(json.dumps(manifest))


@main.command("search")
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True, help="How many results.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line: rank, id, title, score, authors, published, upvotes, url.",
)
@click.option("--from", "start", type=DATE, help="Only papers whose arXiv date is on or after this day.")
@click.option("--to", "end", type=DATE, help="Only papers whose arXiv date is on or before this day.")
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="CAT",
    help="Only papers in this arXiv category (cs.CL) or archive (cs); repeatable or comma-separated.",
)
def search(
    query: str,
    limit: int,
    as_json: bool,
    start: date | None,
    end: date | None,
    categories: tuple[str, ...],
) -> None:
    """Search the hub as /papers?q= does: words, an author's name or an arXiv id; best first.

    Prints rank, arXiv id, arXiv date, title and authors, or with --json one JSON object per line; the
    filters are the search page's. Exits 1 when nothing matches, 2 on bad input (a query that starts with
    "-" goes after "--").
    """
    from paperboy.errors import InvalidInput
    from paperboy.search.query import has_words
    from paperboy.web import listings

    try:
        q = listings.search_query(query, start=start, end=end, categories=list(categories), limit=limit)
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from exc
    if not has_words(q.text):
        raise click.UsageError(f"nothing to search for in {query!r}: give a word, a name or an arXiv id")
    settings = load_settings()
    engine = open_engine(settings)
    from paperboy.serve import load_embedder_or_none, open_search

    embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    try:
        try:  # bring the indexes up to date with the database first (new papers since the last sync)
            parts = open_search(settings, engine, embedder=embedder, sync=True)
        except PaperboyError:  # a running server holds the writer: read what its indexer has indexed
            parts = open_search(settings, engine, embedder=embedder, sync=False)
        parts.keyword.close()  # release the writer; searching goes on
        searcher = parts.searcher()
    except PaperboyError as exc:
        click.echo(f"search indexes unavailable ({exc}); scanning the database instead", err=True)
        searcher = None
    with engine.connect() as conn:
        results = listings.search(conn, searcher, q)
        advice = listings.search_advice(conn, searcher, q, results) if not results.hits else None
    if not results.hits:
        click.echo(f"no papers match {q.text!r}", err=True)
        if advice is not None:
            click.echo(advice.message, err=True)
        sys.exit(1)
    base = settings.public_url.rstrip("/")
    if not as_json:
        summary = listings.search_summary(results)
        click.echo(f"{summary} · by {listings.modes_label(results.modes)}", err=True)
    for rank, hit in enumerate(results.hits, 1):
        paper = hit.item.paper
        published = paper.published_at.date().isoformat() if paper.published_at else None
        if as_json:
            record = {
                "rank": rank,
                "id": paper.arxiv_id,
                "title": paper.title,
                "score": round(hit.score, 6),
                "authors": list(paper.authors),
                "published": published,
                "upvotes": hit.item.upvotes,
                "url": f"{base}/papers/{paper.arxiv_id}",
            }
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
        title = " ".join(paper.title.split())
        click.echo(f"{rank:>3}  {paper.arxiv_id:<16} {published or '':<10}  {title}")
        click.echo(f"{'':>3}  {'':<16} {'':<10}  {authors}")
