"""Failures that heal: a real OpenAI-compatible server on 127.0.0.1 that fails on purpose
(tests/fault_server.py), the real store, the real encoder and RAGAS through our judge.

A transient failure (500, 429, hang, invalid JSON, HTML page, no choices, reset) is retried,
then kept as *retryable*; one resume after the server recovers redoes exactly those and the
missing ones. A final failure (empty content) is kept and never redone. Nothing is lost.
"""
import asyncio
import dataclasses

import lancedb
import pyarrow as pa
import pytest

from core.config import ModelConfig, load_settings
from core.errors import ModelError, TransientModelError
from core.evaluate import Scorer
from core.ingest import ingest
from core.llm import get_llm
from core.llm.fake import FakeLLM
from core.models import Answer, Passage, Question
from core.runs import create_run, summary
from core.executor import Executor
from core.store import Store
from core.workspace import open_workspace
from tests.conftest import write_docs
from tests.fault_server import FAULTS, TRANSIENT, FaultServer

QUESTIONS = [Question("q1", "How long does the Flask-Login remember me cookie last?"),
             Question("q2", "How do I open an sqlite3 database in memory?"),
             Question("q3", "How do I start gunicorn with four workers?")]
CALLS_PER_ITEM = 1 + 2 + 1  # an answer; faithfulness: statements, verdicts; relevancy at strictness 1
FAST = dict(timeout_s=0.3, retries=1, backoff_s=0.01, backoff_max_s=0.05)


@pytest.fixture(scope="module")
def server():
    srv = FaultServer(hang_s=0.6)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, server, embedder):
    """One knowledge base for the module; each test gets its own home (so its own judge cache)."""
    root = tmp_path_factory.mktemp("faults")
    env = {"RAGEVAL_HOME": str(root / "home"), "RAGEVAL_RELEVANCY_STRICTNESS": "1"}
    for role in ("ANSWER", "JUDGE"):
        env.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "m",
                    f"RAGEVAL_{role}_BASE_URL": server.url, f"RAGEVAL_{role}_TIMEOUT": "0.3",
                    f"RAGEVAL_{role}_RETRIES": "1", f"RAGEVAL_{role}_BACKOFF": "0.01",
                    f"RAGEVAL_{role}_BACKOFF_MAX": "0.05"})
    settings = load_settings(env, use_file=False)
    store = open_workspace(settings)
    ingest([str(write_docs(root / "docs"))], "kb", store, embedder, settings)
    store.save_question_set("three", QUESTIONS)
    return settings, store, env


@pytest.fixture
def ws(workspace, tmp_path):
    settings, store, env = workspace
    return dataclasses.replace(settings, home=tmp_path / "home", storage_uri=settings.db_uri), store


def healing(store, settings, embedder, run_id) -> Executor:
    """The resume once the server has recovered: the run's pinned models with a timeout a healthy
    call never reaches on a loaded machine (at 0.3 s one was answered, timed out and asked again,
    which the count of calls answered once would take for work done twice)."""
    ex = Executor(store, settings, embedder, run_id)
    ex.answer_cfg = dataclasses.replace(ex.answer_cfg, timeout_s=30)
    ex.judge_cfg = dataclasses.replace(ex.judge_cfg, timeout_s=30)
    return ex


def counts(store, run_id) -> dict:
    return summary(store, run_id)["counts"]


def lost(c: dict) -> int:
    return c["answer_missing"] + c["score_missing"]


# -- the backend: every failure classified, retried, and told in a sentence ------------------

def call(llm, way: str):
    """One call, made the synchronous way or on the async client (both must fail alike)."""
    messages = [{"role": "user", "content": "hi"}]
    if way == "sync":
        return llm.complete(messages)

    async def on_a_loop():
        try:
            return await llm.acomplete(messages)
        finally:
            await llm.aclose()
    return asyncio.run(on_a_loop())


@pytest.mark.parametrize("way", ["sync", "async"])
@pytest.mark.parametrize("fault", [*FAULTS, "401", "400"])
def test_every_endpoint_failure_is_classified_and_told_in_a_sentence(server, fault, way):
    llm = get_llm(ModelConfig(backend="openai", model="m", base_url=server.url, **FAST))
    server.set(fault)
    if fault == "empty":  # an answer, if an empty one: the caller decides it is a final failure
        assert call(llm, way).text == ""
        return
    with pytest.raises(ModelError) as caught:
        call(llm, way)
    e = caught.value
    message = str(e)
    assert isinstance(e, TransientModelError) == (fault != "400")
    # transient ones are retried (retries=1); a refused key or request is not retried at once
    assert server.total() == (1 if fault in ("401", "400") else 2)
    assert message.startswith((server.url, f"cannot reach {server.url}"))
    for internal in ("Error code", "Traceback", "JSONDecode", "AttributeError", "IndexError", "{'", "<html"):
        assert internal not in message, message
    expected = {"500": "answered 500", "429": "429 Too Many Requests", "hang": "did not answer within 0.3 s",
                "bad_json": "not valid JSON", "html": "an HTML page", "no_choices": "without any choices",
                "reset": "closed the connection without answering (model m)", "401": "check the key in OPENAI_API_KEY",
                "400": "refused the request (400)"}[fault]
    assert expected in message
    if fault in TRANSIENT:
        assert message.endswith("(tried 2 times)")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b'{"choices": "x"}', b'{"choices": [1]}',
                                  b'{"choices": [{"message": "hi"}]}', b'{"choices": [{"message": {"content": 5}}]}',
                                  b'{"choices": [{"message": {"content": "ok"}}], "usage": "lots"}',
                                  b'{"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": "x"}}'])
@pytest.mark.parametrize("way", ["sync", "async"])
def test_a_malformed_chat_completion_is_a_transient_error_never_an_internal_one(server, body, way):
    llm = get_llm(ModelConfig(backend="openai", model="m", base_url=server.url, **FAST))
    server.set("raw")
    server.raw_body = body
    with pytest.raises(TransientModelError, match=f"^{server.url} (sent a response without any choices|sent a chat "
                                                  "completion without a message|sent token counts that are not "
                                                  "numbers|answered with plain text instead of a chat completion)"):
        call(llm, way)
    assert server.total() == 2


@pytest.mark.parametrize("retry_after", ["1", "date"])
def test_a_429_waits_as_long_as_retry_after_says(server, retry_after):
    llm = get_llm(ModelConfig(backend="openai", model="m", base_url=server.url, timeout_s=5, retries=2,
                              backoff_s=0.01, backoff_max_s=5))
    server.retry_after = retry_after
    try:
        server.set("429", fail_first=1)
        assert llm.complete([{"role": "user", "content": "Question: hi"}]).text
    finally:
        server.retry_after = "0"
    assert server.calls[("answer", "429")] == 1 and server.healthy() == 1
    waited = server.times[1] - server.times[0]
    # backoff alone would wait ~0.01 s; "1" means one second, the date is 1-2 s ahead (1 s resolution)
    assert 0.95 <= waited < (1.5 if retry_after == "1" else 2.5), waited


# -- runs: keep every item, mark what may pass, heal it with one resume ----------------------

@pytest.mark.parametrize("side", ["answer", "judge"])
@pytest.mark.parametrize("fault", TRANSIENT)
def test_a_transient_fault_is_kept_as_retryable_and_one_resume_heals_it(server, ws, embedder, fault, side):
    settings, store = ws
    run = create_run(store, settings, "kb", "three", modes=("rag",))
    server.set(fault, side)
    out = Executor(store, settings, embedder, run.id).execute()
    first_healthy = server.healthy()
    before = counts(store, run.id)
    assert out.run.status == "incomplete" and out.counts == before
    assert lost(before) == 0  # every item and score is stored, failed or not
    if side == "answer":
        assert before["answer_retryable"] == 3 and before["unscored_retryable"] == 6 and first_healthy == 0
        reason = summary(store, run.id)["items"][0]["rag"]["scores"]["faithfulness"]["reason"]
        assert reason.startswith("no answer to score (")
    else:
        assert before["answered"] == 3 and before["unscored_retryable"] == 6 and first_healthy == 3
        reason = summary(store, run.id)["items"][0]["rag"]["scores"]["faithfulness"]["reason"]
        assert reason.startswith(f"the judge's endpoint failed: {server.url}")
    assert "Error" not in reason and "(tried 2 times)" in reason
    assert f"`python -m core resume {run.id}`" in out.run.error

    server.set("ok")
    out = healing(store, settings, embedder, run.id).execute()
    after = counts(store, run.id)
    assert out.run.status == "done" and out.run.error == ""
    assert after == {**after, "answered": 3, "scored": 6, "answer_retryable": 0, "unscored_retryable": 0,
                     "answer_missing": 0, "score_missing": 0, "done": 3}
    # redone: exactly the failed ones; every call the run needed was answered once, in all
    assert server.total("answer") == (3 if side == "answer" else 0) == out.answered
    assert out.scored == 6
    assert first_healthy + server.healthy() == 3 * CALLS_PER_ITEM
    assert len(store.answers(run.id)) == 3 and len(store.scores(run.id)) == 6  # replaced, not duplicated


def test_a_seeded_30_percent_mix_of_faults_heals_with_one_resume(server, ws, embedder):
    settings, store = ws
    run = create_run(store, settings, "kb", "three")  # both modes
    server.set("mix", "all", seed=7, rate=0.3)
    out = Executor(store, settings, embedder, run.id).execute()
    faults = server.total() - server.healthy()
    first_healthy = server.healthy()
    before = counts(store, run.id)
    assert faults > 0 and out.run.status == "incomplete" and lost(before) == 0
    to_redo = before["answer_retryable"] + before["unscored_retryable"]
    assert to_redo > 0

    server.set("ok")
    out = healing(store, settings, embedder, run.id).execute()
    after = counts(store, run.id)
    assert out.run.status == "done"
    assert (lost(after), after["answer_retryable"], after["unscored_retryable"]) == (0, 0, 0)
    assert after["answered"] == 6 and after["scored"] == 12
    assert server.total("answer") == before["answer_retryable"] == out.answered
    assert first_healthy + server.healthy() == 6 * CALLS_PER_ITEM  # nothing done twice


@pytest.mark.parametrize("side", ["answer", "judge"])
def test_an_empty_response_is_a_final_failure_that_resume_leaves_alone(server, ws, embedder, side):
    settings, store = ws
    run = create_run(store, settings, "kb", "three", modes=("rag",))
    server.set("empty", side)
    out = Executor(store, settings, embedder, run.id).execute()
    c = counts(store, run.id)
    assert lost(c) == 0 and c["answer_retryable"] == c["unscored_retryable"] == 0
    assert c["unscored_final"] == 6
    if side == "answer":  # every answer failed: not "done"
        assert c["answer_failed"] == 3 and out.run.status == "failed"
        assert out.run.error.startswith("no answer could be generated: 0/3 answered (3 failed for good")
    else:
        assert c["answered"] == 3 and out.run.status == "done"
    server.set("ok")
    out = Executor(store, settings, embedder, run.id).execute()
    assert server.total() == 0 and (out.answered, out.scored) == (0, 0)
    assert counts(store, run.id) == c


def test_run_and_resume_exit_non_zero_while_retryable_failures_remain(server, workspace, tmp_path, monkeypatch,
                                                                       capsys):
    from core import cli

    settings, _, env = workspace
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("RAGEVAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAGEVAL_STORAGE_URI", settings.db_uri)
    server.set("500", "judge")
    code = cli.main(["run", "--kb", "kb", "--questions", "three", "--modes", "rag", "--limit", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[-1].endswith("2/2 answered (0 failed for good, 0 to retry, 0 not yet); 0/4 scored (0 unscored for "
                            "good, 4 to retry, 0 not yet); `python -m core resume "
                            f"{err[0].split()[-1]}` retries what may pass"), err
    run_id = err[0].split()[-1]
    assert f"run {run_id} incomplete:" in err[-1]

    server.set("500", "judge", fail_first=2)  # still failing: the first call and its retry
    assert cli.main(["resume", run_id]) == 3
    assert "1 to retry" in capsys.readouterr().err
    assert cli.main(["show", run_id]) == 0
    shown = capsys.readouterr().out
    assert f"run {run_id} [incomplete]" in shown and "3/4 scored (0 unscored for good, 1 to retry, 0 not yet)" in shown
    server.set("ok")
    assert cli.main(["resume", run_id]) == 0
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "2/2 answered (0 failed for good, 0 to retry, 0 not yet); 4/4 scored (0 unscored for good, 0 to retry, "
        "0 not yet)")


# -- the scorer and the store ---------------------------------------------------------------

def test_an_unexpected_scoring_error_stays_isolated_with_a_plain_reason(embedder):
    def broken(messages, schema):
        return [][1]  # IndexError inside the judge

    passages = (Passage("p", "Cookies last 365 days.", "s", "d", "", 1.0),)
    scorer = Scorer(FakeLLM(broken), ModelConfig(), embedder, cache=None, strictness=1)
    s = asyncio.run(scorer.score(Answer("r", "q", "rag", "How long?", "365 days.", passages), passages,
                                 "faithfulness"))
    assert (s.value, s.retryable) == (None, False)
    assert s.reason == "scoring failed on an unexpected error (its details are in the log)"

    def down(messages, schema):
        raise TransientModelError("http://x/v1 answered 503 (a server error) for model m: busy")

    s = asyncio.run(Scorer(FakeLLM(down), ModelConfig(), embedder, cache=None, strictness=1).score(
        Answer("r", "q", "rag", "How long?", "365 days.", passages), passages, "answer_relevancy"))
    assert (s.value, s.retryable) == (None, True)
    assert s.reason == "the judge's endpoint failed: http://x/v1 answered 503 (a server error) for model m: busy"


def test_a_workspace_from_before_the_retryable_column_opens_and_reads_false(tmp_path):
    old_answers = pa.schema([(n, t) for n, t in zip(
        ["run_id", "question_id", "mode", "question", "text", "passages", "model", "latency_s", "prompt_tokens",
         "completion_tokens", "error", "created_at"],
        [pa.string()] * 7 + [pa.float64(), pa.int32(), pa.int32(), pa.string(), pa.string()])])
    old_scores = pa.schema([(n, t) for n, t in zip(
        ["run_id", "question_id", "mode", "metric", "value", "reason", "details", "judge", "latency_s", "created_at"],
        [pa.string()] * 4 + [pa.float64()] + [pa.string()] * 3 + [pa.float64(), pa.string()])])
    db = lancedb.connect(str(tmp_path / "db"))
    db.create_table("answers", [{"run_id": "r", "question_id": "q", "mode": "rag", "question": "Q?", "text": "",
                                 "passages": "[]", "model": "m", "latency_s": 0.0, "prompt_tokens": 0,
                                 "completion_tokens": 0, "error": "cannot reach http://x/v1", "created_at": "t"}],
                    schema=old_answers)
    db.create_table("scores", [{"run_id": "r", "question_id": "q", "mode": "rag", "metric": "faithfulness",
                                "value": None, "reason": "judge model error: 500", "details": "{}", "judge": "j",
                                "latency_s": 0.0, "created_at": "t"}], schema=old_scores)
    store = Store(str(tmp_path / "db"))
    [a] = store.answers("r")
    [s] = store.scores("r")
    assert (a.error, a.retryable, s.reason, s.retryable) == ("cannot reach http://x/v1", False,
                                                             "judge model error: 500", False)
    store.add_answer(dataclasses.replace(a, retryable=True), replace=True)
    store.add_score(dataclasses.replace(s, question_id="q2", retryable=True))
    assert [x.retryable for x in store.answers("r")] == [True]
    assert sorted((x.question_id, x.retryable) for x in store.scores("r")) == [("q", False), ("q2", True)]
    assert "retryable" in lancedb.connect(str(tmp_path / "db")).open_table("answers").schema.names


def test_the_run_pages_show_an_incomplete_run_and_offer_resume(settings, store, embedder, docs):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.config import PROJECT_ROOT

    ingest([str(docs)], "docs", store, embedder, settings)
    store.save_question_set("two", QUESTIONS[:2])
    run = create_run(store, settings, "docs", "two", modes=("rag",), metrics=("answer_relevancy",))

    def down(messages, schema):
        raise TransientModelError("http://x/v1 answered 503 (a server error) for model m: busy")

    out = Executor(store, settings, embedder, run.id, FakeLLM(lambda m, s: "365 days."), FakeLLM(down)).execute()
    assert out.run.status == "incomplete"
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/run.py").run()
    assert not at.exception and not at.error
    assert [p.proto.text for p in at.get("progress")] == ["incomplete · 0 of 2 items"]
    assert any("2/2 answered (0 failed for good, 0 to retry, 0 not yet); 0/2 scored (0 unscored for good, "
               "2 to retry, 0 not yet). Resume retries exactly those." in w.value.replace("\\", "") for w in at.warning)
    assert at.button(key="run_resume").proto.label == "Resume"
    table = next(d.value for d in at.dataframe if "Answer relevancy" in d.value.columns)
    assert table["Answer relevancy"].tolist() == ["to retry", "to retry"]
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="runs_resume_pick").options == [run.id]


# -- concurrency: the setting's number of calls in flight, across questions and within one ------

@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_run_keeps_as_many_calls_in_flight_as_the_setting_allows_and_no_more(server, ws, embedder, concurrency):
    settings, store = ws
    settings = dataclasses.replace(settings, concurrency=concurrency)
    run = create_run(store, settings, "kb", "three")  # 3 questions x 2 modes: 6 answers, then their scores
    server.set("ok")
    server.delay_s = 0.1
    try:
        out = Executor(store, settings, embedder, run.id).execute()
    finally:
        server.delay_s = 0.0
    assert out.run.status == "done"
    assert server.total() == len(QUESTIONS) * 2 * CALLS_PER_ITEM
    assert server.peak == concurrency
    c = counts(store, run.id)
    assert lost(c) == 0 and c["scored"] == c["scores"]
