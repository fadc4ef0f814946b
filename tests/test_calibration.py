"""Checking the judge: exact accuracies from a scripted judge, the trust verdicts, and a
check stored and reused by judge identity in a real LanceDB."""
import dataclasses
import json

import pytest

from core import calibration
from core.calibration import CalibrationItem, check_judge, figures, judge_trust, run_check, with_uncalibrated
from core.config import ModelConfig
from core.llm.fake import FakeLLM
from core.models import JudgeCheck, Run

QUESTION = "How long does the remember-me cookie last?"
EVIDENCE = ("The remember me cookie lasts 365 days by default.",)


def item(id, faithful, unfaithful, subtle, off):
    return CalibrationItem(id, "software docs", QUESTION, EVIDENCE, faithful, unfaithful, subtle, off)


# Markers the judge reacts to; RAGAS's few-shot examples contain none of them.
ITEMS = [
    item("a", "ZQRIGHT", "ZQWRONG", "ZQWRONG", "ZQWRONG"),  # every pair right
    item("b", "ZQRIGHT", "ZQWRONG", "ZQRIGHT", "ZQRIGHT"),  # subtle and off-topic pairs tie
    item("c", "ZQBROKEN", "ZQWRONG", "ZQWRONG", "ZQWRONG"),  # faithful answer unscorable: pairs lost
]


def scripted_judge(messages, schema):
    """Statements are the answer's marker; a statement is supported only if it is ZQRIGHT;
    an answer's generated question is the calibration question only if it is ZQRIGHT."""
    prompt = messages[-1]["content"]
    marker = next(m for m in ("ZQRIGHT", "ZQWRONG", "ZQBROKEN") if m in prompt)
    if marker == "ZQBROKEN":
        return "{not json"
    props = schema.get("properties", {})
    if "noncommittal" in props:
        return {"question": QUESTION if marker == "ZQRIGHT" else "Which fruit is yellow and curved?",
                "noncommittal": 0}
    if "$defs" in schema:
        return {"statements": [{"statement": marker, "reason": "scripted", "verdict": int(marker == "ZQRIGHT")}]}
    return {"statements": [marker]}


@pytest.fixture
def scorer(embedder):
    from core.evaluate import Scorer

    return Scorer(FakeLLM(scripted_judge), ModelConfig(), embedder, cache=None, strictness=1)


def test_runner_scores_every_answer_and_pairs_are_counted_exactly(scorer):
    seen = []
    check = run_check(scorer, ModelConfig(), strictness=1, items=ITEMS,
                      progress=lambda done, total, what: seen.append((done, total)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert check.items == 3 and len(check.scores) == 3 * 5  # 3 faithfulness + 2 relevancy answers each
    f = figures(check)
    faith, rel = f["faithfulness"], f["answer_relevancy"]
    assert faith["pairs"] == {"unfaithful": {"right": 2, "n": 3}, "subtly_unfaithful": {"right": 1, "n": 3}}
    assert (faith["right"], faith["n"], faith["accuracy"]) == (3, 6, 0.5)
    assert (faith["ties"], faith["pairs_unscored"]) == (1, 2)
    assert (faith["unscored"], faith["scored_answers"]) == (1, 9)
    [(reason, count)] = faith["unscored_reasons"].items()
    assert count == 1 and reason.startswith("the judge's output did not parse as StatementGeneratorOutput")
    assert (rel["right"], rel["n"], rel["ties"], rel["pairs_unscored"]) == (1, 3, 1, 1)
    assert (rel["unscored"], rel["scored_answers"]) == (1, 6)
    assert faith["trusted"] is False and rel["trusted"] is False
    assert "3/6 calibration pairs (2/3 pairs against answers that contradict the evidence" in faith["sentence"]
    assert "; 1 tied; 2 could not be compared" in faith["sentence"]


def check_with(faith_right: int, subtle_right: int, rel_right: int, n: int) -> JudgeCheck:
    """A stored check whose pairs come out exactly as asked (first k items right, the rest wrong)."""
    scores = []
    for i in range(n):
        def add(answer, metric, value):
            scores.append({"item": f"i{i}", "answer": answer, "metric": metric, "value": value, "reason": ""})
        add("faithful", "faithfulness", 0.5)
        add("unfaithful", "faithfulness", 0.0 if i < faith_right else 1.0)
        add("subtly_unfaithful", "faithfulness", 0.0 if i < subtle_right else 1.0)
        add("faithful", "answer_relevancy", 0.9)
        add("off_topic", "answer_relevancy", 0.1 if i < rel_right else 0.95)
    return JudgeCheck("k", {}, "embedded:x.gguf", "2026-01-01T00:00:00", n, 10.0 * n, tuple(scores))


def test_trust_needs_eighty_percent_of_enough_pairs():
    f = figures(check_with(faith_right=12, subtle_right=8, rel_right=9, n=12))
    assert f["faithfulness"]["accuracy"] == pytest.approx(20 / 24) and f["faithfulness"]["trusted"] is True
    assert "ranked faithful answers first in 20/24 calibration pairs" in f["faithfulness"]["sentence"]
    assert "can be relied on" in f["faithfulness"]["sentence"]
    assert f["answer_relevancy"]["accuracy"] == 0.75 and f["answer_relevancy"]["trusted"] is False
    assert "not trustworthy" in f["answer_relevancy"]["sentence"]
    assert f["faithfulness"]["seconds_per_item"] == 10.0
    edge = figures(check_with(faith_right=5, subtle_right=3, rel_right=8, n=10))["answer_relevancy"]
    assert edge["accuracy"] == 0.8 and edge["trusted"] is True  # the bar is inclusive
    few = figures(check_with(faith_right=2, subtle_right=2, rel_right=2, n=2))["answer_relevancy"]
    assert few["accuracy"] == 1.0 and few["trusted"] is False and "Too few pairs" in few["sentence"]
    never = figures(None)
    assert set(never) == {"faithfulness", "answer_relevancy"}
    assert all(v["trusted"] is None and v["accuracy"] is None and "never checked" in v["sentence"]
               for v in never.values())


def test_a_check_is_stored_and_reused_until_the_judge_changes(store, scorer):
    cfg = ModelConfig()
    made = []

    def make_scorer():
        made.append(1)
        return scorer

    assert judge_trust(store, cfg, strictness=1)["faithfulness"]["trusted"] is None  # never checked
    first, reused = check_judge(store, make_scorer, cfg, strictness=1, limit=2, items=ITEMS)
    assert not reused and first.items == 2 and len(made) == 1
    calls = scorer.judge.calls
    again, reused = check_judge(store, make_scorer, cfg, strictness=1, limit=2, items=ITEMS)
    assert reused and again == first and len(made) == 1 and scorer.judge.calls == calls  # nothing judged
    # a bigger check than the stored one runs; so does one for another temperature
    bigger, reused = check_judge(store, make_scorer, cfg, strictness=1, limit=3, items=ITEMS)
    assert not reused and bigger.items == 3
    warm = dataclasses.replace(cfg, temperature=0.7)
    other, reused = check_judge(store, make_scorer, warm, strictness=1, limit=2, items=ITEMS)
    assert not reused and other.judge_key != first.judge_key and len(made) == 3
    # the most complete check of exactly this judge is what goes beside its scores
    assert judge_trust(store, cfg, strictness=1)["faithfulness"]["items"] == 3
    assert judge_trust(store, warm, strictness=1)["faithfulness"]["items"] == 2
    run = Run("r1", "2026-01-01T00:00:00", "kb", "default", 1, ("rag",), ("faithfulness",), "a", first.label, 4,
              "hybrid", config={"judge_model": dataclasses.asdict(warm), "relevancy_strictness": 1})
    assert judge_trust(store, run) == with_uncalibrated(figures(other))
    assert judge_trust(store, run)["context_relevance"]["calibrated"] is False  # not on the calibration set
    assert judge_trust(store, first.label)["faithfulness"]["items"] == 3  # by label: newest complete check
    assert judge_trust(store, "openai:never@http://x")["answer_relevancy"]["trusted"] is None


def test_the_shipped_calibration_set_is_complete():
    items = calibration.load_items()
    assert len(items) >= 40 and len({i.id for i in items}) == len(items)
    assert len({i.domain for i in items}) >= 8
    for i in items:
        assert 1 <= len(i.evidence) <= 3
        answers = [i.faithful, i.unfaithful, i.subtly_unfaithful, i.off_topic]
        assert all(a.strip() for a in answers) and len(set(answers)) == 4, i.id
    assert len({i.domain for i in items[:9]}) == 9  # a --limit still spans domains


def test_a_broken_calibration_file_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "cal.json"
    bad.write_text(json.dumps({"items": [{"id": "x"}]}))
    with pytest.raises(calibration.RagEvalError, match="cal.json: not a readable calibration set"):
        calibration.load_items(bad)


def test_the_settings_page_shows_the_stored_check_of_its_judge(store, settings, scorer):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.config import PROJECT_ROOT

    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/settings.py")
    at.run()
    assert not at.exception and not at.error
    assert "Faithfulness: not checked" in " ".join(m.value for m in at.markdown)
    store.add_judge_check(run_check(scorer, settings.judge_model, strictness=settings.relevancy_strictness,
                                    items=ITEMS))
    st.cache_data.clear()
    at.run()
    assert not at.exception and not at.error
    shown = " ".join(m.value for m in at.markdown)
    assert "Faithfulness: not trustworthy" in shown and "Answer relevancy: not trustworthy" in shown
    assert any("first in 3/6 calibration pairs" in t.value for t in at.text)
    assert any(t.value.startswith("unscored 1×: the judge's output did not parse") for t in at.text)


def test_cli_judge_check_on_the_embedded_judge_is_stored_and_shown_with_runs(tmp_path):
    """The real embedded judge on two items, through `python -m core`; then the stored check
    is reused without loading a model, and `show --json` carries it for a run with that judge."""
    import os
    import subprocess
    import sys

    from core.config import PROJECT_ROOT, load_settings
    from core.workspace import open_workspace

    env = dict(os.environ, RAGEVAL_HOME=str(tmp_path / "home"), RAGEVAL_RELEVANCY_STRICTNESS="1")

    def core(*args):
        return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env,
                              cwd=PROJECT_ROOT, timeout=1800)

    p = core("judge", "check", "--limit", "2", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["reused"] is False and out["items"] == 2
    assert out["identity"]["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert out["identity"]["relevancy_strictness"] == 1
    faith, rel = out["metrics"]["faithfulness"], out["metrics"]["answer_relevancy"]
    assert (faith["n"], rel["n"], faith["scored_answers"], rel["scored_answers"]) == (4, 2, 6, 4)
    assert 0 <= faith["right"] <= 4 and faith["trusted"] is False  # 4 pairs are too few to trust anyway
    # the embedded judge's faithfulness is the likelihood judge, checked on held-out rules
    assert out["identity"]["faithfulness_judge"].startswith("likelihood:v") and "held-out" in faith["sentence"]
    assert "judge check: 2/2" in p.stderr  # progress, one line per item when not on a terminal
    again = core("judge", "check", "--limit", "2", "--json")
    assert json.loads(again.stdout.strip().splitlines()[-1])["reused"] is True
    assert "judge check:" not in again.stderr  # nothing was judged

    settings = load_settings(env)
    store = open_workspace(settings)
    run = Run("r-cal", "2026-01-01T00:00:00", "kb", "default", 1, ("rag",), ("faithfulness", "answer_relevancy"),
              "a", out["judge"], 4, "hybrid",
              config={"judge_model": dataclasses.asdict(settings.judge_model), "relevancy_strictness": 1,
                      "faithfulness_judge": "likelihood"})
    store.create_run(run)
    shown = core("show", "r-cal", "--json")
    assert shown.returncode == 0, shown.stderr
    calibration = json.loads(shown.stdout)["calibration"]
    assert {m: calibration[m] for m in out["metrics"]} == out["metrics"]
    assert [m for m, f in calibration.items() if f.get("calibrated") is False] == [
        "context_relevance", "context_recall", "context_precision", "answer_correctness"]
    text = core("show", "r-cal")
    assert "judge check: Faithfulness: the judge ranked faithful answers first in" in text.stdout
