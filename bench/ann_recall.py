"""Vector search at scale: recall@10 against exact search, latency and build time of the
knowledge base's vector index, beside the old default index as the reference.

    python bench/ann_recall.py [--rows 100000] [--queries 200] [--clusters 2000] [--home DIR]

Builds a synthetic clustered corpus of 384-d unit vectors (a few hundred characters of
text a row), writes it through the project's store as Arrow batches, then:
  reference  IVF-PQ with n // 1500 partitions and LanceDB's default search parameters
             (what `index_kb` built before), searched through `retrieval.search_vector`;
  project    the index `Store.index_kb` builds, with the search parameters its own recall
             check chose, searched through `retrieval.search_vector` the same way.
Queries are fresh points from the same clusters (not stored rows); exact truth is a numpy
pass over every vector. Prints recall@10, p50/p99 latency and build seconds of each, and
the project's figures as ratios to the reference's. At --rows 1000000 it takes about 35
minutes on 2 shared cores, most of it the index's first optimize (see Store._build_vector_index).
With --home DIR the workspace is kept there; run again with the same --home (and the same
--rows, --clusters, --seed), the corpus and its index are reused: only the project's search
is measured, in a few minutes, beside the same search through LanceDB's table query (how
retrieval searched before 2026-12-02), interleaved.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 384
K = 10
BATCH = 50_000


def corpus(rows: int, clusters: int, seed: int):
    """(centers, batches of unit vectors): each row a cluster center plus noise about as long."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    def points(n: int) -> np.ndarray:
        v = centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, DIM)).astype(np.float32) * 0.05
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    return points


def arrow_batch(start: int, vectors: np.ndarray):
    import pyarrow as pa

    from core.store import chunk_schema

    n = len(vectors)
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
    text = [f"chunk {start + i}: " + " ".join(words[(start + i + j) % len(words)] for j in range(60))
            for i in range(n)]
    ids = [f"synthetic::doc{(start + i) // 10}.md::{(start + i) % 10}" for i in range(n)]
    # 10 chunks a document, 1,000 documents a source, sections by document part: as a knowledge
    # base of many sources holds them. (A column of one value throughout, as one source would
    # make, costs Lance ~5 ms to take ten rows from at 1M rows, against ~0.5 ms: measured.)
    docs = [(start + i) // 10 for i in range(n)]
    return pa.RecordBatch.from_arrays([
        pa.array(ids), pa.array([f"synthetic{d // 1000}" for d in docs]), pa.array([f"doc{d}.md" for d in docs]),
        pa.array([f"Doc {d} > Part {(start + i) % 10 // 3}" for i, d in enumerate(docs)]),
        pa.array([(start + i) % 10 for i in range(n)], pa.int32()), pa.array(text),
        pa.array(["-"] * n), pa.array(["2026-01-01T00:00:00+00:00"] * n),
        pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), DIM),
    ], schema=chunk_schema(DIM))


def measure(store, kb: str, queries: np.ndarray, truth: list[set[str]]) -> tuple[float, float, float]:
    """(recall@K, p50 ms, p99 ms) of retrieval-level vector search."""
    from core.retrieval import search_vector

    for q in queries[:10]:  # warm the index cache
        search_vector(store, kb, q, K)
    times, found = [], 0
    for q, t in zip(queries, truth):
        t0 = time.perf_counter()
        hits = search_vector(store, kb, q, K)
        times.append((time.perf_counter() - t0) * 1000)
        found += len({h.id for h in hits} & t)
    return found / (K * len(queries)), float(np.percentile(times, 50)), float(np.percentile(times, 99))


def through_table(store, kb: str, queries: np.ndarray, rounds: int = 3) -> tuple[tuple, tuple]:
    """((p50, p99) ms of retrieval's search, (p50, p99) of the same search through LanceDB's
    table query, as retrieval searched before 2026-12-02): `rounds` passes over the queries each,
    interleaved, so that both see the machine alike."""
    from core.retrieval import search_vector

    def table_query(v):
        tbl = store.kb_table(kb)
        index = store.vector_index(tbl)
        q = tbl.search(v, vector_column_name="vector").distance_type("cosine").nprobes(index.nprobes)
        q = q.ef(index.ef) if index.ef else q
        q = q.refine_factor(index.refine_factor) if index.refine_factor else q
        return q.select(["id", "text", "source", "document", "section", "_distance"]).limit(K).to_arrow()

    project = lambda v: search_vector(store, kb, v, K)  # noqa: E731
    times: dict = {project: [], table_query: []}
    for q in queries[:10]:
        project(q), table_query(q)
    for _ in range(rounds):
        for f, ts in times.items():
            for q in queries:
                t0 = time.perf_counter()
                f(q)
                ts.append((time.perf_counter() - t0) * 1000)
    return tuple(tuple(float(np.percentile(ts, p)) for p in (50, 99)) for ts in times.values())


def rows_only(store, kb: str, queries: np.ndarray) -> float:
    """p50 ms of the same search returning row ids only: the index's part of a search (the rest
    is reading the passages' columns of the rows found)."""
    from core.store import nearest

    ds = store.kb_searchable(kb)
    index = store.vector_index(ds)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        ds.to_table(nearest=nearest(q, K, index), columns=["_distance"], with_row_id=True)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clusters", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-rows", type=int, default=None, help="index_kb's size threshold (default: the project's)")
    ap.add_argument("--home", help="keep the workspace here, or reuse the corpus and index an earlier run kept here")
    args = ap.parse_args()
    os.environ["RAGEVAL_HOME"] = args.home or tempfile.mkdtemp(prefix="rageval-ann-")
    from core.config import load_settings
    from core.store import INDEX_MIN_ROWS, get_store  # first: it quiets lance's logging
    from lancedb.index import IvfPq

    store = get_store(load_settings().db_uri)
    kb = "ann"
    reuse = store.has_kb(kb) and store.kb_table(kb).count_rows() == args.rows and store.vector_index(kb)
    if args.rows >= 500_000 and not reuse:
        print(f"{args.rows:,} rows: writing, two index builds and their recall checks take many minutes "
              "(about 35 on 2 shared cores)", flush=True)
    points = corpus(args.rows, args.clusters, args.seed)
    queries = points(args.queries)
    best_s = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), K), dtype=np.int64)

    t0 = time.perf_counter()
    exact_s = 0.0
    for start in range(0, args.rows, BATCH):
        v = points(min(BATCH, args.rows - start))
        if not reuse:
            store.write_chunks(kb, arrow_batch(start, v), DIM)
        t1 = time.perf_counter()
        sims = queries @ v.T  # exact truth as the corpus streams by
        all_s = np.concatenate([best_s, sims], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + len(v)), sims.shape)], axis=1)
        top = np.argpartition(-all_s, K - 1, axis=1)[:, :K]
        best_s, best_i = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1)
        exact_s += time.perf_counter() - t1
    truth = [{f"synthetic::doc{i // 10}.md::{i % 10}" for i in row} for row in best_i]
    made = "reused from " + args.home if reuse else f"written as Arrow batches in {time.perf_counter() - t0 - exact_s:.1f} s"
    print(f"corpus: {args.rows:,} rows x {DIM} in {args.clusters} clusters, {made}; numpy exact search "
          f"{exact_s / len(queries) * 1000:.1f} ms a query", flush=True)
    if reuse:
        new = measure(store, kb, queries, truth)
        print(f"project {reuse.describe()} (built earlier: the reference is not measured again)")
        print(f"project: recall@{K} {new[0]:.3f}, p50 {new[1]:.1f} ms (row ids only {rows_only(store, kb, queries):.1f}), "
              f"p99 {new[2]:.1f} ms")
        (p50, p99), (t50, t99) = through_table(store, kb, queries)
        print(f"interleaved, 3 x {len(queries)} queries: retrieval p50 {p50:.1f} / p99 {p99:.1f} ms, through LanceDB's "
              f"table {t50:.1f} / {t99:.1f} ms: x{p50 / t50:.2f} / x{p99 / t99:.2f}")
        return 0

    tbl = store.kb_table(kb)
    t0 = time.perf_counter()
    tbl.create_index("vector", config=IvfPq(distance_type="cosine", num_partitions=max(1, args.rows // 1500)))
    ref_build = time.perf_counter() - t0
    ref = measure(store, kb, queries, truth)
    print(f"reference IVF-PQ ({max(1, args.rows // 1500)} partitions, default search): recall@{K} {ref[0]:.3f}, "
          f"p50 {ref[1]:.1f} ms, p99 {ref[2]:.1f} ms, build {ref_build:.0f} s", flush=True)

    t0 = time.perf_counter()
    index = store.index_kb(kb, min_rows=args.min_rows or INDEX_MIN_ROWS)
    build = time.perf_counter() - t0
    new = measure(store, kb, queries, truth)
    print(f"project {index.describe()}", flush=True)
    print(f"project: recall@{K} {new[0]:.3f}, p50 {new[1]:.1f} ms (row ids only {rows_only(store, kb, queries):.1f}), "
          f"p99 {new[2]:.1f} ms, build + recall check "
          f"{build:.0f} s (index {index.build_seconds:.0f} s)")
    print(f"ratios project / reference: recall x{new[0] / ref[0]:.2f}, p50 x{new[1] / ref[1]:.2f}, "
          f"p99 x{new[2] / ref[2]:.2f}, build x{build / ref_build:.2f}")
    print(f"goal recall >= 0.95, p50 <= 10 ms, p99 <= 25 ms: "
          f"{'met' if new[0] >= 0.95 and new[1] <= 10 and new[2] <= 25 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
