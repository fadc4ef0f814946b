"""Retrieval quality on the demo knowledge base: do the 30 seed questions find their docs?

    python bench/retrieval_quality.py [--home bench/results/retrieval_home] [-v]

Builds (or incrementally refreshes) the demo knowledge base from data/demo_sources.txt
under its own home (the first build downloads the sdists; later ones are offline), then
searches every seed question in each mode. A hit is a retrieved chunk from a source that
data/seed_labels.json names for that question. Prints hit@1 and hit@5 per mode, the
seconds a query took, and, last, exactly: `hit@5 vector=0.xx fts=0.xx hybrid=0.xx`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ROOT / "data" / "seed_labels.json"


def label_sources(labels: list[str]) -> set[str]:
    from packaging.utils import canonicalize_name

    return {x if x.startswith("stdlib:") else "pypi:" + canonicalize_name(x) for x in labels}


def _progress(done: int, total: int, what: str) -> None:
    if not total or done == total or done % 1024 < 256:  # a line per source and per ~1000 chunks
        print(f"  {what} {done}/{total}" if total else f"  {what}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=str(ROOT / "bench" / "results" / "retrieval_home"),
                    help="workspace for the demo knowledge base and the sdist cache")
    ap.add_argument("-v", "--verbose", action="store_true", help="list each question's misses")
    args = ap.parse_args()
    os.environ["RAGEVAL_HOME"] = args.home  # before core reads settings: the cache lives there too

    from core.config import load_settings
    from core.embeddings import get_embedder
    from core.ingest import ingest
    from core.questions import default_questions
    from core.retrieval import SEARCH_MODES, search
    from core.sources import DEMO_KB, demo_specs
    from core.workspace import open_workspace

    settings = load_settings()
    store = open_workspace(settings)
    embedder = get_embedder(settings.embedding_model)
    report = ingest(demo_specs(), DEMO_KB, store, embedder, settings, progress=_progress)
    print(f"demo knowledge base: {report.documents} documents, {store.kb_table(DEMO_KB).count_rows()} chunks; "
          f"{report.chunks_embedded} chunks embedded now in {report.seconds:.1f} s")

    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    questions = [q for q in default_questions().questions if q.id in labels]
    hit1, hit5 = {}, {}
    for mode in SEARCH_MODES:
        h1 = h5 = 0
        t0 = time.perf_counter()
        for q in questions:
            wanted = label_sources(labels[q.id])
            got = [p.source for p in search(store, DEMO_KB, q.question, embedder, k=5, mode=mode)]
            h1 += bool(got[:1]) and got[0] in wanted
            h5 += any(s in wanted for s in got)
            if args.verbose and not any(s in wanted for s in got):
                print(f"  {mode:6} miss {q.id}: {q.question[:60]!r} -> {sorted(set(got))}")
        ms = (time.perf_counter() - t0) / len(questions) * 1000
        hit1[mode], hit5[mode] = h1 / len(questions), h5 / len(questions)
        print(f"{mode:6}  hit@1 {hit1[mode]:.2f}  hit@5 {hit5[mode]:.2f}  ({len(questions)} questions, "
              f"{ms:.0f} ms a query)")
    print("hit@1 " + " ".join(f"{m}={hit1[m]:.2f}" for m in SEARCH_MODES))
    print("hit@5 " + " ".join(f"{m}={hit5[m]:.2f}" for m in SEARCH_MODES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
