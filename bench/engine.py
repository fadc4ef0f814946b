"""Engine benchmark: ingest and run overheads on the embedded models, and peak memory.

    python bench/engine.py [--modules 40] [--questions 3] [--prefill 100000]

Prints ingest chunks/s beside the raw encoder's chunks/s on the same chunks (the ratio is
the pipeline's overhead; with --prefill, into a knowledge base that already holds that many
chunks, so the ratio shows whether writes slow down as the table grows), a run's wall time beside the sum of its model-call times (the
ratio is the orchestration overhead), and the peak RSS of this process.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STDLIB = ["json", "csv", "sqlite3", "argparse", "logging", "pathlib", "asyncio", "collections", "functools",
          "itertools", "re", "subprocess", "threading", "unittest", "email", "http.client", "urllib.request",
          "zipfile", "tarfile", "datetime", "decimal", "fractions", "statistics", "textwrap", "string",
          "shutil", "tempfile", "glob", "fnmatch", "io", "os", "socket", "ssl", "select", "selectors",
          "queue", "heapq", "bisect", "array", "struct", "codecs", "difflib", "pprint", "enum", "typing"]


def write_corpus(folder: Path, n_modules: int) -> int:
    """Markdown files from standard-library docstrings: real prose, no network."""
    count = 0
    for name in STDLIB[:n_modules]:
        mod = importlib.import_module(name)
        parts = [f"# {name}\n\n{inspect.getdoc(mod) or ''}\n"]
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            doc = inspect.getdoc(obj)
            if doc:
                parts.append(f"## {name}.{attr}\n\n{doc}\n")
        (folder / f"{name}.md").write_text("\n".join(parts), encoding="utf-8")
        count += 1
    return count


def prefill(store, kb: str, rows: int, embedder, batch: int = 50_000) -> None:
    """A knowledge base of `rows` synthetic chunks (random unit vectors, 100 to a document), written
    as Arrow batches, so the measured ingest lands in a table of that size."""
    import numpy as np
    import pyarrow as pa

    from core.store import chunk_schema

    rng = np.random.default_rng(0)
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        ids = [f"prefill-{i}" for i in range(start, start + n)]
        v = rng.standard_normal((n, embedder.dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        table = pa.Table.from_arrays([
            pa.array(ids), pa.array(["prefill"] * n), pa.array([f"doc{i // 100}" for i in range(start, start + n)]),
            pa.array([""] * n), pa.array([i % 100 for i in range(start, start + n)], pa.int32()),
            pa.array([f"synthetic chunk {i}" for i in range(start, start + n)]), pa.array(ids),
            pa.array(["2026-01-01T00:00:00"] * n),
            pa.FixedSizeListArray.from_arrays(pa.array(v.ravel(), pa.float32()), embedder.dim)],
            schema=chunk_schema(embedder.dim))
        store.write_chunks(kb, table, embedder.dim)
    store.set_kb_encoder(kb, embedder.identity)


def run_bench(store, settings, embedder, n: int) -> None:
    """A run of n questions in both modes on the embedded models: wall time beside model-call time."""
    from core.executor import Executor
    from core.models import Question
    from core.runs import create_run

    topics = ["How do I parse JSON from a string?", "How do I open an SQLite database?",
              "How do I run a subprocess and capture its output?", "How do I read a CSV file?",
              "How do I create a temporary directory?", "How do I compute a median?"]
    qs = [Question(f"b{i}", topics[i % len(topics)]) for i in range(n)]
    store.save_question_set("bench", qs)
    run = create_run(store, settings, "bench", "bench")
    t0 = time.perf_counter()
    out = Executor(store, settings, embedder, run.id).execute()
    wall = time.perf_counter() - t0
    model_s = sum(a.latency_s for a in store.answers(run.id)) + sum(s.latency_s for s in store.scores(run.id))
    items = len(qs) * len(run.modes)
    print(f"run: {items} items ({len(qs)} questions x {len(run.modes)} modes), status {out.run.status}, "
          f"wall {wall:.1f} s, model calls {model_s:.1f} s, orchestration overhead x{wall / model_s:.2f} "
          f"({wall / items:.1f} s an item)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modules", type=int, default=40, help="standard-library modules to ingest")
    ap.add_argument("--questions", type=int, default=3, help="questions to run in both modes")
    ap.add_argument("--prefill", type=int, default=0,
                    help="synthetic chunks the knowledge base holds before the measured ingest (e.g. 100000)")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="rageval-bench-"))
    os.environ["RAGEVAL_HOME"] = str(home / "home")
    from core.config import load_settings
    from core.embeddings import get_embedder
    from core.ingest import ingest
    from core.workspace import open_workspace

    settings = load_settings()
    store = open_workspace(settings)
    embedder = get_embedder(settings.embedding_model)
    docs = home / "docs"
    docs.mkdir()
    n_docs = write_corpus(docs, args.modules)

    if args.prefill:
        prefill(store, "bench", args.prefill, embedder)
    phases = {}

    def progress(done, total, what):
        phases.setdefault(what, time.perf_counter())

    # ingest, raw encoder, ingest again (the docs' chunks deleted first), raw again: interleaved,
    # so a change of the machine's load moves both sides of the ratio alike
    ingest_s = raw_s = 0.0
    for rounds in range(2):
        if rounds:
            for source in {s for s in store.kb_table("bench").search().where("source != 'prefill'")
                           .select(["source"]).limit(None).to_arrow()["source"].to_pylist()}:
                store.delete_source("bench", source)
        phases.clear()
        t0 = time.perf_counter()
        report = ingest([str(docs)], "bench", store, embedder, settings, progress=progress)
        # the embedding and writing phase; indexing (a vector index past 50k rows) is timed apart
        seconds = phases.get("indexing", time.perf_counter()) - t0
        ingest_s += seconds
        texts = store.kb_table("bench").search().where("source != 'prefill'").select(["text"]).limit(None) \
            .to_arrow()["text"].to_pylist()
        t1 = time.perf_counter()
        embedder.model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        raw_s += time.perf_counter() - t1
    ingest_rate = 2 * report.chunks_embedded / ingest_s
    raw_rate = 2 * len(texts) / raw_s
    into = f" into a knowledge base of {args.prefill:,} chunks" if args.prefill else ""
    print(f"ingest{into}: {n_docs} documents, {report.chunks_embedded} chunks, twice, interleaved with the raw "
          f"encoder: {ingest_rate:.1f} chunks/s; raw encoder on the same chunks: {raw_rate:.1f} chunks/s; "
          f"ingest / raw x{ingest_rate / raw_rate:.2f}"
          + (f"; then indexing {report.seconds - seconds:.1f} s" if "indexing" in phases else ""))

    t0 = time.perf_counter()
    again = ingest([str(docs)], "bench", store, embedder, settings)
    print(f"re-ingest unchanged: {again.chunks_embedded} chunks embedded in {time.perf_counter() - t0:.2f} s")

    if args.questions:
        run_bench(store, settings, embedder, args.questions)
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
