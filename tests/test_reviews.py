"""Human review of judge scores: the store, what a review means, agreement with the judge,
and the prediction-powered (human-corrected) difference with its coverage by simulation."""
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from core import results, reviews, stats
from core.errors import RagEvalError
from core.executor import Executor
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.models import DEFAULT_METRICS, MODES, Question, Review, Run, Score
from core.runs import create_run
from core.store import now


@pytest.fixture
def scored_run(store):
    """Four questions, both modes, both metrics; q3's RAG faithfulness left unscored."""
    saved = store.save_question_set("four", [Question(f"q{i}", f"Question {i}?") for i in range(4)])
    store.create_run(Run("r1", now(), "kb", "four", saved.version, MODES, DEFAULT_METRICS, "endpoint:m",
                         "endpoint:j", 4, "hybrid", status="done"))
    values = {"llm_only": [0.2, 0.4, 0.6, 0.8], "rag": [0.9, 0.7, 0.3, None]}
    store.add_scores([Score("r1", f"q{i}", mode, metric, v, "" if v is not None else "the judge found no statements")
                      for mode, vs in values.items() for i, v in enumerate(vs)
                      for metric in DEFAULT_METRICS if not (metric == "answer_relevancy" and v is None)]
                     + [Score("r1", "q3", "rag", "answer_relevancy", 0.5)])
    return "r1"


def test_reviews_round_trip_and_one_per_reviewer(store, scored_run):
    first = reviews.review(store, scored_run, "q0", "rag", "faithfulness", reviewer="ana", verdict="right",
                           note="matches passage #1")
    assert (first.judge_value, first.score, first.verdict) == (0.9, None, "right")
    reviews.review(store, scored_run, "q0", "rag", "faithfulness", reviewer="ben", score=0.4)
    reviews.review(store, scored_run, "q0", "rag", "faithfulness", reviewer="ana", verdict="wrong", note="")
    stored = store.reviews(scored_run)
    assert [(r.reviewer, r.verdict, r.score, r.judge_value, r.note) for r in sorted(stored, key=lambda r: r.reviewer)] \
        == [("ana", "wrong", None, 0.9, ""), ("ben", "", 0.4, 0.9, "")]  # ana's second review replaced her first
    assert all(isinstance(r, Review) and r.created_at for r in stored)
    df = reviews.frame(store, scored_run).sort_values("reviewer")
    assert list(df["human_high"]) == [False, False] and df["human_value"].isna().tolist() == [True, False]
    store.delete_run(scored_run)
    assert store.reviews(scored_run) == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(question_id="q9"), "question 'q9' is not one of run r1's questions"),
    (dict(mode="both"), "mode 'both' is not one of run r1's modes"),
    (dict(metric="speed"), "metric 'speed' is not one of run r1's metrics"),
    (dict(score=0.5), "either a verdict (right or wrong) or your own score, not both"),
    (dict(verdict=None), "either a verdict"),
    (dict(verdict="maybe"), "verdict 'maybe' is not one of right, wrong"),
    (dict(verdict=None, score=1.5), "score 1.5 is not a number between 0 and 1"),
    (dict(verdict=None, score=math.nan), "is not a number between 0 and 1"),
    (dict(reviewer="  "), "name the reviewer"),
    (dict(reviewer="a\x1b[31m"), "the reviewer name holds control characters"),
    (dict(note="x" * 5001), "the note is 5,001 characters long"),
    (dict(question_id="q3", mode="rag"), "the judge left q3's LLM + RAG faithfulness unscored"),
])
def test_bad_reviews_are_refused_with_what_to_do(store, scored_run, kwargs, message):
    args = dict(question_id="q0", mode="rag", metric="faithfulness", reviewer="ana", verdict="right") | kwargs
    with pytest.raises(RagEvalError) as e:
        reviews.review(store, scored_run, args.pop("question_id"), args.pop("mode"), args.pop("metric"), **args)
    assert message in str(e.value)
    assert store.reviews(scored_run) == []


def test_an_unscored_score_takes_only_a_persons_own_score(store, scored_run):
    r = reviews.review(store, scored_run, "q3", "rag", "faithfulness", reviewer="ana", score=0.1)
    assert r.judge_value is None and r.score == 0.1


def test_agreement_and_kappa_by_hand():
    a = stats.agreement([True, True, False, False], [True, False, False, False])
    # p_o = 3/4; p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2)
    assert (a["n"], a["agree"], a["accuracy"]) == (4, 3, 0.75) and a["kappa"] == pytest.approx(0.5)
    assert stats.agreement([True, False], [False, True])["kappa"] == pytest.approx(-1.0)
    same = stats.agreement([True, True, True], [True, True, True])
    assert same["accuracy"] == 1.0 and same["kappa"] is None  # chance agreement is 1: undefined
    assert stats.agreement([True, True], [False, False])["kappa"] == 0.0
    assert stats.agreement([], []) == {"n": 0, "agree": 0, "accuracy": None, "kappa": None}


def test_what_each_review_says_for_agreement(store, scored_run):
    # judge faithfulness: LLM only 0.2 0.4 0.6 0.8, RAG 0.9 0.7 0.3 (unscored)
    for qid, mode, said in [("q0", "llm_only", dict(verdict="right")),   # judge low, person low: agree
                            ("q1", "llm_only", dict(verdict="wrong")),   # judge low, person high: disagree
                            ("q2", "llm_only", dict(score=0.55)),        # both high: agree
                            ("q0", "rag", dict(score=0.45)),             # judge high, person low: disagree
                            ("q1", "rag", dict(verdict="right")),        # both high: agree
                            ("q3", "rag", dict(score=0.9))]:             # judge unscored: not compared
        reviews.review(store, scored_run, qid, mode, "faithfulness", reviewer="ana", **said)
    res = results.load(store, scored_run)
    fig = res.human_review["faithfulness"]
    assert fig["agreement"] == {"n": 5, "agree": 3, "accuracy": 0.6, "n_unscored": 1,
                                "kappa": pytest.approx(stats.agreement([0, 0, 1, 1, 1], [0, 1, 1, 0, 1])["kappa"])}
    assert fig["n_reviews"] == 6 and fig["n_without_value"] == 1  # q1 LLM only: marked wrong, no value
    # human values in both modes only for q0 (0.2 right, 0.45): q1's LLM only gives none, q3 the judge left unscored
    assert (fig["n_reviewed_pairs"], fig["needed"], fig["corrected"]) == (1, 19, None)
    assert res.human_review["answer_relevancy"]["n_reviews"] == 0
    lines = reviews.sentences("faithfulness", fig)
    assert lines[0] == ("People agreed with the judge on 3 of 5 reviewed faithfulness scores (60%, Cohen's κ "
                        f"{fig['agreement']['kappa']:.2f}; same side of 0.5); 1 reviewed score(s) the judge left "
                        "unscored are not compared.")
    assert "1 so far, 19 more needed" in lines[1]


def corrected_frames(n_questions: int, n_reviewed: int, seed: int = 0):
    """A tidy score frame of a two-mode run and reviews giving a human score in both modes on
    the first `n_reviewed` questions (the judge 0.1 too kind to RAG)."""
    rng = np.random.default_rng(seed)
    human = {"llm_only": rng.uniform(0, 0.6, n_questions), "rag": rng.uniform(0.3, 0.9, n_questions)}
    rows, revs = [], []
    for mode, h in human.items():
        judge = np.clip(h + (0.1 if mode == "rag" else 0) + rng.normal(0, 0.05, n_questions), 0, 1)
        for i in range(n_questions):
            rows.append((f"q{i}", f"Q{i}?", "", mode, "faithfulness", judge[i], ""))
            if i < n_reviewed:
                revs.append(dict(question_id=f"q{i}", mode=mode, metric="faithfulness", reviewer="ana", verdict="",
                                 score=h[i], judge_value=judge[i], note="", created_at=""))
    scores = pd.DataFrame(rows, columns=["question_id", "question", "category", "mode", "metric", "value", "reason"])
    df = pd.DataFrame(revs, columns=reviews.COLUMNS)
    df["human_high"], df["human_value"] = df["score"] >= 0.5, df["score"]
    return scores, df, human


def test_the_corrected_difference_appears_at_20_reviewed_questions():
    scores, df, human = corrected_frames(40, 19)
    assert reviews.figures(scores, df, ["faithfulness"], True)["faithfulness"]["needed"] == 1
    scores, df, human = corrected_frames(40, 20)
    fig = reviews.figures(scores, df, ["faithfulness"], True)["faithfulness"]
    c = fig["corrected"]
    p = stats.paired(scores, "faithfulness").set_index("question_id")
    d_judge = p["delta"].reindex([f"q{i}" for i in range(40)]).to_numpy()
    d_human = (human["rag"] - human["llm_only"])[:20]
    assert fig["needed"] == 0 and (c["n_reviewed"], c["n_total"]) == (20, 40)
    assert c["estimate"] == pytest.approx(d_judge.mean() + (d_human - d_judge[:20]).mean())
    assert c["reviewed_mean"] == pytest.approx(d_human.mean())
    assert "Human-corrected, RAG changed faithfulness by" in reviews.sentences("faithfulness", fig)[1]
    assert reviews.figures(scores, df, ["faithfulness"], False)["faithfulness"]["corrected"] is None  # one mode


def test_ppi_by_hand():
    judge = np.array([0.5, 0.1, 0.4, 0.2, 0.3])
    human = np.array([0.3, 0.2, np.nan, np.nan, np.nan])
    c = stats.ppi_mean(judge, human)
    assert c.estimate == pytest.approx(0.3 + ((0.3 - 0.5) + (0.2 - 0.1)) / 2)
    lam = 3 / 5
    var = np.var(np.array([0.3, 0.2]) - lam * np.array([0.5, 0.1]), ddof=1) / 2 + lam ** 2 * np.var(judge, ddof=1) / 3
    assert c.ci_high - c.estimate == pytest.approx(1.959964 * math.sqrt(var), rel=1e-6)
    every = stats.ppi_mean(judge, judge + 0.1)  # everything reviewed: the human mean and its classical interval
    assert every.estimate == pytest.approx(every.reviewed_mean) and every.ci_low == pytest.approx(every.reviewed_ci_low)
    with pytest.raises(ValueError):
        stats.ppi_mean(judge, np.full(5, np.nan))


def test_ppi_interval_covers_the_true_difference_in_simulation():
    """300 seeded data sets of 150 questions, 40 reviewed at random: human scores per mode,
    a judge that is noisy, squashed and too kind to RAG. The 95% interval covers the true
    mean difference 92-98% of the time, is narrower than the reviewed questions' own interval,
    and the judge's own paired interval, biased, mostly misses."""
    rng = np.random.default_rng(12)
    true = 5 / 8 - 2 / 7  # Beta(5, 3) - Beta(2, 5)
    covered = judge_covered = 0
    widths = []
    for _ in range(300):
        h_llm, h_rag = rng.beta(2, 5, 150), rng.beta(5, 3, 150)
        j_llm = np.clip(0.8 * h_llm + 0.1 + rng.normal(0, 0.06, 150), 0, 1)
        j_rag = np.clip(0.8 * h_rag + 0.25 + rng.normal(0, 0.06, 150), 0, 1)
        d_judge, d_human = j_rag - j_llm, h_rag - h_llm
        human = np.full(150, np.nan)
        picked = rng.choice(150, 40, replace=False)
        human[picked] = d_human[picked]
        c = stats.ppi_mean(d_judge, human)
        covered += c.ci_low <= true <= c.ci_high
        widths.append((c.ci_high - c.ci_low) / (c.reviewed_ci_high - c.reviewed_ci_low))
        half = 1.96 * d_judge.std(ddof=1) / math.sqrt(150)
        judge_covered += abs(d_judge.mean() - true) <= half
    assert 0.92 <= covered / 300 <= 0.98, covered
    assert np.mean(widths) < 0.75, np.mean(widths)
    assert judge_covered / 300 < 0.5, judge_covered


def test_exports_carry_the_reviews(store, scored_run):
    reviews.review(store, scored_run, "q0", "rag", "faithfulness", reviewer="ana", verdict="right", note="=1+1")
    reviews.review(store, scored_run, "q0", "rag", "faithfulness", reviewer="ben", score=0.7)
    res = results.load(store, scored_run)
    df = results.items_frame(store, res)
    row = df[(df["question_id"] == "q0") & (df["mode"] == "rag")].iloc[0]
    assert row["faithfulness_human"] == pytest.approx((0.9 + 0.7) / 2)
    assert [(r["reviewer"], r["verdict"], r["score"]) for r in json.loads(row["faithfulness_reviews"])] == [
        ("ana", "right", None), ("ben", "", 0.7)]
    assert math.isnan(df["answer_relevancy_human"].iloc[0]) and df["answer_relevancy_reviews"].iloc[0] == ""
    doc = results.document(store, res)
    assert [r["reviewer"] for r in doc["reviews"]] == ["ana", "ben"] and doc["reviews"][0]["note"] == "=1+1"
    assert doc["human_review"]["faithfulness"]["agreement"]["n"] == 2
    json.dumps(doc)  # no NaN or numpy values left in it


def judge_reply(verdict: int):
    def reply(messages, schema):
        return {"StatementGeneratorOutput": {"statements": ["Cookies last 365 days."]},
                "NLIStatementOutput": {"statements": [{"statement": "Cookies last 365 days.", "reason": "r",
                                                       "verdict": verdict}]},
                "AnswerRelevanceOutput": {"question": "How long do cookies last?", "noncommittal": 0}}[schema["title"]]
    return reply


def test_reviews_survive_a_rescore(settings, store, embedder, docs):
    ingest([str(docs)], "docs", store, embedder, settings)
    store.save_question_set("one", [Question("a", "How long does the remember cookie last?")])
    run = create_run(store, settings, "docs", "one")
    answer = FakeLLM(lambda m, s: "It lasts 365 days.")
    Executor(store, settings, embedder, run.id, answer, FakeLLM(judge_reply(1))).execute()
    reviews.review(store, run.id, "a", "rag", "faithfulness", reviewer="ana", verdict="right", note="ok")
    before = store.run_counts(run.id)
    shutil.rmtree(settings.cache_dir / "judge")  # the judge now says otherwise: nothing comes from the cache
    Executor(store, settings, embedder, run.id, answer, FakeLLM(judge_reply(0))).execute(rescore=True)
    assert {(s.mode, s.metric): s.value for s in store.scores(run.id)}[("rag", "faithfulness")] == 0.0
    kept = store.reviews(run.id)
    assert [(r.reviewer, r.verdict, r.judge_value, r.note) for r in kept] == [("ana", "right", 1.0, "ok")]
    fig = results.load(store, run.id).human_review["faithfulness"]
    assert fig["agreement"]["agree"] == 0  # the person accepted 1.0; the judge now says 0.0
    assert store.run_counts(run.id) == before  # same rows; a new review changes the key
    reviews.review(store, run.id, "a", "rag", "faithfulness", reviewer="ana", score=0.2)
    assert store.run_counts(run.id) != before
