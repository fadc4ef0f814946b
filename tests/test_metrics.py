"""The retrieval and reference metrics through the real Scorer and RAGAS, on a scripted judge."""
import asyncio

import pytest

from core.config import ModelConfig
from core.evaluate import NO_REFERENCE, NOT_RETRIEVAL, Scorer, bounded_schema
from core.llm.fake import FakeLLM
from core.models import Answer, Passage

PASSAGES = (Passage("p1", "The remember cookie lasts 365 days.", "s", "d", "", 1.0),
            Passage("p2", "Sessions are signed with the secret key.", "s", "d", "", 0.5))
QUESTION = "How long does the remember cookie last?"
REFERENCE = "The remember cookie lasts 365 days."


def scripted(rating=2, precision=(1, 0)):
    """A judge answering each RAGAS response model; context precision's verdicts in passage order."""
    verdicts = iter(precision)

    def reply(messages, schema):
        return {"ContextRelevanceOutput": lambda: {"rating": rating},
                "ContextRecallOutput": lambda: {"classifications": [
                    {"statement": REFERENCE, "reason": "in the first passage", "attributed": 1},
                    {"statement": "It can be changed.", "reason": "not in the passages", "attributed": 0}]},
                "ContextPrecisionOutput": lambda: {"reason": "r", "verdict": next(verdicts)},
                "StatementGeneratorOutput": lambda: {"statements": ["The cookie lasts 365 days."]},
                "ClassificationWithReason": lambda: {"TP": [{"statement": "The cookie lasts 365 days.", "reason": "r"}],
                                                     "FP": [], "FN": []},
                }[schema["title"]]()
    return reply


def score(embedder, judge, metric, mode="rag", reference=REFERENCE, text="It lasts 365 days."):
    scorer = Scorer(FakeLLM(judge), ModelConfig(), embedder, cache=None, strictness=1)
    answer = Answer("r", "q", mode, QUESTION, text, PASSAGES if mode == "rag" else ())
    return asyncio.run(scorer.score(answer, PASSAGES, metric, reference))


def test_context_relevance_averages_ragas_two_judges(embedder):
    s = score(embedder, scripted(rating=1), "context_relevance", reference="")
    assert s.value == pytest.approx(0.5)  # both judges rate 1 of 2
    assert s.details["ratings"] == [1, 1] and s.details["evidence"] == ["p1", "p2"]
    assert score(embedder, scripted(rating=2), "context_relevance").value == pytest.approx(1.0)


def test_context_recall_and_precision_judge_the_passages_against_the_reference(embedder):
    recall = score(embedder, scripted(), "context_recall")
    assert recall.value == pytest.approx(0.5)
    assert [c["attributed"] for c in recall.details["classifications"]] == [1, 0]
    first = score(embedder, scripted(precision=(1, 0)), "context_precision")
    last = score(embedder, scripted(precision=(0, 1)), "context_precision")
    assert first.value == pytest.approx(1.0) and last.value == pytest.approx(0.5)  # useful passage ranked last
    assert [(v["passage"], v["verdict"]) for v in last.details["passage_verdicts"]] == [("p1", 0), ("p2", 1)]


def test_answer_correctness_scores_both_modes_with_its_statements_kept(embedder):
    for mode in ("llm_only", "rag"):
        s = score(embedder, scripted(), "answer_correctness", mode=mode)
        assert 0.75 < s.value <= 1.0  # F1 of 1 at 75%, plus the embeddings' similarity at 25%
        assert s.details["TP"] == ["The cookie lasts 365 days."] and s.details["FP"] == []
        assert s.details["reference_statements"] == ["The cookie lasts 365 days."]


def test_a_metric_that_does_not_apply_is_unscored_for_good_with_its_reason(embedder):
    def never(messages, schema):
        raise AssertionError("a metric that does not apply must not ask the judge")

    for metric in ("context_recall", "context_precision", "answer_correctness"):
        s = score(embedder, never, metric, reference="  ")
        assert s.value is None and s.reason == NO_REFERENCE and not s.retryable
    s = score(embedder, never, "context_relevance", mode="llm_only")
    assert s.value is None and s.reason == NOT_RETRIEVAL and not s.retryable


def test_no_statements_is_not_a_perfect_correctness(embedder):
    def empty(messages, schema):
        return {"statements": []} if schema["title"] == "StatementGeneratorOutput" else scripted()(messages, schema)

    s = score(embedder, empty, "answer_correctness")
    assert s.value is None and s.reason == "the judge found no statements in the answer"


def test_a_relevance_rating_may_only_be_0_1_or_2():
    from ragas.metrics.collections.context_recall.util import ContextRecallOutput
    from ragas.metrics.collections.context_relevance.util import ContextRelevanceOutput

    assert bounded_schema(ContextRelevanceOutput.model_json_schema())["properties"]["rating"]["enum"] == [0, 1, 2]
    recall = bounded_schema(ContextRecallOutput.model_json_schema())
    assert recall["$defs"]["ContextRecallClassification"]["properties"]["attributed"]["enum"] == [0, 1]


def test_a_judge_endpoint_down_leaves_context_relevance_retryable(embedder):
    from core.errors import TransientModelError

    def down(messages, schema):
        raise TransientModelError("connection refused")

    s = score(embedder, down, "context_relevance")
    assert s.value is None and s.retryable and "connection refused" in s.reason


def test_a_cli_run_scores_the_new_metrics_on_the_embedded_models(settings, docs, capsys):
    """One question, RAG only, on the real embedded answer model and judge: context relevance
    and answer correctness are scored, and show --json carries them by name."""
    import json

    from core.cli import main

    qfile = docs.parent / "q.csv"
    qfile.write_text("question,reference\nHow long does the remember cookie last?,It lasts 365 days.\n")
    assert main(["ingest", str(docs), "--kb", "docs"]) == 0
    assert main(["questions", "import", str(qfile), "--name", "one"]) == 0
    capsys.readouterr()
    assert main(["run", "--kb", "docs", "--questions", "one", "--modes", "rag", "--top-k", "2",
                 "--metrics", "context_relevance,answer_correctness"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    scores = shown["items"][0]["rag"]["scores"]
    assert set(scores) == {"context_relevance", "answer_correctness"}
    relevance = scores["context_relevance"]
    assert relevance["value"] is not None and 0 <= relevance["value"] <= 1, relevance
    assert all(r in (0, 1, 2) for r in relevance["details"]["ratings"]) and relevance["details"]["ratings"]
    correctness = scores["answer_correctness"]
    # the small embedded judge may split no statements out of a short answer: unscored, and saying so
    assert (correctness["value"] is not None and 0 <= correctness["value"] <= 1
            or correctness["reason"].startswith("the judge found no statements")), correctness
    assert shown["calibration"]["context_relevance"]["calibrated"] is False


def test_a_run_of_every_metric_carries_them_and_the_why_to_json_exports_and_report(settings, store, embedder, docs):
    import io

    import pandas as pd

    from core.executor import Executor
    from core.ingest import ingest
    from core.models import METRICS, Question
    from core.report import export_bytes, html_report
    from core.results import document, load
    from core.runs import create_run

    def answer(messages, schema):
        return "It lasts 365 days." if "Documentation passages" in messages[-1]["content"] else "No idea."

    def judge(messages, schema):
        prompt = messages[-1]["content"]
        if schema["title"] == "StatementGeneratorOutput":
            return {"statements": ["It is unknown." if "No idea." in prompt else "The cookie lasts 365 days."]}
        if schema["title"] == "NLIStatementOutput":
            return {"statements": [{"statement": "s", "reason": "r", "verdict": int("It is unknown." not in prompt)}]}
        if schema["title"] == "AnswerRelevanceOutput":
            return {"question": "How long does the cookie last?", "noncommittal": 0}
        return scripted(precision=(1, 0, 0, 0))(messages, schema)

    ingest([str(docs)], "docs", store, embedder, settings)
    store.save_question_set("two", [Question("a", QUESTION, reference=REFERENCE), Question("b", "What is Flask?")])
    run = create_run(store, settings, "docs", "two", metrics=METRICS)
    Executor(store, settings, embedder, run.id, FakeLLM(answer), FakeLLM(judge)).execute()
    res = load(store, run.id)
    assert res.run.status == "done"  # what does not apply is settled, not pending
    doc = document(store, res)
    a, b = doc["items"]
    assert a["rag"]["scores"]["context_recall"]["value"] == pytest.approx(0.5)
    assert a["llm_only"]["scores"]["context_recall"]["reason"] == NOT_RETRIEVAL
    assert b["rag"]["scores"]["answer_correctness"]["reason"] == NO_REFERENCE
    assert b["rag"]["scores"]["context_relevance"]["value"] == pytest.approx(1.0)  # needs no reference
    assert a["why"]["class"] == "helped" and doc["why"]["counts"]["helped"] == 2
    rows = pd.read_csv(io.BytesIO(export_bytes(store, res, "csv")))
    assert set(rows["why"]) == {"helped"} and "context_precision_unscored_reason" in rows.columns
    assert "Why RAG changed the scores" in html_report(store, res)


def test_the_cache_never_gives_a_passages_score_to_the_llm_only_item(embedder, tmp_path):
    from core.evaluate import JudgeCache

    scorer = Scorer(FakeLLM(scripted()), ModelConfig(), embedder, cache=JudgeCache(tmp_path / "judge"), strictness=1)
    rag = Answer("r", "q", "rag", QUESTION, "It lasts 365 days.", PASSAGES)
    llm_only = Answer("r", "q", "llm_only", QUESTION, "A year.")
    assert asyncio.run(scorer.score(rag, PASSAGES, "context_relevance")).value == pytest.approx(1.0)
    again = asyncio.run(scorer.score(rag, PASSAGES, "context_relevance"))
    assert again.value == pytest.approx(1.0) and again.latency_s == 0.0  # from the cache
    s = asyncio.run(scorer.score(llm_only, PASSAGES, "context_relevance"))
    assert s.value is None and s.reason == NOT_RETRIEVAL
