"""People's reviews of a run's scores, and what they say about the judge.

A review is one person's word on one score (run, question, mode, metric): *right*, *wrong*,
or their own score in [0, 1], with an optional note. A reviewer reviewing the same score
again replaces their review. Reviews keep the judge's value they saw, live in their own
table, and survive a re-score.

What a review means, for the figures:

- **Agreement** is about the side of 0.5: a score of 0.5 or more is *high*. A person's own
  score agrees with the judge when both are on the same side; *right* means the person
  agrees with the value they saw, *wrong* that it is on the wrong side. So every review gives
  a binary human label (the side of their score; the side of the value they saw for *right*;
  the other side for *wrong*), compared with the side of the judge's current score: accuracy
  and Cohen's κ over those labels. Each reviewer's review counts once; a review of a score
  the judge now leaves unscored has no judge label and is counted apart.
- **The human value** of a score, for the corrected estimate: a person's own score, or the
  value they marked *right*. *Wrong* says which side, not what the value should be, so it
  gives none: a score anyone marked wrong without giving a score has no human value. Several
  reviewers' values are averaged.
- **The human-corrected difference** (RAG − LLM only): prediction-powered inference
  (`core.stats.ppi_mean`) over the questions the judge scored in both modes, corrected by
  those with a human value in both modes, once there are `MIN_REVIEWED` of them.
"""
from __future__ import annotations

import math
import os
import unicodedata

import numpy as np
import pandas as pd

from core import stats
from core.errors import NotFoundError, RagEvalError
from core.models import METRIC_LABELS, MODE_LABELS, REVIEW_VERDICTS, Review
from core.store import Store, now

MIN_REVIEWED = 20  # questions with a human value in both modes before the corrected estimate is shown
MAX_NOTE = 5_000
MAX_REVIEWER = 100
COLUMNS = ["question_id", "mode", "metric", "reviewer", "verdict", "score", "judge_value", "note", "created_at"]
FRAME_COLUMNS = COLUMNS + ["human_high", "human_value"]  # `frame`: what each review says, for the figures


def default_reviewer() -> str:
    """Who reviews when nobody says: RAGEVAL_REVIEWER, else the login name (USER), else ''."""
    return os.environ.get("RAGEVAL_REVIEWER") or os.environ.get("USER") or ""


def review(store: Store, run_id: str, question_id: str, mode: str, metric: str, *, reviewer: str,
           verdict: str | None = None, score: float | None = None, note: str = "") -> Review:
    """Store one person's review of one score of a run and return it. Refused, with a message
    saying what to do, when the score does not exist or the review is malformed."""
    run = store.run(run_id)
    if mode not in run.modes:
        raise RagEvalError(f"mode '{mode}' is not one of run {run_id}'s modes ({', '.join(run.modes)})")
    if metric not in run.metrics:
        raise RagEvalError(f"metric '{metric}' is not one of run {run_id}'s metrics ({', '.join(run.metrics)})")
    if (verdict is None) == (score is None):
        raise RagEvalError("give either a verdict (right or wrong) or your own score, not both")
    if verdict is not None and verdict not in REVIEW_VERDICTS:
        raise RagEvalError(f"verdict '{verdict}' is not one of {', '.join(REVIEW_VERDICTS)}")
    if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise RagEvalError(f"score {score} is not a number between 0 and 1")
    reviewer, note = _text("reviewer name", reviewer.strip(), MAX_REVIEWER), _text("note", note.strip(), MAX_NOTE)
    if not reviewer:
        raise RagEvalError("name the reviewer (RAGEVAL_REVIEWER or USER gives a default)")
    judge_value = _judge_value(store, run, question_id, mode, metric)
    if verdict is not None and judge_value is None:
        raise RagEvalError(f"the judge left {question_id}'s {MODE_LABELS.get(mode, mode)} "
                           f"{METRIC_LABELS.get(metric, metric).lower()} unscored, so it cannot be right or wrong: "
                           "give your own score instead")
    r = Review(run_id, question_id, mode, metric, reviewer, verdict or "", score, judge_value, note, now())
    store.put_review(r)
    return r


def _text(what: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise RagEvalError(f"the {what} is {len(value):,} characters long; keep it under {limit:,}")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in value):
        raise RagEvalError(f"the {what} holds control characters; remove them")
    return value


def _judge_value(store: Store, run, question_id: str, mode: str, metric: str) -> float | None:
    """The judge's current value of the score (None when unscored); refused when there is no such score."""
    asked = store.question_columns(run.question_set, run.question_set_version)["id"].to_pylist()
    if question_id not in (asked[: run.limit] if run.limit else asked):
        raise NotFoundError(f"question '{question_id}' is not one of run {run.id}'s questions")
    rows = [s for s in store.run_columns("scores", run.id, ["mode", "metric", "value"], [question_id]).to_pylist()
            if s["mode"] == mode and s["metric"] == metric]
    if not rows:
        raise RagEvalError(f"{question_id}'s {MODE_LABELS.get(mode, mode)} {METRIC_LABELS.get(metric, metric).lower()} "
                           "is not scored yet: there is nothing to review")
    value = rows[-1]["value"]
    return None if value is None or value != value else float(value)


def frame(store: Store, run_id: str) -> pd.DataFrame:
    """A run's reviews (COLUMNS, oldest first), each with the human label and value it gives:
    `human_high` (the side of 0.5 the person puts the score on) and `human_value` (NaN for *wrong*)."""
    df = store.run_columns("reviews", run_id, COLUMNS).to_pandas().astype({"score": float, "judge_value": float})
    df = df.sort_values("created_at", kind="stable").reset_index(drop=True)[COLUMNS]
    own = df["score"].notna()
    saw_high = df["judge_value"] >= 0.5
    df["human_high"] = np.where(own, df["score"] >= 0.5, np.where(df["verdict"] == "right", saw_high, ~saw_high))
    df["human_value"] = df["score"].where(own, df["judge_value"].where(df["verdict"] == "right"))
    return df[FRAME_COLUMNS]


def figures(scores: pd.DataFrame, reviews: pd.DataFrame, metrics, both_modes: bool) -> dict[str, dict]:
    """Per metric: the judge's agreement with people, and (with both modes in the run) the
    human-corrected RAG − LLM-only difference once MIN_REVIEWED questions have a human value
    in both modes, else how many more are needed. `scores` is the run's tidy frame."""
    out = {}
    for metric in metrics:
        r = reviews[reviews["metric"] == metric]
        judge = scores.loc[scores["metric"] == metric, ["question_id", "mode", "value"]]
        seen = r.merge(judge, on=["question_id", "mode"], how="inner")
        judged = seen[seen["value"].notna()]
        fig = {"n_reviews": len(r), "agreement": {**stats.agreement(judged["value"] >= 0.5, judged["human_high"]),
                                                  "n_unscored": len(seen) - len(judged)},
               "n_reviewed_pairs": 0, "n_without_value": 0, "needed": None, "corrected": None}
        if both_modes:
            fig.update(_corrected(scores, r, metric))
        out[metric] = fig
    return out


def human_values(reviews: pd.DataFrame) -> pd.DataFrame:
    """Per reviewed score (indexed by question_id, mode, metric): `value`, the mean of its
    reviewers' human values, NaN when anyone marked it wrong without giving a score (people
    then said the judge is wrong but not what is right); `marked_wrong`, whether that happened."""
    g = reviews.assign(marked_wrong=reviews["human_value"].isna()).groupby(["question_id", "mode", "metric"])
    per_score = g.agg(value=("human_value", "mean"), marked_wrong=("marked_wrong", "any"))
    return per_score.assign(value=per_score["value"].where(~per_score["marked_wrong"]))


def _corrected(scores: pd.DataFrame, r: pd.DataFrame, metric: str) -> dict:
    if r.empty:  # no one reviewed this metric: no question has a human value (pairing them took 0.1 s at 10k)
        return {"n_reviewed_pairs": 0, "n_without_value": 0, "needed": MIN_REVIEWED}
    pairs = stats.paired(scores, metric)
    pairs = pairs[pairs["delta"].notna()]  # the N questions the judge scored in both modes
    per_score = human_values(r).droplevel("metric")
    human = per_score["value"].unstack("mode").reindex(index=pairs["question_id"], columns=["llm_only", "rag"])
    d_human = (human["rag"] - human["llm_only"]).to_numpy()
    n = int(np.isfinite(d_human).sum())
    fig = {"n_reviewed_pairs": n, "n_without_value": int(per_score["marked_wrong"].sum()),
           "needed": max(0, MIN_REVIEWED - n)}
    if n >= MIN_REVIEWED:
        fig["corrected"] = stats.ppi_mean(pairs["delta"].to_numpy(), d_human).to_json()
    return fig


def sentences(metric: str, fig: dict) -> list[str]:
    """One metric's review figures in plain words: agreement, then the corrected difference
    (or how many more reviews it needs)."""
    name = METRIC_LABELS.get(metric, metric).lower()
    a = fig["agreement"]
    if not fig["n_reviews"]:
        return [f"No one has reviewed the {name} scores yet."]
    kappa = "κ undefined: every label was the same" if a["kappa"] is None else f"Cohen's κ {a['kappa']:.2f}"
    said = ([f"People agreed with the judge on {a['agree']} of {a['n']} reviewed {name} scores "
             f"({a['accuracy']:.0%}, {kappa}; same side of 0.5)"] if a["n"] else
            [f"No reviewed {name} score has a judge's value to compare with"])
    if a["n_unscored"]:
        said[0] += f"; {a['n_unscored']} reviewed score(s) the judge left unscored are not compared"
    said[0] += "."
    c = fig["corrected"]
    if c is not None:
        said.append(f"Human-corrected, RAG changed {name} by {c['estimate']:+.2f} [{c['ci_low']:+.2f}, "
                    f"{c['ci_high']:+.2f}] (95% prediction-powered interval: the judge's {c['judge_mean']:+.2f} on "
                    f"{c['n_total']} questions, corrected by {c['n_reviewed']} reviewed in both modes; those alone "
                    f"give {c['reviewed_mean']:+.2f} [{c['reviewed_ci_low']:+.2f}, {c['reviewed_ci_high']:+.2f}]).")
    elif fig["needed"]:
        said.append(f"The human-corrected difference needs {MIN_REVIEWED} questions with a human value in both "
                    f"modes: {fig['n_reviewed_pairs']} so far, {fig['needed']} more needed.")
    if fig["n_without_value"]:
        said.append(f"{fig['n_without_value']} score(s) marked wrong without a score give no human value and are "
                    "left out of the corrected difference.")
    return said
