"""Object-storage benchmark: the same work on a local folder and on S3 (moto's server, in its own
process on 127.0.0.1), side by side.

    python bench/object_storage.py [--questions 10]

Per step it prints seconds on each store and the ratio S3 / local: ingest of the test corpus,
a run of N questions × 2 modes × 2 metrics on an instant scripted endpoint (so the time is the
engine's and the store's), reading the run's results, and writing its HTML report. The model
calls take no time here: on a real model the store's share is far smaller. An untimed pass
first warms up the encoder and the code paths, so neither store pays for that.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def steps(settings, embedder, home: Path, questions: int) -> dict[str, float]:
    """Seconds per step on the store `settings` names."""
    from core.executor import Executor
    from core.ingest import ingest
    from core.models import Question
    from core.report import html_report
    from core.results import load
    from core.runs import create_run
    from core.workspace import open_workspace
    from tests.conftest import write_docs

    out = {}
    t0 = time.perf_counter()
    store = open_workspace(settings)
    out["open (seed question set)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ingest([str(write_docs(home / "docs"))], "kb", store, embedder, settings)
    out["ingest (3 files)"] = time.perf_counter() - t0
    store.save_question_set("bench", [Question(f"q{i}", f"How long does the remember me cookie last? ({i})")
                                      for i in range(questions)])
    run = create_run(store, settings, "kb", "bench")
    t0 = time.perf_counter()
    Executor(store, settings, embedder, run.id).execute()
    out[f"run ({questions * 2} items)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = load(store, run.id)
    out["read results"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    html_report(store, res)
    out["HTML report"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rageval-s3-"))
    import boto3

    from core.config import load_settings
    from core.embeddings import get_embedder
    from tests.conftest import local_server
    from tests.fault_server import FaultServer

    server = FaultServer()
    env = {"RAGEVAL_RELEVANCY_STRICTNESS": "1", "RAGEVAL_FAITHFULNESS_JUDGE": "ragas"}
    for role in ("ANSWER", "JUDGE"):
        env.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "m",
                    f"RAGEVAL_{role}_BASE_URL": server.url})
    os.environ.update(env)
    embedder = get_embedder("")
    with local_server(["-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"], work / "moto.log") as port:
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
                           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
        # a first, untimed pass: the encoder, the judge scaffolding and the index code warm up
        steps(load_settings(os.environ | {"RAGEVAL_HOME": str(work / "warm")}, use_file=False), embedder,
              work / "warm", 2)
        local = steps(load_settings(os.environ | {"RAGEVAL_HOME": str(work / "local")}, use_file=False), embedder,
                      work / "local", args.questions)
        s3 = steps(load_settings(os.environ | {"RAGEVAL_HOME": str(work / "s3"),
                                               "RAGEVAL_STORAGE_URI": "s3://bench/rageval"}, use_file=False),
                   embedder, work / "s3", args.questions)
    server.close()
    print(f"{'step':<26}{'local s':>10}{'S3 s':>10}{'S3/local':>10}")
    for step in local:
        print(f"{step:<26}{local[step]:>10.2f}{s3[step]:>10.2f}{s3[step] / local[step]:>10.1f}")


if __name__ == "__main__":
    main()
