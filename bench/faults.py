"""Fault benchmark: a run against an OpenAI-compatible server that fails on purpose, then one
resume after it recovers.

    python bench/faults.py [--questions 3] [--retries 1]

The server (tests/fault_server.py, a real HTTP server on 127.0.0.1) fails every answer call
or every judge call in one way (500, 429, hang past the timeout, invalid JSON, an HTML page,
no choices, empty content, a reset connection), or a seeded 30% of all calls in a random
transient way. Per case it prints, before and after the resume, the items (question × mode)
expected / present (answer and every score stored) / scored (every score has a value) /
retryable (a failure that may pass is left) / final (failed for good, nothing retryable) /
lost (expected − present), the run's status and the server calls the resume made.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def item_counts(store, run_id: str) -> dict:
    from core.runs import summary

    s = summary(store, run_id)
    c = dict.fromkeys(("expected", "present", "scored", "retryable", "final", "lost"), 0)
    for item in s["items"]:
        for mode in s["modes"]:
            a = item.get(mode)
            c["expected"] += 1
            scores = list((a or {}).get("scores", {}).values())
            present = a is not None and all(v["reason"] != "not scored yet" for v in scores)
            retryable = a is not None and (a["retryable"] or any(v["retryable"] for v in scores))
            c["present"] += present
            c["lost"] += not present
            c["scored"] += present and all(v["value"] is not None for v in scores)
            c["retryable"] += retryable
            c["final"] += present and not retryable and (bool(a["error"]) or any(v["value"] is None for v in scores))
    return c


TOPICS = ["How long does the Flask-Login remember me cookie last?", "How do I open an sqlite3 database in memory?",
          "How do I start gunicorn with four workers?", "How do I roll back an sqlite3 transaction?"]


def endpoint_workspace(home: Path, set_name: str, questions: int):
    """The settings the environment names, their workspace and encoder, a small knowledge base "kb"
    and a question set of `questions` questions: what a bench against a local server runs on."""
    from core.config import load_settings
    from core.embeddings import get_embedder
    from core.ingest import ingest
    from core.models import Question
    from core.workspace import open_workspace
    from tests.conftest import write_docs

    base = load_settings()
    store = open_workspace(base)
    embedder = get_embedder(base.embedding_model)
    ingest([str(write_docs(home / "docs"))], "kb", store, embedder, base)
    store.save_question_set(set_name, [Question(f"q{i}", f"{TOPICS[i % len(TOPICS)]} ({i})")
                                       for i in range(questions)])
    return base, store, embedder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=3, help="questions per case, answered in both modes")
    ap.add_argument("--retries", type=int, default=1, help="retries of a transient failure within a call")
    ap.add_argument("--timeout", type=float, default=0.5, help="seconds before a hanging call is given up")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="rageval-faults-"))
    os.environ["RAGEVAL_HOME"] = str(home / "home")
    import dataclasses

    from core.runs import create_run
    from core.executor import Executor
    from tests.fault_server import FAULTS, FaultServer

    server = FaultServer(hang_s=args.timeout * 2)
    for role in ("ANSWER", "JUDGE"):
        os.environ.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "m",
                           f"RAGEVAL_{role}_BASE_URL": server.url, f"RAGEVAL_{role}_TIMEOUT": str(args.timeout),
                           f"RAGEVAL_{role}_RETRIES": str(args.retries), f"RAGEVAL_{role}_BACKOFF": "0.05",
                           f"RAGEVAL_{role}_BACKOFF_MAX": "0.2"})
    os.environ["RAGEVAL_RELEVANCY_STRICTNESS"] = "1"
    base, store, embedder = endpoint_workspace(home, "faults", args.questions)

    cols = ("expected", "present", "scored", "retryable", "final", "lost")
    print(f"{'case':<21} {'':<7}" + "".join(f"{c:>10}" for c in cols) + f"  {'status':<11} calls  seconds")
    cases = [(f, side) for f in FAULTS for side in ("answer", "judge")] + [("mix", "all")]
    for n, (fault, side) in enumerate(cases):
        # each case has its own judge cache, so no case is answered from another's
        settings = dataclasses.replace(base, home=home / f"case{n}", storage_uri=base.db_uri)
        run = create_run(store, settings, "kb", "faults")
        server.set(fault, side, seed=7, rate=0.3)
        t0 = time.perf_counter()
        out = Executor(store, settings, embedder, run.id).execute()
        rows = [("before", item_counts(store, run.id), out.run.status, server.total(), time.perf_counter() - t0)]
        server.set("ok")
        t0 = time.perf_counter()
        out = Executor(store, settings, embedder, run.id).execute()
        rows.append(("after", item_counts(store, run.id), out.run.status, server.total(), time.perf_counter() - t0))
        for when, c, status, calls, seconds in rows:
            name = f"{fault} on {side}" if when == "before" else ""
            print(f"{name:<21} {when:<7}" + "".join(f"{c[k]:>10}" for k in cols) +
                  f"  {status:<11} {calls:>5}  {seconds:7.1f}")
    server.close()


if __name__ == "__main__":
    main()
