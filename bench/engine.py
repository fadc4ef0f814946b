"""Engine benchmark: ingest and run overheads on the embedded models, and peak memory.

    python bench/engine.py [--modules 40] [--questions 3]

Prints ingest chunks/s beside the raw encoder's chunks/s on the same chunks (the ratio is
the pipeline's overhead), a run's wall time beside the sum of its model-call times (the
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modules", type=int, default=40, help="standard-library modules to ingest")
    ap.add_argument("--questions", type=int, default=3, help="questions to run in both modes")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="rageval-bench-"))
    os.environ["RAGEVAL_HOME"] = str(home / "home")
    from core.config import load_settings
    from core.embeddings import get_embedder
    from core.ingest import ingest
    from core.models import Question
    from core.runs import create_run
    from core.executor import Executor
    from core.workspace import open_workspace

    settings = load_settings()
    store = open_workspace(settings)
    embedder = get_embedder(settings.embedding_model)
    docs = home / "docs"
    docs.mkdir()
    n_docs = write_corpus(docs, args.modules)

    report = ingest([str(docs)], "bench", store, embedder, settings)
    texts = store.kb_table("bench").to_pandas()["text"].tolist()
    t0 = time.perf_counter()
    embedder.model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    raw = time.perf_counter() - t0
    ingest_rate = report.chunks_embedded / report.seconds
    raw_rate = len(texts) / raw
    print(f"ingest: {n_docs} documents, {report.chunks_embedded} chunks in {report.seconds:.1f} s = "
          f"{ingest_rate:.1f} chunks/s; raw encoder on the same chunks: {raw_rate:.1f} chunks/s; "
          f"pipeline overhead x{raw_rate / ingest_rate:.2f}")

    t0 = time.perf_counter()
    again = ingest([str(docs)], "bench", store, embedder, settings)
    print(f"re-ingest unchanged: {again.chunks_embedded} chunks embedded in {time.perf_counter() - t0:.2f} s")

    topics = ["How do I parse JSON from a string?", "How do I open an SQLite database?",
              "How do I run a subprocess and capture its output?", "How do I read a CSV file?",
              "How do I create a temporary directory?", "How do I compute a median?"]
    qs = [Question(f"b{i}", topics[i % len(topics)]) for i in range(args.questions)]
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
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
