"""Ingest throughput: the local engine against Ray with 1 and 2 workers, on the same corpus.

    python bench/ingest_scale.py [--copies 3] [--workers 1,2] [--rounds 1]

The corpus is the standard library's docstrings as Markdown (bench/engine.py), written `--copies`
times under different headings (about 930 chunks a copy). Each engine ingests it into a fresh
knowledge base of one workspace; chunks/s is chunks embedded ÷ the ingest's wall time (reading,
chunking, embedding, writing and indexing: what a user waits for). Ray is started once, with as
many CPUs as the most workers asked for, before everything, and its start-up is timed apart; each
Ray ingest still starts its own worker pool (processes that import torch and load the encoder),
which is counted. The local engine runs twice: with torch on every core (as `ingest` runs it) and
with one thread, the compute one Ray worker has, so "ray, 1 worker" against it is Ray's own cost.
Afterwards the tables are compared: the same ids and hashes, vectors within 1e-4.
About 7 minutes with the defaults on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_copies(folder: Path, copies: int) -> None:
    """The stdlib corpus `copies` times, each copy's headings made its own (so no chunk repeats)."""
    from bench.engine import STDLIB, write_corpus

    base = folder / "base"
    base.mkdir(parents=True)
    write_corpus(base, len(STDLIB))
    for k in range(copies):
        out = folder / "corpus" / f"copy{k}"
        out.mkdir(parents=True)
        for f in base.iterdir():
            text = f.read_text(encoding="utf-8")
            (out / f.name).write_text(text.replace("# ", f"# Copy {k}: ", 1), encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--workers", default="1,2", help="Ray worker counts to measure, comma-separated")
    p.add_argument("--rounds", type=int, default=1, help="repeat every engine; each round in the reverse order")
    args = p.parse_args()
    levels = [int(w) for w in args.workers.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="ingest-scale-"))
    os.environ["RAGEVAL_HOME"] = str(tmp / "home")
    import numpy as np
    import ray
    import torch

    from core.config import load_settings
    from core.embeddings import get_embedder
    from core.ingest import ingest
    from core.ray_ingest import RayEngine
    from core.workspace import open_workspace

    settings = load_settings()
    store = open_workspace(settings)
    embedder = get_embedder(settings.embedding_model)
    write_copies(tmp, args.copies)
    corpus = str(tmp / "corpus")
    threads = torch.get_num_threads()
    print(f"corpus: {args.copies} copies of the stdlib docstrings, workspace {tmp}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    ray.init(num_cpus=max(levels), include_dashboard=False, log_to_driver=False, logging_level="error")
    ray_start = time.perf_counter() - t0

    # (name, torch threads of this process, Ray workers): the local engine in one process with
    # torch on every core, and with one thread (what each Ray worker has); then Ray
    engines = [(f"local, {threads} threads", threads, None), ("local, 1 thread", 1, None)] + \
              [(f"ray, {w} worker{'s' if w > 1 else ''}", threads, w) for w in levels]
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in engines}
    chunks: dict[str, int] = {}
    try:
        for r in range(args.rounds):
            order = list(enumerate(engines))
            for i, (name, n_threads, workers) in order if r % 2 == 0 else order[::-1]:
                kb = f"e{i}-r{r}"  # a fresh knowledge base for every ingest
                torch.set_num_threads(n_threads)
                t0 = time.perf_counter()
                report = ingest([corpus], kb, store, embedder, settings,
                                engine=RayEngine(workers=workers) if workers else None)
                seconds[name].append(time.perf_counter() - t0)
                chunks[name] = report.chunks_embedded
                print(f"  round {r + 1}: {name}: {report.chunks_embedded} chunks in {seconds[name][-1]:.1f} s "
                      f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        ray.shutdown()
        torch.set_num_threads(threads)

    def rate(name):
        return chunks[name] / float(np.median(seconds[name]))

    local = engines[0][0]
    print(f"\n{'engine':<18}{'chunks':>8}{'seconds':>10}{'chunks/s':>10}{'÷ local':>9}"
          + ("   (median of rounds)" if args.rounds > 1 else ""))
    for name, _, _ in engines:
        print(f"{name:<18}{chunks[name]:>8}{np.median(seconds[name]):>10.1f}{rate(name):>10.1f}"
              f"{rate(name) / rate(local):>9.2f}")
    print(f"(Ray start-up, once before everything: {ray_start:.1f} s)")
    ray_names = [name for name, _, w in engines if w]
    for a, b in zip(ray_names, ray_names[1:]):
        print(f"{b} ÷ {a}: {rate(b) / rate(a):.2f}")
    print(f"{ray_names[0]} ÷ local, 1 thread (Ray's own cost on the same compute): "
          f"{rate(ray_names[0]) / rate('local, 1 thread'):.2f}")

    def rows(kb):
        return store.kb_table(kb).to_pandas().sort_values("id").reset_index(drop=True)

    ref = rows("e0-r0")
    for i, (name, _, workers) in enumerate(engines):
        if not workers:
            continue
        other = rows(f"e{i}-r0")
        same = (list(other.id) == list(ref.id) and list(other.content_hash) == list(ref.content_hash)
                and np.allclose(np.stack(other.vector), np.stack(ref.vector), atol=1e-4))
        print(f"{name}: table equals the local one (ids, hashes, vectors within 1e-4): {same}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
