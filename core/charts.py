"""Plotly figure builders: a tidy scores DataFrame in, a Figure out. Pure and testable.

The tidy frame (`score_frame`) has one row per (question, mode, metric) with columns
question_id, question, category, mode, metric, value (NaN when unscored), reason.
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from core.models import METRIC_LABELS, MODE_LABELS

COLORS = {"llm_only": "#94a3b8", "rag": "#2563eb"}
_LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=80, b=10),
               legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))


def score_frame(summary: dict) -> pd.DataFrame:
    """The tidy frame of a run summary (see `core.runs.summary`)."""
    rows = []
    for item in summary["items"]:
        for mode in summary["modes"]:
            a = item.get(mode)
            for metric in summary["modes"][mode]:
                s = (a or {}).get("scores", {}).get(metric) or {"value": None, "reason": "not answered yet"}
                rows.append({"question_id": item["question_id"], "question": item["question"],
                             "category": item.get("category") or "", "mode": mode, "metric": metric,
                             "value": math.nan if s["value"] is None else s["value"],
                             "reason": s.get("reason") or ""})
    return pd.DataFrame(rows, columns=["question_id", "question", "category", "mode", "metric", "value", "reason"])


def mean_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean per mode and metric over scored items, with a 95% t-interval of the mean."""
    out = []
    for (mode, metric), g in df.groupby(["mode", "metric"], sort=False):
        v = g["value"].dropna()
        n = len(v)
        mean = v.mean() if n else math.nan
        half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        out.append({"mode": mode, "metric": metric, "mean": mean, "ci_low": mean - half, "ci_high": mean + half,
                    "n_scored": n, "n_unscored": int(g["value"].isna().sum())})
    return pd.DataFrame(out, columns=["mode", "metric", "mean", "ci_low", "ci_high", "n_scored", "n_unscored"])


def mean_bars(df: pd.DataFrame) -> go.Figure:
    """Grouped bars: the mean of each metric per mode, with 95% confidence intervals."""
    t = mean_table(df)
    fig = go.Figure()
    for mode, g in t.groupby("mode", sort=False):
        fig.add_bar(
            name=MODE_LABELS[mode], x=[METRIC_LABELS[m] for m in g["metric"]], y=g["mean"],
            marker_color=COLORS[mode],
            error_y=dict(type="data", symmetric=False, array=(g["ci_high"] - g["mean"]).fillna(0),
                         arrayminus=(g["mean"] - g["ci_low"]).fillna(0)),
            customdata=g[["n_scored", "n_unscored"]].to_numpy(),
            hovertemplate="%{x}<br>mean %{y:.3f}<br>%{customdata[0]} scored, %{customdata[1]} unscored"
                          "<extra>" + MODE_LABELS[mode] + "</extra>")
    fig.update_layout(barmode="group", title="Mean score per metric (95% CI)", yaxis=dict(range=[0, 1.05]),
                      **_LAYOUT)
    return fig


def paired(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per question: question_id, question, llm_only, rag, delta (rag − llm_only);
    NaN where a side is unscored. Sorted by delta, unpaired questions first."""
    g = df[df.metric == metric]
    questions = g.drop_duplicates("question_id").set_index("question_id")["question"]
    wide = g.pivot(index="question_id", columns="mode", values="value").reindex(
        index=questions.index, columns=["llm_only", "rag"])
    wide.insert(0, "question", questions)
    wide = wide.reset_index()
    wide.columns.name = None
    wide["delta"] = wide["rag"] - wide["llm_only"]
    return wide.sort_values("delta", na_position="first", kind="stable").reset_index(drop=True)


def hurt(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The questions where RAG scored lower than LLM only, worst first."""
    p = paired(df, metric)
    return p[p["delta"] < 0].sort_values("delta").reset_index(drop=True)


def dumbbell(df: pd.DataFrame, metric: str) -> go.Figure:
    """Per question: the two modes' scores joined by a line, sorted by the difference."""
    wide = paired(df, metric)
    labels = [f"{qid} · {_short(q)}" for qid, q in zip(wide.question_id, wide.question)]
    fig = go.Figure()
    xs, ys = [], []
    for label, a, b in zip(labels, wide["llm_only"], wide["rag"]):
        if not (math.isnan(a) or math.isnan(b)):
            xs += [a, b, None]
            ys += [label, label, None]
    fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color="#cbd5e1", width=3), showlegend=False,
                    hoverinfo="skip")
    for mode in ("llm_only", "rag"):
        fig.add_scatter(x=wide[mode], y=labels, mode="markers", name=MODE_LABELS[mode],
                        marker=dict(color=COLORS[mode], size=11),
                        hovertemplate="%{y}<br>%{x:.3f}<extra>" + MODE_LABELS[mode] + "</extra>")
    fig.update_layout(title=f"{METRIC_LABELS[metric]} per question (LLM only → LLM + RAG)",
                      xaxis=dict(range=[-0.02, 1.02], title=METRIC_LABELS[metric]),
                      height=max(320, 28 * len(labels) + 120), **_LAYOUT)
    return fig


def distributions(df: pd.DataFrame) -> go.Figure:
    """Box plots with every score as a point, per metric and mode."""
    fig = go.Figure()
    for mode in df["mode"].unique():
        g = df[(df["mode"] == mode) & df["value"].notna()]
        fig.add_box(x=[METRIC_LABELS[m] for m in g["metric"]], y=g["value"], name=MODE_LABELS[mode],
                    marker_color=COLORS[mode], boxpoints="all", jitter=0.4, pointpos=0,
                    text=g["question_id"], hovertemplate="%{text}: %{y:.3f}<extra>" + MODE_LABELS[mode] + "</extra>")
    fig.update_layout(boxmode="group", title="Score distributions", yaxis=dict(range=[-0.05, 1.05]), **_LAYOUT)
    return fig


def scatter(df: pd.DataFrame) -> go.Figure:
    """Faithfulness against answer relevancy, one point per answer, coloured by mode."""
    wide = df.pivot_table(index=["question_id", "question", "mode"], columns="metric", values="value",
                          aggfunc="first").reset_index()
    fig = go.Figure()
    if {"faithfulness", "answer_relevancy"} <= set(wide.columns):
        for mode, g in wide.groupby("mode", sort=False):
            g = g.dropna(subset=["faithfulness", "answer_relevancy"])
            fig.add_scatter(x=g["faithfulness"], y=g["answer_relevancy"], mode="markers", name=MODE_LABELS[mode],
                            marker=dict(color=COLORS[mode], size=10, opacity=0.8),
                            text=[f"{i} · {_short(q)}" for i, q in zip(g.question_id, g.question)],
                            hovertemplate="%{text}<br>faithfulness %{x:.3f}<br>relevancy %{y:.3f}<extra></extra>")
    fig.update_layout(title="Faithfulness vs answer relevancy", xaxis=dict(title="Faithfulness", range=[-0.05, 1.05]),
                      yaxis=dict(title="Answer relevancy", range=[-0.05, 1.05]), **_LAYOUT)
    return fig


def _short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
