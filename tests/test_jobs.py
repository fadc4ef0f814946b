"""Jobs: exactly one worker wins a job, a heartbeat tells the living from the dead, cancel
holds from pending on; and a run keeps the knowledge-base version and encoder it was made with.

Races are real: separate processes on the real store, started together."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import time

import pytest

from core import jobs
from core.config import PROJECT_ROOT, load_settings
from core.errors import ConfigError, NotFoundError
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.models import Question
from core.runs import cancel, create_run, delete, launch, status
from core.executor import Executor
from core.workspace import open_workspace
from tests.conftest import write_docs
from tests.fault_server import FaultServer

QUESTIONS = [Question(f"q{i}", f"Question {i}: how long does the remember me cookie last?") for i in range(1, 4)]

RACE = """
import os, sys, time
from core import jobs
from core.store import Store
store, done_dir, others = Store(sys.argv[1]), sys.argv[3], int(sys.argv[4])
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
try:
    with jobs.start(store, "race", "t", ("noop",)) as claim:
        print("won", claim.job.token, flush=True)
        deadline = time.time() + 120  # hold it until every other racer has tried
        while len(os.listdir(done_dir)) < others and time.time() < deadline:
            time.sleep(0.01)
except jobs.JobBusy as e:
    print("refused", e, flush=True)
    open(os.path.join(done_dir, str(os.getpid())), "w").close()
"""


def judge_reply(messages, schema):
    if schema["title"] == "StatementGeneratorOutput":
        return {"statements": ["The cookie lasts 365 days."]}
    if schema["title"] == "NLIStatementOutput":
        return {"statements": [{"statement": "The cookie lasts 365 days.", "reason": "stated", "verdict": 1}]}
    return {"question": "How long does the remember me cookie last?", "noncommittal": 0}


@pytest.fixture
def kb(settings, store, embedder, docs):
    ingest([str(docs)], "kb", store, embedder, settings)
    store.save_question_set("three", QUESTIONS)
    return "kb"


def test_of_processes_racing_for_one_job_exactly_one_wins(store, tmp_path):
    for round_ in range(5):
        start_at, done_dir = time.time() + 2.0, tmp_path / f"round{round_}"
        done_dir.mkdir()
        procs = [subprocess.Popen([sys.executable, "-c", RACE, store.uri, str(start_at), str(done_dir), "3"],
                                  cwd=str(PROJECT_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        lines = [o.strip() for o, _ in outs]
        assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
        won = [line for line in lines if line.startswith("won")]
        assert len(won) == 1, lines
        assert all(line.startswith("refused") and "race t is running" in line for line in lines if line not in won)
        job = store.job("race:t")
        assert job.status == "done" and job.token == won[0].split()[1]


def test_a_job_whose_heartbeat_stopped_is_dead_and_can_be_taken_over(store, monkeypatch):
    held = jobs.start(store, "run", "r1", ("resume", "r1"))
    held._stop.set()  # the worker "dies": no more heartbeats
    with pytest.raises(jobs.JobBusy, match="run r1 is running"):
        jobs.start(store, "run", "r1", ("resume", "r1"))
    monkeypatch.setattr(jobs, "STALE_S", 0.5)
    time.sleep(0.6)
    assert jobs.state(store.job("run:r1")) == "interrupted"
    with jobs.start(store, "run", "r1", ("resume", "r1")) as again:
        assert held.cancelled()  # the old holder, were it alive, would see it lost the job
        assert not again.cancelled()
    assert store.job("run:r1").status == "done"


def test_the_heartbeat_keeps_a_long_job_alive_and_carries_its_progress(store, monkeypatch):
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(jobs, "STALE_S", 0.5)
    with jobs.start(store, "rejudge", "r2", ("rejudge", "r2")) as claim:
        claim.progress(3, 10)
        time.sleep(1.0)  # twice the stale limit: only the heartbeat keeps it alive
        job = store.job("rejudge:r2")
        assert jobs.alive(job) and (job.done, job.total) == (3, 10)
        with pytest.raises(jobs.JobBusy):
            jobs.submit(store, "rejudge", "r2", ("rejudge", "r2"))
        jobs.cancel(store, "rejudge", "r2")
        assert claim.cancelled()


def test_cancel_of_a_pending_job_holds_when_its_worker_starts(store):
    job = jobs.submit(store, "run", "r3", ("resume", "r3"))
    assert jobs.cancel(store, "run", "r3").status == "cancelled"
    with pytest.raises(jobs.JobBusy, match="was cancelled before it started"):
        jobs.claim(store, job.key, job.token)
    assert store.job("run:r3").status == "cancelled"


def test_a_run_cancelled_while_pending_stays_cancelled(settings, store, kb):
    run = create_run(store, settings, kb, "three")
    job = jobs.submit(store, "run", run.id, ("resume", run.id))  # what the page's launch queues
    assert cancel(store, run.id) == f"run {run.id} cancelled before it started"
    proc = subprocess.run([sys.executable, "-m", "core", "work", job.key, job.token], cwd=str(PROJECT_ROOT),
                          env=dict(os.environ, RAGEVAL_HOME=str(settings.home)), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "was cancelled before it started; nothing to do" in proc.stderr
    assert store.run(run.id).status == "cancelled" and store.answers(run.id) == []
    assert status(store, store.run(run.id)) == "cancelled"


def test_a_second_launch_while_the_first_is_pending_is_refused(settings, store, kb):
    run = create_run(store, settings, kb, "three")
    jobs.submit(store, "run", run.id, ("resume", run.id))  # a launch whose worker has not started yet
    with pytest.raises(jobs.JobBusy, match=f"run {run.id} is pending"):
        launch(settings, store, run.id)
    with pytest.raises(jobs.JobBusy):
        Executor(store, settings, None, run.id, FakeLLM(lambda m, s: "A."), FakeLLM(judge_reply)).execute()
    with pytest.raises(Exception, match="cancel it first"):
        delete(store, run.id)


@pytest.fixture
def served(tmp_path, embedder):
    """A workspace whose answer and judge models are a slow but healthy server on 127.0.0.1."""
    srv = FaultServer()
    srv.delay_s = 0.3  # slow enough for two processes to overlap, or for a kill mid-run
    env = dict(os.environ, RAGEVAL_HOME=str(tmp_path / "home"), RAGEVAL_RELEVANCY_STRICTNESS="1",
               RAGEVAL_FAITHFULNESS_JUDGE="ragas", RAGEVAL_JOB_STALE_S="3")
    for role in ("ANSWER", "JUDGE"):
        env.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "m",
                    f"RAGEVAL_{role}_BASE_URL": srv.url})
    settings = load_settings(env, use_file=False)
    store = open_workspace(settings)
    ingest([str(write_docs(tmp_path / "docs"))], "kb", store, embedder, settings)
    store.save_question_set("three", QUESTIONS)
    yield srv, env, settings, store
    srv.close()


def resume(run_id: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "resume", run_id], cwd=str(PROJECT_ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_resumes_at_once_one_executes_the_other_is_refused(served):
    srv, env, settings, store = served
    run = create_run(store, settings, "kb", "three")
    procs = [resume(run.id, env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    refused = next(err for p, (_, err) in zip(procs, outs) if p.returncode == 2)
    assert f"run {run.id} is running" in refused and "cancel it first or wait" in refused
    answers = store.answers(run.id)
    assert len(answers) == 6 and len({(a.question_id, a.mode) for a in answers}) == 6
    assert len(store.scores(run.id)) == 12 and store.run(run.id).status == "done"
    assert srv.total("answer") == 6  # every answer generated once: the refused one did nothing


def test_a_worker_killed_mid_run_is_interrupted_and_resume_finishes_it_exactly(served, monkeypatch):
    srv, env, settings, store = served
    monkeypatch.setattr(jobs, "STALE_S", 3.0)
    run = create_run(store, settings, "kb", "three")
    worker = resume(run.id, env)
    deadline = time.time() + 300
    while len(store.answers(run.id)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    worker.kill()  # SIGKILL: no cleanup, no last words
    worker.communicate()
    assert 2 <= len(store.answers(run.id)) < 6
    time.sleep(3.5)
    assert status(store, store.run(run.id)) == "interrupted"
    again = resume(run.id, env)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    keys = [(a.question_id, a.mode) for a in store.answers(run.id)]
    scores = [(s.question_id, s.mode, s.metric) for s in store.scores(run.id)]
    assert len(keys) == len(set(keys)) == 6 and len(scores) == len(set(scores)) == 12  # no duplicate rows
    clean = create_run(store, settings, "kb", "three")
    assert resume(clean.id, env).wait(timeout=300) == 0
    from core.results import load
    assert load(store, run.id, findings=False).counts == load(store, clean.id, findings=False).counts


def test_a_resumed_run_retrieves_from_the_knowledge_base_it_was_made_with(settings, store, embedder, kb, tmp_path):
    run = create_run(store, settings, kb, "three", modes=("rag",), metrics=("faithfulness",), limit=1)
    # the knowledge base changes after the run was created: a new document that would win retrieval
    extra = write_docs(tmp_path / "more", {"cookie.md": "# Remember me cookie\n\nHow long does the remember me "
                                                        "cookie last? The remember me cookie lasts 3 days.\n"})
    ingest([str(extra)], kb, store, embedder, settings)
    seen = []

    def answer(messages, schema):
        seen.append(messages[-1]["content"])
        return "It lasts 365 days."

    Executor(store, settings, embedder, run.id, FakeLLM(answer), FakeLLM(judge_reply)).execute()
    passages = store.answers(run.id)[0].passages
    assert passages and not any("3 days" in p.text for p in passages)
    assert "lasts 3 days" not in seen[0]
    # a run made now sees the new document
    now = create_run(store, settings, kb, "three", modes=("rag",), metrics=("faithfulness",), limit=1)
    Executor(store, settings, embedder, now.id, FakeLLM(answer), FakeLLM(judge_reply)).execute()
    assert any("3 days" in p.text for p in store.answers(now.id)[0].passages)
    # deleting the run releases its pinned version
    delete(store, run.id)
    assert f"run-{run.id}" not in store.kb_table(kb).tags.list()


def test_a_knowledge_base_refuses_another_encoder(settings, store, embedder, kb, docs):
    from core import retrieval

    assert store.kb_encoder(kb) == embedder.identity
    other = copy.copy(embedder)  # same name and dimension, other weights: as a retrained encoder
    other.__dict__["identity"] = {**embedder.identity, "sha256": "0" * 16}
    with pytest.raises(ConfigError, match="knowledge base 'kb' was embedded with .* rebuild the knowledge base"):
        retrieval.search(store, kb, "remember me", other)
    with pytest.raises(ConfigError, match="RAGEVAL_EMBEDDING_MODEL"):
        ingest([str(docs)], kb, store, other, settings)
    assert retrieval.search(store, kb, "remember me", embedder)  # the right encoder still searches


def test_a_pinned_version_that_is_gone_is_told_plainly(store, settings, embedder, kb):
    with pytest.raises(NotFoundError, match="version 999 of knowledge base 'kb'"):
        store.kb_searchable(kb, 999)


SAVE = """
import sys, time
from core.models import Question
from core.store import Store
store = Store(sys.argv[1])
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
print(store.save_question_set("shared", [Question("q1", "Who saved this?")]).version, flush=True)
"""


def test_saves_of_one_question_set_at_once_get_distinct_versions(store):
    start_at = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", SAVE, store.uri, str(start_at)], cwd=str(PROJECT_ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert sorted(int(o) for o, _ in outs) == [1, 2, 3, 4]
    assert sorted(v["version"] for v in store.question_set_versions("shared")) == [1, 2, 3, 4]
    assert all(len(store.question_set("shared", v).questions) == 1 for v in (1, 2, 3, 4))


def test_a_second_ingest_into_a_knowledge_base_meanwhile_is_refused(settings, store, embedder, docs):
    with jobs.start(store, "ingest", "fresh", ("ingest",)):  # another process is ingesting into it
        with pytest.raises(jobs.JobBusy, match="ingest fresh is running"):
            ingest([str(docs)], "fresh", store, embedder, settings)
        assert not store.has_kb("fresh")
    report = ingest([str(docs)], "fresh", store, embedder, settings)  # once it is done, ingesting works
    assert report.chunks_embedded > 0 and store.job("ingest:fresh").status == "done"


def test_the_settings_page_checks_the_judge_in_a_background_worker(settings, store, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.calibration import check_key

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("RAGEVAL_FAITHFULNESS_JUDGE", "likelihood")  # the worker reads the same settings
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/settings.py").run()
    at.number_input(key="settings_check_limit").set_value(1)
    at.button(key="settings_check_judge").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    s = load_settings()
    key = jobs.key("judge_check", check_key(s.judge_model, s.relevancy_strictness, "likelihood"))
    assert store.job(key).status in ("pending", "running")
    at.run()  # while it runs the page follows it and offers no second start
    assert "settings_check_judge" not in [b.key for b in at.button] or not jobs.alive(store.job(key))
    deadline = time.time() + 600
    while jobs.alive(store.job(key)) and time.time() < deadline:
        time.sleep(1)
    job = store.job(key)
    assert job.status == "done", (job.error, open(job.log).read()[-2000:])
    checks = store.judge_checks()
    assert len(checks) == 1 and checks[0].items == 1
    at.run()
    assert not at.exception and "settings_check_judge" in [b.key for b in at.button]
