"""A run against a served model with parallel slots: llama.cpp's own server (`llama-server
--parallel 4`, built by the Makefile from the sources llama-cpp-python vendors) on 127.0.0.1,
the real encoder, RAGAS's prompts on the endpoint judge.

The Python `llama_cpp.server` holds one lock around its model, so it serves one request at a
time whatever the client sends; several slots at once is what llama-server (like vLLM) adds.
The server's own `/slots` report, polled during the run, shows how many it decoded at once.
"""
import dataclasses
import json
import os
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from core.config import load_settings
from core.executor import Executor
from core.ingest import ingest
from core.llm.embedded import default_gguf
from core.models import Question
from core.runs import create_run, summary
from core.workspace import open_workspace
from tests.conftest import local_server, write_docs

SLOTS = 4
QUESTIONS = [Question("q1", "How long does the Flask-Login remember me cookie last?"),
             Question("q2", "How do I start gunicorn with four workers?")]


def llama_server() -> str:
    found = shutil.which("llama-server", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                              os.environ.get("PATH", "")]))
    if not found:
        pytest.fail("llama-server not found next to the virtualenv's python: `make test` builds it "
                    "(target .venv/bin/llama-server)")
    return found


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    args = ["--model", default_gguf(), "--host", "127.0.0.1", "--port", "{port}", "--alias", "smollm2",
            "--parallel", str(SLOTS), "--ctx-size", str(SLOTS * 4096), "--threads", "2", "--slots"]
    with local_server(args, tmp_path_factory.mktemp("served") / "llama-server.log", program=llama_server()) as port:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:  # the port opens before the model is loaded; /health says 200 once it is
            try:
                get_json(url + "/health")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield url


class SlotWatch(threading.Thread):
    """Polls the server's /slots and keeps the most slots seen processing at once."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.peak, self.polls, self.stop = url, 0, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            slots = get_json(self.url + "/slots")
            self.peak = max(self.peak, sum(bool(s["is_processing"]) for s in slots))
            self.polls += 1
            time.sleep(0.02)


def test_the_server_reports_its_slots(server):
    slots = get_json(server + "/slots")
    assert len(slots) == SLOTS and not any(s["is_processing"] for s in slots)


def test_a_run_keeps_several_slots_busy_and_loses_nothing(server, embedder, tmp_path):
    env = {"RAGEVAL_HOME": str(tmp_path / "home"), "RAGEVAL_CONCURRENCY": str(SLOTS),
           "RAGEVAL_RELEVANCY_STRICTNESS": "1"}
    for role in ("ANSWER", "JUDGE"):
        env.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "smollm2",
                    f"RAGEVAL_{role}_BASE_URL": server + "/v1", f"RAGEVAL_{role}_TIMEOUT": "120"})
    env["RAGEVAL_ANSWER_MAX_TOKENS"] = "64"
    settings = load_settings(env, use_file=False)
    store = open_workspace(settings)
    ingest([str(write_docs(tmp_path / "docs"))], "kb", store, embedder, settings)
    store.save_question_set("two", QUESTIONS)
    run = create_run(store, settings, "kb", "two")

    watch = SlotWatch(server)
    watch.start()
    try:
        t0 = time.perf_counter()
        out = Executor(store, settings, embedder, run.id).execute()
        wall = time.perf_counter() - t0
    finally:
        watch.stop.set()
        watch.join()

    c = summary(store, run.id)["counts"]
    print(f"\n{out.answered} answers, {out.scored} scores in {wall:.1f} s; at most {watch.peak} of "
          f"{SLOTS} slots processing at once ({watch.polls} polls); {c}")
    items = len(QUESTIONS) * 2
    assert out.answered == items and out.scored == items * 2
    assert c["answered"] == c["done"] == items, "every answer came back from the server and was kept"
    assert c["scored"] + c["unscored_final"] == items * 2 and c["unscored_retryable"] == 0
    assert watch.peak >= 3, f"the server decoded at most {watch.peak} requests at once"

    # the same run again at concurrency 1 finds nothing to do: every item was kept
    again = Executor(store, dataclasses.replace(settings, concurrency=1), embedder, run.id).execute()
    assert again.answered == 0 and again.scored == 0
