"""Orchestration with a scripted model: resume, cancel, isolation. The real models are
exercised in test_engine_e2e.py; here the model is not what is tested."""
import json
import time

import pytest

from core import jobs
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.models import Question
from core.runs import cancel, create_run, summary
from core.executor import Executor

QUESTIONS = [Question(f"q{i}", f"Question number {i} about Flask-Login remember me?") for i in range(1, 5)]


def judge_reply(messages, schema):
    title = schema["title"]
    if title == "StatementGeneratorOutput":
        return {"statements": ["Flask-Login remembers users.", "It uses a cookie."]}
    if title == "NLIStatementOutput":
        return {"statements": [{"statement": "Flask-Login remembers users.", "reason": "stated", "verdict": 1},
                               {"statement": "It uses a cookie.", "reason": "not stated", "verdict": 0}]}
    if title == "AnswerRelevanceOutput":
        return {"question": "What does remember me do in Flask-Login?", "noncommittal": 0}
    raise AssertionError(title)


@pytest.fixture
def kb(settings, store, embedder, docs):
    ingest([str(docs)], "kb", store, embedder, settings)
    store.save_question_set("four", QUESTIONS)
    return "kb"


def test_a_crashed_run_resumes_without_recomputing(settings, store, embedder, kb):
    run = create_run(store, settings, kb, "four")
    calls = []

    def crashing_answer(messages, schema):
        calls.append(messages[-1]["content"])
        if len(calls) == 5:  # the worker dies in the middle of question 3
            raise RuntimeError("worker killed")
        return "Flask-Login remembers users with a cookie."

    with pytest.raises(RuntimeError):
        Executor(store, settings, embedder, run.id, FakeLLM(crashing_answer), FakeLLM(judge_reply)).execute()
    assert store.run(run.id).status == "failed"
    # the four answers made before the crash are kept (questions run side by side, so which ones
    # depends on timing); whatever is missing is done by the resume, nothing twice
    kept = {(a.question_id, a.mode) for a in store.answers(run.id)}
    scored = len(store.scores(run.id))
    assert 4 <= len(kept) < 8 and scored <= 2 * len(kept)

    answer_llm, judge_llm = FakeLLM(lambda m, s: "A cookie."), FakeLLM(judge_reply)
    out = Executor(store, settings, embedder, run.id, answer_llm, judge_llm).execute()
    assert out.run.status == "done"
    assert answer_llm.calls == 8 - len(kept)
    assert (out.answered, out.scored) == (8 - len(kept), 16 - scored)
    assert len(store.answers(run.id)) == 8 and len(store.scores(run.id)) == 16


def test_cancel_stops_after_the_items_in_flight(settings, store, embedder, kb):
    run = create_run(store, settings, kb, "four", modes=("rag",), metrics=("faithfulness",))

    def answer_then_cancel(messages, schema):
        cancel(store, run.id)
        time.sleep(jobs.CANCEL_POLL_S)  # a worker reads the flag from the store at most this often
        return "An answer."

    out = Executor(store, settings, embedder, run.id, FakeLLM(answer_then_cancel), FakeLLM(judge_reply)).execute()
    assert out.run.status == "cancelled"
    assert len(store.answers(run.id)) == 1  # the one item in flight (concurrency 1), of q1 or q2
    out = Executor(store, settings, embedder, run.id, FakeLLM(lambda m, s: "A."), FakeLLM(judge_reply)).execute()
    assert out.run.status == "done" and len(store.answers(run.id)) == 4


def test_both_modes_are_judged_against_the_same_passages(settings, store, embedder, kb):
    run = create_run(store, settings, kb, "four", metrics=("faithfulness",), limit=1, top_k=2)
    nli_prompts = []

    def answer(messages, schema):
        return "Cookie from the docs." if "Documentation passages" in messages[-1]["content"] else "Cookie, I think."

    def judge(messages, schema):
        prompt = messages[0]["content"]
        if schema["title"] == "StatementGeneratorOutput":  # one statement per answer, so prompts differ
            return {"statements": ["Cookie from the docs." if "from the docs" in prompt else "Cookie, I think."]}
        nli_prompts.append(prompt)
        return {"statements": [{"statement": "Cookie.", "reason": "r", "verdict": 1}]}

    Executor(store, settings, embedder, run.id, FakeLLM(answer), FakeLLM(judge)).execute()
    rag = next(a for a in store.answers(run.id) if a.mode == "rag")
    llm_only = next(a for a in store.answers(run.id) if a.mode == "llm_only")
    assert len(rag.passages) == 2 and llm_only.passages == ()
    scores = {s.mode: s for s in store.scores(run.id)}
    assert scores["rag"].details["evidence"] == scores["llm_only"].details["evidence"] == [p.id for p in rag.passages]
    assert len(nli_prompts) == 2
    for p in rag.passages:  # the judge saw the RAG passages as evidence for both answers
        snippet = json.dumps(p.text)[1:60]
        assert snippet in nli_prompts[0] and snippet in nli_prompts[1]
    assert scores["rag"].value == scores["llm_only"].value == 1.0


def test_a_failing_judge_leaves_that_score_unscored_with_its_reason(settings, store, embedder, kb):
    run = create_run(store, settings, kb, "four", modes=("rag",), limit=3)

    def flaky_judge(messages, schema):
        prompt = messages[0]["content"]
        if "Question number 1" in prompt and schema["title"] == "StatementGeneratorOutput":
            return "{not json"
        if "Question number 2" in prompt and schema["title"] == "AnswerRelevanceOutput":
            return {"question": "", "noncommittal": 1}
        if "Question number 3" in prompt and schema["title"] == "StatementGeneratorOutput":
            return {"statements": []}
        return judge_reply(messages, schema)

    def answer(messages, schema):
        return "Answer to " + messages[-1]["content"].split("Question: ")[-1]

    Executor(store, settings, embedder, run.id, FakeLLM(answer), FakeLLM(flaky_judge)).execute()
    s = summary(store, run.id)
    got = {(i["question_id"], m): (v["value"], v["reason"]) for i in s["items"] for m, v in i["rag"]["scores"].items()}
    assert got[("q1", "faithfulness")][0] is None
    assert "did not parse as StatementGeneratorOutput" in got[("q1", "faithfulness")][1]
    assert got[("q2", "answer_relevancy")] == (None, "the judge generated no questions from the answer")
    assert got[("q3", "faithfulness")] == (None, "the judge found no statements in the answer")
    assert got[("q1", "answer_relevancy")][0] > 0.5 and got[("q2", "faithfulness")] == (0.5, None)
    assert s["modes"]["rag"]["faithfulness"] == {"mean": 0.5, "n_scored": 1, "n_unscored": 2,
                                                 "n_unscored_retryable": 0, "n_missing": 0}
    assert not any(v["retryable"] for i in s["items"] for v in i["rag"]["scores"].values())  # all final


def test_bad_choices_are_refused_before_anything_is_stored(settings, store, kb):
    from core.errors import NotFoundError, RagEvalError

    with pytest.raises(NotFoundError, match="knowledge base 'nope' does not exist"):
        create_run(store, settings, "nope", "four")
    with pytest.raises(NotFoundError, match="question set 'nope' does not exist"):
        create_run(store, settings, kb, "nope")
    with pytest.raises(RagEvalError, match="mode 'both' is unknown"):
        create_run(store, settings, kb, "four", modes=("both",))
    assert store.runs() == []


def test_a_run_executing_elsewhere_is_not_executed_twice(settings, store, embedder, kb, monkeypatch):
    from core import jobs
    from core.runs import status

    run = create_run(store, settings, kb, "four", limit=1)
    other = jobs.start(store, "run", run.id, ("resume", run.id))  # another worker holds it
    with pytest.raises(jobs.JobBusy, match=f"run {run.id} is running .*cancel it first or wait"):
        Executor(store, settings, embedder, run.id, FakeLLM(lambda m, s: "A."), FakeLLM(judge_reply)).execute()
    store.update_run(run.id, status="running")
    other._stop.set()  # that worker dies: its heartbeat stops
    monkeypatch.setattr(jobs, "STALE_S", 0.3)
    import time
    time.sleep(0.4)
    # once its heartbeat is stale the run counts as interrupted, and resuming it works
    assert status(store, store.run(run.id)) == "interrupted"
    out = Executor(store, settings, embedder, run.id, FakeLLM(lambda m, s: "A."), FakeLLM(judge_reply)).execute()
    assert out.run.status == "done" and len(store.answers(run.id)) == 2
    assert status(store, out.run) == "done"
