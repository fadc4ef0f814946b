"""A run read as columns (`core.results`) against the per-row path it replaces, the bounded
bootstrap against scipy's, and figures that stay small at 5,000 questions."""
import json
import math
import subprocess
import sys
import tracemalloc
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from core import charts, results, stats
from core.models import DEFAULT_METRICS, MODES, Answer, Passage, Question, Review, Run, Score
from core.runs import summary
from core.store import now

ROOT = Path(__file__).resolve().parent.parent


def per_row_summary(store, run_id: str) -> dict:
    """The run summary as it was built before `core.results`: every answer and score read
    as a Python object, then put together item by item (the reference to compare with)."""
    run = store.run(run_id)
    qs = store.question_set(run.question_set, run.question_set_version).questions
    questions = list(qs[: run.limit] if run.limit else qs)
    answers = {(a.question_id, a.mode): a for a in store.answers(run_id)}
    scores = {(s.question_id, s.mode, s.metric): s for s in store.scores(run_id)}
    modes = {}
    for mode in run.modes:
        modes[mode] = {}
        for metric in run.metrics:
            got = [scores.get((q.id, mode, metric)) for q in questions]
            values = [s.value for s in got if s is not None and s.scored]
            modes[mode][metric] = {"mean": sum(values) / len(values) if values else None, "n_scored": len(values),
                                   "n_unscored": sum(1 for s in got if s is not None and not s.scored),
                                   "n_unscored_retryable": sum(1 for s in got if s is not None and s.retryable),
                                   "n_missing": sum(1 for s in got if s is None)}
    done = sum(1 for q in questions for m in run.modes
               if (q.id, m) in answers and all((q.id, m, k) in scores for k in run.metrics))

    def score_json(s):
        if s is None:
            return {"value": None, "reason": "not scored yet"}
        return {"value": s.value, "reason": s.reason or None, "retryable": s.retryable, "details": s.details,
                "judge": s.judge, "latency_s": s.latency_s}

    items = []
    for q in questions:
        item = {"question_id": q.id, "question": q.question, "category": q.category, "reference": q.reference}
        for mode in run.modes:
            a = answers.get((q.id, mode))
            measured = a is not None and a.model != "imported"
            item[mode] = None if a is None else {
                "answer": a.text, "error": a.error, "retryable": a.retryable, "model": a.model,
                **{k: getattr(a, k) if measured else None for k in ("latency_s", "prompt_tokens", "completion_tokens")},
                "passages": [asdict(p) for p in a.passages],
                "scores": {m: score_json(scores.get((q.id, mode, m))) for m in run.metrics}}
        items.append(item)
    run_json = asdict(run)
    run_json.pop("config")
    run_json["faithfulness_judge"] = run.config.get("faithfulness_judge", "ragas")
    run_json["kb_version"], run_json["encoder"] = run.config.get("kb_version"), run.config.get("encoder")
    return {"run_id": run.id, "run": run_json, "modes": modes, "items": items,
            "progress": {"done": done, "total": len(questions) * len(run.modes)},
            "reviews": [{k: v for k, v in asdict(r).items() if k != "run_id"} for r in store.reviews(run_id)]}


@pytest.fixture
def small_run(store):
    """Six questions (the run is limited to five) with every case: both modes scored, an
    unscored score, a missing score, a missing answer, a failed answer, an imported one; and
    a person's review of one score."""
    qs = [Question(f"q{i}", f"Question {i}?", reference="ref" if i == 1 else "", category="a" if i < 3 else "")
          for i in range(6)]
    saved = store.save_question_set("six", qs)
    run = Run("r1", now(), "kb", "six", saved.version, MODES, DEFAULT_METRICS, "endpoint:m", "endpoint:j", 4, "hybrid",
              limit=5, status="done")
    store.create_run(run)
    p = (Passage("d::0", "The cookie lasts 365 days.", "d", "doc.md", "Guide > Cookies", 0.91),
         Passage("d::1", "Pass remember=True.", "d", "doc.md", "", None))
    answers, scores = [], []
    for i in range(5):
        for mode in MODES:
            if (i, mode) == (3, "rag"):
                continue  # not answered yet
            answers.append(Answer("r1", f"q{i}", mode, f"Question {i}?", "" if i == 4 else f"Answer {i} {mode}",
                                  p if mode == "rag" else (), "imported" if i == 2 else "endpoint:m", 1.5, 100, 20,
                                  error="the endpoint failed" if i == 4 else ""))
            for metric in DEFAULT_METRICS:
                if (i, mode, metric) == (1, "llm_only", "answer_relevancy"):
                    continue  # not scored yet
                if i == 4 or (i, metric) == (0, "faithfulness") and mode == "rag":
                    scores.append(Score("r1", f"q{i}", mode, metric, None, "the judge found no statements"))
                else:
                    scores.append(Score("r1", f"q{i}", mode, metric, round(0.1 * i + (0.3 if mode == "rag" else 0), 2),
                                        details={"verdicts": [{"statement": "s", "reason": "r", "verdict": 1}]},
                                        judge="endpoint:j", latency_s=0.5))
    scores.append(Score("r1", "q5", "rag", "faithfulness", 0.9))  # beyond the run's limit: never shown
    store.add_answers(answers)
    store.add_scores(scores)
    store.put_review(Review("r1", "q1", "rag", "faithfulness", "ana", "wrong", None, 0.4, "a note", now()))
    return "r1"


def test_the_frame_is_what_the_per_row_path_gave(store, small_run):
    before = per_row_summary(store, small_run)
    res = results.load(store, small_run)
    pd.testing.assert_frame_equal(res.frame.drop(columns="retryable"), stats.score_frame(before), check_dtype=False)
    assert not res.frame["retryable"].any()
    assert res.modes_json() == before["modes"]
    assert (res.done, res.total) == (before["progress"]["done"], before["progress"]["total"]) == (8, 10)
    full = summary(store, small_run)
    assert full.pop("counts") == res.counts == {
        "items": 10, "done": 8, "answered": 7, "answer_failed": 2, "answer_retryable": 0, "answer_missing": 1,
        "scores": 20, "scored": 12, "unscored_final": 5, "unscored_retryable": 0, "score_missing": 3}
    assert full == before  # the full items (show --json) too, passages and details
    reasons = res.frame.set_index(["question_id", "mode", "metric"])["reason"]
    assert reasons[("q3", "rag", "faithfulness")] == results.NOT_ANSWERED
    assert reasons[("q1", "llm_only", "answer_relevancy")] == results.NOT_SCORED
    assert res.answered == 7  # q4's answers failed, q3 has no RAG answer
    assert set(res.frame["question_id"]) == {f"q{i}" for i in range(5)}


def test_drill_down_reads_one_question(store, small_run):
    res = results.load(store, small_run, findings=False)
    before = {i["question_id"]: i for i in per_row_summary(store, small_run)["items"]}
    for qid in ("q0", "q2", "q3"):
        assert results.item(store, res, qid) == before[qid]
    assert store.run_columns("answers", small_run, ["question_id"], ["q0"]).num_rows == 2


def test_exports_hold_every_item(store, small_run):
    res = results.load(store, small_run)
    df = results.items_frame(store, res)
    assert len(df) == 10 and list(df["mode"][:2]) == ["llm_only", "rag"]
    row = df[(df["question_id"] == "q0") & (df["mode"] == "rag")].iloc[0]
    assert row["answer"] == "Answer 0 rag" and row["passages"] == "d::0 | d::1"
    assert math.isnan(row["faithfulness"]) and row["faithfulness_unscored_reason"] == "the judge found no statements"
    imported = df[df["question_id"] == "q2"].iloc[0]
    assert imported["latency_s"] is None and imported["model"] == "imported"
    missing = df[(df["question_id"] == "q3") & (df["mode"] == "rag")].iloc[0]
    assert pd.isna(missing["answer"]) and missing["faithfulness_unscored_reason"] == "not scored yet"


def test_cached_results_are_keyed_on_the_runs_rows(store, small_run):
    before = store.run_counts(small_run)
    store.add_score(Score(small_run, "q1", "llm_only", "answer_relevancy", 0.5))
    after = store.run_counts(small_run)
    assert after[1] == before[1] + 1 and after[0] == before[0]


@pytest.mark.parametrize("n", [2, 4, 7, 30, 400, 2500])
def test_bootstrap_interval_is_scipys(n):
    rng = np.random.default_rng(n)
    d = np.round(rng.beta(2, 5, n) - 0.2, 2)  # scores are coarse: ties in the resamples, as in real runs
    want = scipy_stats.bootstrap((d,), np.mean, n_resamples=stats.RESAMPLES, method="BCa",
                                 rng=np.random.default_rng(stats.SEED)).confidence_interval
    got = stats._bootstrap_ci(d, stats.RESAMPLES, stats.SEED)
    assert got == pytest.approx(tuple(want), rel=1e-12, abs=1e-12)
    assert stats._bootstrap_ci(d, stats.RESAMPLES, stats.SEED) == got  # the fixed seed: always the same


def test_jobs_of_one_length_share_their_resamples_and_each_interval_stays_scipys():
    rng = np.random.default_rng(3)
    faith, relevancy, other = (np.round(rng.beta(2, 5, n) - 0.2, 2) for n in (300, 300, 120))
    together = stats._bootstrap_cis([faith, relevancy, other], stats.RESAMPLES, stats.SEED)
    for d, got in zip((faith, relevancy, other), together):
        want = scipy_stats.bootstrap((d,), np.mean, n_resamples=stats.RESAMPLES, method="BCa",
                                     rng=np.random.default_rng(stats.SEED)).confidence_interval
        assert got == pytest.approx(tuple(want), rel=1e-12, abs=1e-12)
    assert together[0] != together[1]  # one set of indices, each metric's own differences


def test_intervals_and_tests_are_drawn_once_and_read_back_exactly_from_the_store(store, monkeypatch):
    rng = np.random.default_rng(5)
    faith, relevancy = (np.round(rng.beta(2, 5, 200) - 0.2, 2) for _ in range(2))
    zeros = np.zeros(200)
    jobs = [(zeros, faith, "faithfulness"), (zeros, relevancy, "answer_relevancy")]
    drawn = stats.compare_many(jobs, cache=store.intervals)
    assert drawn == stats.compare_many(jobs)  # kept or not, the same numbers

    def no_drawing(*args):
        raise AssertionError("drew for differences the store holds")

    monkeypatch.setattr(stats, "_resampled_means", no_drawing)
    monkeypatch.setattr(stats, "_signed_rank", no_drawing)
    assert stats.compare_many(jobs[::-1], cache=store.intervals) == drawn[::-1]
    changed = faith.copy()
    changed[0] += 0.01  # other differences: another interval, drawn
    with pytest.raises(AssertionError, match="drew for"):
        stats.compare_many([(zeros, changed, "faithfulness")], cache=store.intervals)
    with pytest.raises(AssertionError, match="drew for"):  # other draws: another interval too
        stats.compare_many(jobs, resamples=2_000, cache=store.intervals)


def test_a_row_kept_without_its_test_is_drawn_again(store):
    d = np.round(np.random.default_rng(6).beta(2, 5, 50) - 0.2, 2)
    want = stats.compare_many([(np.zeros(50), d, "faithfulness")])
    key = stats.paired_key(d, stats.RESAMPLES, stats.SEED)
    store.db.create_table("intervals", [{"key": key, "low": 0.0, "high": 0.0, "created_at": "2026-12-02"}])
    assert stats.compare_many([(np.zeros(50), d, "faithfulness")], cache=store.intervals) == want
    assert store.intervals.get([key])[key] == (want[0].ci_low, want[0].ci_high, want[0].p_value,
                                               want[0].effect_size)


def test_reading_a_run_needs_no_scipy_stats():
    """`scipy.stats` takes 0.6 s to import: only drawing something new imports it."""
    code = ("import sys; import core.cli, core.results, core.report, core.stats, core.reviews, core.gate; "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_a_finished_runs_findings_are_read_without_drawing(store, small_run, monkeypatch):
    first = results.load(store, small_run).findings
    drawn = [f["comparison"] for f in first.values() if f["comparison"]["ci_low"] is not None]
    assert any(c["ci_low"] < c["ci_high"] for c in drawn)  # an interval with spread: one that was drawn
    monkeypatch.setattr(stats, "_resampled_means", lambda *a: pytest.fail("drew resamples again"))
    monkeypatch.setattr(stats, "_signed_rank", lambda *a: pytest.fail("tested again"))
    assert results.load(store, small_run).findings == first


def test_after_a_runs_draw_once_its_report_and_category_comparison_draw_nothing(store, small_run, monkeypatch):
    from core import report

    results.draw_once(store, small_run)  # what a run's worker does when the run ends
    before = stats.by_category(results.load(store, small_run).frame, list(DEFAULT_METRICS))
    monkeypatch.setattr(stats, "_resampled_means", lambda *a: pytest.fail("drew resamples again"))
    monkeypatch.setattr(stats, "_signed_rank", lambda *a: pytest.fail("tested again"))
    res = results.load(store, small_run)
    assert "<h2>Charts</h2>" in report.html_report(store, res)
    pd.testing.assert_frame_equal(stats.by_category(res.frame, list(DEFAULT_METRICS), cache=store.intervals), before)


def test_bootstrap_memory_stays_flat_at_large_n():
    d = np.random.default_rng(1).normal(size=10_000)
    tracemalloc.start()
    stats._bootstrap_ci(d, 2_000, stats.SEED)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 120e6, peak  # scipy held every resample and an n × n jackknife: ~3 GB at 10,000 × 10,000


def big_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = rng.random(4 * n)
    values[::37] = np.nan
    return pd.DataFrame({
        "question_id": np.repeat([f"q{i}" for i in range(n)], 4),
        "question": np.repeat([f"Question {i} about something?" for i in range(n)], 4),
        "category": np.repeat([f"c{i % 5}" for i in range(n)], 4), "mode": np.tile(np.repeat(MODES, 2), n),
        "metric": np.tile(DEFAULT_METRICS, 2 * n), "value": values, "reason": ""})


def points(fig) -> int:
    """The points a figure draws, over all its traces."""
    return sum(len(t.x if t.x is not None else t.y if t.y is not None else ()) for t in fig.data)


def test_figures_stay_bounded_at_5000_questions():
    df = big_frame(5000)
    assert len(df) == 20_000
    deltas = charts.deltas(df, "faithfulness")
    assert points(deltas) <= charts.CURVE_POINTS and "across all" in deltas.layout.title.text
    assert all(t.text is None for t in deltas.data)  # nothing written on every point
    dumbbell = charts.dumbbell(df, "faithfulness")
    assert len(dumbbell.data[1].y) == 2 * charts.DUMBBELL_EACH
    assert "100 largest drops and 100 largest gains" in dumbbell.layout.title.text
    boxes = charts.distributions(df)
    assert all(t.y is None for t in boxes.data) and "not drawn one by one" in boxes.layout.title.text
    scatter = charts.scatter(df)
    assert all(len(t.x) == charts.SCATTER_SAMPLE for t in scatter.data) and "random" in scatter.layout.title.text
    for fig in (deltas, dumbbell, boxes, scatter, charts.mean_bars(df)):
        assert len(json.dumps(fig.to_plotly_json(), default=str)) < 400_000


def test_small_runs_keep_every_point():
    df = big_frame(40)
    assert len(charts.deltas(df, "faithfulness").data[0].x) == stats.paired(df, "faithfulness")["delta"].notna().sum()
    assert sum(len(t.y) for t in charts.distributions(df).data) == int(df["value"].notna().sum())


def test_show_json_splices_stored_json_as_it_is(store, small_run):
    res = results.load(store, small_run, findings=False)
    raw = results.RawJSON()
    doc = results.document(store, res, raw, findings=False)
    doc["note"] = "\x00" + "user text with a NUL: 0"
    text = raw.dumps(doc)
    plain = json.loads(json.dumps(results.summary_json(store, small_run)))  # tuples become lists
    assert json.loads(text) == {**plain, "note": doc["note"]}
