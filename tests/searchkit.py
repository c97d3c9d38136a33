"""Test helpers for search: a small corpus of papers and a tiny deterministic embedder.

`HashEmbedder` stands in for the sentence-embedding model in tests of index *maintenance* (what gets embedded,
stored, rebuilt): it hashes words into 64 dimensions, so texts that share words are near and nothing needs a
model. Tests of search *quality* use the real all-MiniLM-L6-v2 (tests/test_search_meaning.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from paperboy.models import Paper, Record

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


class HashEmbedder:
    model = "test-hash-64"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0
        self.embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        self.embedded += len(texts)
        return np.vstack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


def paper(
    arxiv_id: str,
    title: str,
    abstract: str,
    *,
    authors: tuple[str, ...] = ("Ada Lovelace",),
    categories: tuple[str, ...] = ("cs.CL",),
    day: int = 1,
    month: int = 3,
    version: int = 1,
) -> Paper:
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=authors,
        categories=categories,
        primary_category=categories[0],
        version=version,
        published_at=datetime(2026, month, day, 12, tzinfo=UTC),
    )


CORPUS = [
    paper(
        "2603.00001",
        "KV cache eviction for long-context inference",
        "We evict key and value entries from the attention cache to cut memory during decoding.",
        authors=("Grace Hopper", "Alan Turing"),
        day=2,
    ),
    paper(
        "2603.00002",
        "Layer-wise quantization of large language models",
        "Quantizing each layer with a different bit width keeps accuracy while shrinking the model.",
        authors=("Yann LeCun",),
        categories=("cs.LG", "cs.CL"),
        day=3,
    ),
    paper(
        "2603.00003",
        "Hierarchical navigable small world graphs",
        "Approximate nearest neighbor search with a layered proximity graph scales to billions of vectors.",
        authors=("Yury Malkov", "Dmitry Yashunin"),
        categories=("cs.DS",),
        day=4,
    ),
    paper(
        "2603.00004",
        "Private inference with secure multi-party computation",
        "Cryptographic protocols let a server run a language model without seeing the user's prompt.",
        categories=("cs.CR", "cs.LG"),
        day=5,
        month=4,
    ),
    paper(
        "2603.00005",
        "Retrieval-augmented generation for scientific question answering",
        "A retriever fetches passages from papers and a generator answers questions with citations.",
        authors=("Ada Lovelace", "Yann LeCun"),
        day=6,
        month=4,
    ),
    paper(
        "2603.00006",
        "Sparse attention patterns for efficient transformers",
        "Attention restricted to local windows and global tokens reduces quadratic cost in sequence length.",
        day=7,
        month=4,
    ),
]


def records(papers: Sequence[Paper] = CORPUS) -> list[Record]:
    return [Record(p) for p in papers]
