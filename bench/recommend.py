"""How well does the "For you" ranker find what a member wants? An offline check on the real arXiv listing.

    python bench/recommend.py                      # 500 sampled authors of the 74,728 papers (~50 min here)
    python bench/recommend.py --members 20         # a quick look
    python bench/recommend.py --toy --data F --vectors V --ids I   # CI's size, on files a test wrote

The papers of ../shared/data/arxiv_metadata/arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz (vectors: the
stored all-MiniLM-L6-v2 rows of ../shared/data/embeddings, row i = line i of the ids file), ordered by
listing date then id. A "member" is an author (paperboy.store.authors.author_key of the printed name) with
at least `--min-papers` papers: their first 5 papers by date stand in for 5 upvotes, and the task is to rank
their later papers among ALL papers listed strictly after the 5th's listing date (the seeds left out). A
member whose later papers all share the 5th's date has nothing to find and is not sampled. `--members` of them
are drawn with a fixed seed.

Methods, each returning its top 20:
- `newest`: newest first (listing date, then id, descending);
- `centroid`: cosine to the mean of the 5 seeds' vectors;
- `svm_title_abstract`: arxiv-sanity-lite's per-tag classifier (its serve.py `svm_rank`): TF-IDF with the
  settings of its compute.py (word 1-2 grams, 20,000 features, min_df 5, max_df 0.1, sublinear tf, English
  stop words, accents stripped), fitted on every paper; one scikit-learn LinearSVC per member over ALL
  papers, the 5 seeds positive and every other paper negative (class_weight balanced, C 0.01, tol 1e-6,
  max_iter 10000), candidates ranked by its decision function. Text = title + abstract, as the issue says;
- `svm_with_authors`: the same, with the authors' names appended to the text as arxiv-sanity-lite's compute.py
  actually does (it feeds `title summary authors` to TF-IDF): names are a strong signal for this task;
- `paperboy`: paperboy.recommend.rank.rank (the web feed's ranker) with Seeds of kind "upvote" at their
  listing dates, `now` = the day after the 5th seed, popularity unknown (0) as the listing has no votes;
- `paperboy_vectors_only`: the same ranker with its author signals switched off (`use_authors=False`).
  The ground truth is "later papers by the same author", which an author-overlap signal finds almost by
  construction; this row shows what the ranker does by meaning alone.

Scores: recall@20 and nDCG@20 (binary relevance), averaged over members, with 95 % bootstrap intervals
(members resampled `--resamples` times, fixed seed), and the paired ratio of paperboy's recall@20 to each
SVM's with its interval. Timing: `rank()` alone and the whole per-member scoring (Interests built, pool tail
taken, ranked), p50 and p95 in ms, over the sampled members; and `rank()` of each member against all the
papers (`paperboy_all_papers`). Prints one JSON line. Exits 2 when the data is missing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from paperboy.recommend.rank import Interests, Pool, Seed, author_index, rank, tail  # noqa: E402
from paperboy.store.authors import author_key  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
LISTING = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
VECTORS = SHARED / "embeddings" / "minilm_arxiv_cs_f16.npy"
IDS = SHARED / "embeddings" / "minilm_arxiv_cs_ids.txt"
K = 20
N_SEEDS = 5
# arxiv-sanity-lite's compute.py TF-IDF settings and serve.py svm_rank's classifier settings
TFIDF = {
    "strip_accents": "unicode",
    "lowercase": True,
    "analyzer": "word",
    "stop_words": "english",
    "token_pattern": r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
    "ngram_range": (1, 2),
    "max_features": 20000,
    "norm": "l2",
    "use_idf": True,
    "smooth_idf": True,
    "sublinear_tf": True,
    "max_df": 0.1,
    "min_df": 5,
}
# dual=True: the solver arxiv-sanity-lite ran (scikit-learn's default before 1.5; "auto" now picks the primal
# solver when papers outnumber features, the same optimum ~4x slower here)
SVM = {"class_weight": "balanced", "max_iter": 10000, "tol": 1e-6, "C": 0.01, "dual": True}


@dataclass(frozen=True)
class Corpus:
    ids: list[str]  # sorted by (listing date, id)
    titles: list[str]
    abstracts: list[str]
    names: list[list[str]]  # authors as printed
    days: np.ndarray  # (n,) int64 days since 1970-01-01 of the listing date
    pool: Pool  # every paper, indexed (author_index)


@dataclass(frozen=True)
class Member:
    key: str
    seeds: list[int]  # rows
    start: int  # first row listed after the 5th seed
    relevant: frozenset[int]  # rows of their later papers


def load_corpus(data: Path, vectors: Path, ids_file: Path) -> Corpus:
    """The listing's papers that have a vector, ordered by (listing date, id), as one indexed Pool."""
    vec_ids = ids_file.read_text(encoding="utf-8").split()
    matrix = np.load(vectors)
    row_of = {arxiv_id: i for i, arxiv_id in enumerate(vec_ids)}
    records = []
    opener = gzip.open if data.suffix == ".gz" else open
    with opener(data, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                if d["id"] in row_of:
                    records.append(d)
    records.sort(key=lambda d: (d["listing_date"], d["id"]))
    ids = [d["id"] for d in records]
    names = [[" ".join(a.split()) for a in d.get("authors") or []] for d in records]
    days = np.array([date.fromisoformat(d["listing_date"]).toordinal() - 719163 for d in records], np.int64)
    vecs = np.ascontiguousarray(matrix[[row_of[i] for i in ids]], dtype=np.float32)
    keys = tuple(tuple(author_key(a) for a in ns) for ns in names)
    pool = Pool(
        ids=tuple(ids),
        vectors=vecs,
        authors=keys,
        published=days.astype(np.float64) * 86400.0,
        popularity=np.zeros(len(ids)),
        author_names=tuple(tuple(ns) for ns in names),
    )
    return Corpus(
        ids=ids,
        titles=[" ".join(d["title"].split()) for d in records],
        abstracts=[" ".join(d["summary"].split()) for d in records],
        names=names,
        days=days,
        pool=author_index(pool),
    )


def eligible_members(corpus: Corpus, min_papers: int) -> tuple[list[Member], int]:
    """Authors with >= min_papers papers and at least one paper after their 5th; and how many had none."""
    rows_by_key: dict[str, list[int]] = defaultdict(list)
    for row, keys in enumerate(corpus.pool.authors):
        for key in dict.fromkeys(keys):
            if key:
                rows_by_key[key].append(row)
    members = []
    nothing_later = 0
    for key in sorted(rows_by_key):
        rows = rows_by_key[key]  # ascending rows = (date, id) order
        if len(rows) < min_papers:
            continue
        seeds = rows[:N_SEEDS]
        last_day = corpus.days[seeds[-1]]
        start = int(np.searchsorted(corpus.days, last_day, side="right"))
        later = frozenset(r for r in rows[N_SEEDS:] if r >= start)
        if not later:
            nothing_later += 1
            continue
        members.append(Member(key, seeds, start, later))
    return members, nothing_later


def interests_of(corpus: Corpus, member: Member) -> Interests:
    pool = corpus.pool
    return Interests(
        seeds=tuple(
            Seed(
                arxiv_id=corpus.ids[r],
                title=corpus.titles[r],
                kind="upvote",
                at=datetime.fromtimestamp(float(pool.published[r]), UTC),
                vector=pool.vectors[r],
                authors=pool.authors[r],
            )
            for r in member.seeds
        )
    )


def now_of(corpus: Corpus, member: Member) -> datetime:
    return datetime.fromtimestamp(float(corpus.pool.published[member.seeds[-1]]), UTC) + timedelta(days=1)


def top_rows(score: np.ndarray, start: int) -> list[int]:
    """The K best rows of a candidates' score array (row `start` + i), ties by row descending (newer)."""
    k = min(K, len(score))
    part = np.argpartition(-score, k - 1)[:k] if k < len(score) else np.arange(len(score))
    order = np.lexsort((-part, -score[part]))
    return [start + int(part[o]) for o in order]


def newest(corpus: Corpus, member: Member) -> list[int]:
    return list(range(len(corpus.ids) - 1, max(member.start, len(corpus.ids) - K) - 1, -1))


def centroid(corpus: Corpus, member: Member) -> list[int]:
    c = corpus.pool.vectors[member.seeds].mean(axis=0)
    c /= max(float(np.linalg.norm(c)), 1e-12)
    return top_rows(corpus.pool.vectors[member.start :] @ c, member.start)


def tfidf_matrix(corpus: Corpus, with_authors: bool) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [
        " ".join([t, a, " ".join(ns)]) if with_authors else " ".join([t, a])
        for t, a, ns in zip(corpus.titles, corpus.abstracts, corpus.names, strict=True)
    ]
    settings = dict(TFIDF)
    if len(texts) < 1000:  # a toy corpus: keep every term (min_df 5 / max_df 0.1 would leave nothing)
        settings.update(min_df=1, max_df=1.0)
    return TfidfVectorizer(**settings).fit_transform(texts).astype(np.float32)


def svm_ranker(x: Any) -> Callable[[Corpus, Member], list[int]]:
    from sklearn.svm import LinearSVC

    x64 = x.astype(np.float64)  # liblinear's type, converted once rather than per fit

    def run(corpus: Corpus, member: Member) -> list[int]:
        y = np.zeros(x.shape[0], dtype=np.float32)
        y[member.seeds] = 1.0
        clf = LinearSVC(**SVM)
        clf.fit(x64, y)
        return top_rows(clf.decision_function(x[member.start :]), member.start)

    return run


def paperboy_ranker(
    use_authors: bool,
    rank_ms: list[float],
    total_ms: list[float],
    full_ms: list[float] | None = None,
    floor_ms: list[float] | None = None,
) -> Callable[[Corpus, Member], list[int]]:
    def run(corpus: Corpus, member: Member) -> list[int]:
        if full_ms is not None:  # the same member against every paper (75k), timed only
            interests = interests_of(corpus, member)
            t = time.perf_counter()
            rank(interests, corpus.pool, now_of(corpus, member), K, use_authors=use_authors)
            full_ms.append((time.perf_counter() - t) * 1000)
        if floor_ms is not None:  # the bare matrix product rank() cannot avoid, timed beside it
            q = np.stack([corpus.pool.vectors[r] for r in member.seeds] * 2)[: N_SEEDS + 2]
            t = time.perf_counter()
            q @ corpus.pool.vectors.T
            floor_ms.append((time.perf_counter() - t) * 1000)
        t0 = time.perf_counter()
        interests = interests_of(corpus, member)
        pool = tail(corpus.pool, member.start)
        now = now_of(corpus, member)
        t1 = time.perf_counter()
        picks = rank(interests, pool, now, K, use_authors=use_authors)
        t2 = time.perf_counter()
        rank_ms.append((t2 - t1) * 1000)
        total_ms.append((t2 - t0) * 1000)
        return [member.start + pool.index.rows_by_id[p.arxiv_id] - pool.index.start for p in picks]  # type: ignore[union-attr]

    return run


def recall_ndcg(ranked: Sequence[int], relevant: frozenset[int]) -> tuple[float, float]:
    hits = [1.0 if r in relevant else 0.0 for r in ranked[:K]]
    dcg = sum(h / np.log2(i + 2) for i, h in enumerate(hits))
    idcg = sum(1.0 / np.log2(i + 2) for i in range(min(K, len(relevant))))
    return sum(hits) / len(relevant), dcg / idcg


def bootstrap(values: np.ndarray, resamples: int, seed: int) -> tuple[float, list[float]]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[idx].mean(axis=1)
    return float(values.mean()), [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def paired_ratio(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> dict[str, Any]:
    """mean(a) / mean(b) with a 95 % interval, members resampled together."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    ratios = a[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-12)
    return {
        "ratio": round(float(a.mean() / max(b.mean(), 1e-12)), 3),
        "ci95": [round(float(np.percentile(ratios, 2.5)), 3), round(float(np.percentile(ratios, 97.5)), 3)],
    }


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=LISTING, help="arXiv listing, JSON lines (.gz or not)")
    parser.add_argument("--vectors", type=Path, default=VECTORS, help="float16/32 .npy, one row per id")
    parser.add_argument("--ids", type=Path, default=IDS, help="arXiv ids, one a line, row order of --vectors")
    parser.add_argument("--members", type=int, default=500, help="members sampled (0: every eligible author)")
    parser.add_argument("--min-papers", type=int, default=6, help="papers an author needs to be a member")
    parser.add_argument("--seed", type=int, default=0, help="seed of the member sample and the bootstrap")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--methods", default="", help="comma-separated subset of the methods (default all)")
    parser.add_argument("--toy", action="store_true", help="CI's size: 200 resamples, at most 20 members")
    args = parser.parse_args(argv)
    if args.toy:
        args.resamples = min(args.resamples, 200)
        args.members = min(args.members or 20, 20)
    for path in (args.data, args.vectors, args.ids):
        if not path.exists():
            print(f"missing {path}", file=sys.stderr)
            return 2

    t0 = time.perf_counter()
    corpus = load_corpus(args.data, args.vectors, args.ids)
    load_s = time.perf_counter() - t0
    members, nothing_later = eligible_members(corpus, args.min_papers)
    eligible = len(members)
    if args.members and args.members < len(members):
        members = random.Random(args.seed).sample(members, args.members)
    if not members:
        print("no member to evaluate", file=sys.stderr)
        return 2

    rank_ms: dict[str, list[float]] = {"paperboy": [], "paperboy_vectors_only": []}
    full_ms: list[float] = []
    floor_ms: list[float] = []
    total_ms: dict[str, list[float]] = {"paperboy": [], "paperboy_vectors_only": []}
    methods: dict[str, Callable[[], Callable[[Corpus, Member], list[int]]]] = {
        "newest": lambda: newest,
        "centroid": lambda: centroid,
        "svm_title_abstract": lambda: svm_ranker(tfidf_matrix(corpus, with_authors=False)),
        "svm_with_authors": lambda: svm_ranker(tfidf_matrix(corpus, with_authors=True)),
        "paperboy": lambda: paperboy_ranker(
            True, rank_ms["paperboy"], total_ms["paperboy"], full_ms, floor_ms
        ),
        "paperboy_vectors_only": lambda: paperboy_ranker(
            False, rank_ms["paperboy_vectors_only"], total_ms["paperboy_vectors_only"]
        ),
    }
    chosen = [m for m in args.methods.split(",") if m] or list(methods)
    per_member: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    for name in chosen:
        t = time.perf_counter()
        run = methods[name]()
        recalls, ndcgs = [], []
        for member in members:
            r, n = recall_ndcg(run(corpus, member), member.relevant)
            recalls.append(r)
            ndcgs.append(n)
        per_member[name] = (np.array(recalls), np.array(ndcgs))
        seconds[name] = round(time.perf_counter() - t, 1)

    results: dict[str, Any] = {}
    for name, (recalls, ndcgs) in per_member.items():
        r, r_ci = bootstrap(recalls, args.resamples, args.seed)
        n, n_ci = bootstrap(ndcgs, args.resamples, args.seed)
        results[name] = {
            "recall@20": round(r, 4),
            "recall@20_ci95": [round(v, 4) for v in r_ci],
            "ndcg@20": round(n, 4),
            "ndcg@20_ci95": [round(v, 4) for v in n_ci],
            "seconds": seconds[name],
        }
    ratios = {
        f"{a}_vs_{b}": paired_ratio(per_member[a][0], per_member[b][0], args.resamples, args.seed)
        for a in ("paperboy", "paperboy_vectors_only")
        for b in ("svm_title_abstract", "svm_with_authors")
        if a in per_member and b in per_member
    }
    timing = {
        name: {
            "rank_ms_p50": pct(rank_ms[name], 50),
            "rank_ms_p95": pct(rank_ms[name], 95),
            "per_member_ms_p50": pct(total_ms[name], 50),
            "per_member_ms_p95": pct(total_ms[name], 95),
            "pool_mean": round(statistics.fmean(len(corpus.ids) - m.start for m in members), 1),
        }
        for name in rank_ms
        if rank_ms[name]
    }
    if full_ms:
        timing["paperboy_all_papers"] = {
            "rank_ms_p50": pct(full_ms, 50),
            "rank_ms_p95": pct(full_ms, 95),
            "pool": len(corpus.ids),
            # the (7, dim) x (dim, n) float32 product alone: what the machine's load makes of the floor
            "matmul_only_ms_p50": pct(floor_ms, 50),
        }
    goal: dict[str, Any] = {}
    if "paperboy_vs_svm_title_abstract" in ratios and "paperboy" in timing:
        goal = {
            "recall_ratio_vs_svm_title_abstract_at_least_1.2": ratios["paperboy_vs_svm_title_abstract"][
                "ratio"
            ]
            >= 1.2,
            "rank_ms_p50_at_most_50_all_papers": timing["paperboy_all_papers"]["rank_ms_p50"] <= 50,
        }
    out = {
        "papers": len(corpus.ids),
        "eligible_members": eligible,
        "members_without_later_papers": nothing_later,
        "members": len(members),
        "relevant_mean": round(statistics.fmean(len(m.relevant) for m in members), 2),
        "settings": {
            "k": K,
            "seeds": N_SEEDS,
            "min_papers": args.min_papers,
            "seed": args.seed,
            "resamples": args.resamples,
            "now": "the day after the 5th seed's listing date",
            "popularity": "unknown (0): the listing has no votes",
            "note": (
                "ground truth = later papers by the same author, so author overlap finds it almost by "
                "construction: paperboy_vectors_only is the ranker with its author signals off, and "
                "svm_with_authors is arxiv-sanity-lite's TF-IDF text as its compute.py builds it "
                "(authors appended)"
            ),
        },
        "methods": results,
        "recall_ratios": ratios,
        "timing": timing,
        "goal": goal,
        "load_s": round(load_s, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
