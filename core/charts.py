"""Plotly figure builders: a tidy scores frame (`core.results`, `core.stats.score_frame`) or
comparisons in, a Figure out. Pure and testable.

A figure never carries more points than a person can see: past a few hundred questions the
per-question charts show the extremes or a curve, distributions their quartiles and the
scatter a seeded sample, and their titles say so. A browser drawing 10,000 bars with text
took 85 s; these stay under a few thousand points at any size.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.models import METRIC_LABELS, MODE_LABELS
from core.stats import Comparison, mean_table, paired

COLORS = {"llm_only": "#94a3b8", "rag": "#2563eb"}
BARS = 300  # per-question bars up to this many questions; past it, the sorted curve
CURVE_POINTS = 1000  # points of that curve
DUMBBELL_EACH = 100  # past 2 × this many questions, the dumbbell shows this many largest drops and gains
BOX_POINTS = 1000  # past this many scores a box is drawn from its quartiles, without the points
SCATTER_SAMPLE = 1500  # answers per mode in the scatter, a seeded sample past that
_LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=80, b=10),
               legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))


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


def dumbbell(df: pd.DataFrame, metric: str) -> go.Figure:
    """Per question: the two modes' scores joined by a line, sorted by the difference; past
    2 × DUMBBELL_EACH questions only the largest drops and gains, as the title says."""
    wide = paired(df, metric)
    title = f"{METRIC_LABELS[metric]} per question (LLM only → LLM + RAG)"
    if len(wide) > 2 * DUMBBELL_EACH:
        both = wide.dropna(subset=["delta"])  # sorted by delta: the drops first, the gains last
        if len(both) > 2 * DUMBBELL_EACH:
            wide = pd.concat([both.head(DUMBBELL_EACH), both.tail(DUMBBELL_EACH)])
            title = (f"{METRIC_LABELS[metric]}: the {DUMBBELL_EACH} largest drops and {DUMBBELL_EACH} largest gains "
                     f"with RAG, of {len(both):,} questions scored in both modes")
        else:
            wide = both
            title += f" — the {len(both):,} questions scored in both modes"
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
                        marker=dict(color=COLORS[mode], size=11 if len(labels) <= 60 else 7),
                        hovertemplate="%{y}<br>%{x:.3f}<extra>" + MODE_LABELS[mode] + "</extra>")
    row = 28 if len(labels) <= 60 else 16
    fig.update_layout(title=title, xaxis=dict(range=[-0.02, 1.02], title=METRIC_LABELS[metric]),
                      yaxis=dict(autorange="reversed") if len(labels) > 60 else {},
                      height=max(320, row * len(labels) + 120), **_LAYOUT)
    return fig


def differences(comparisons: dict[str, Comparison], title: str = "LLM + RAG − LLM only") -> go.Figure:
    """The mean paired difference per metric with its 95% bootstrap interval; 0 = no change."""
    rows = [c for c in comparisons.values() if c.mean_diff is not None]
    fig = go.Figure()
    fig.add_vline(x=0, line=dict(color="#64748b", dash="dot"))
    fig.add_scatter(
        x=[c.mean_diff for c in rows], y=[METRIC_LABELS.get(c.metric, c.metric) for c in rows], mode="markers",
        marker=dict(color=COLORS["rag"], size=13), showlegend=False,
        error_x=dict(type="data", symmetric=False, array=[_gap(c.ci_high, c.mean_diff) for c in rows],
                     arrayminus=[_gap(c.mean_diff, c.ci_low) for c in rows]),
        customdata=[[_ci(c), c.p_holm if c.p_holm is not None else math.nan, c.wins, c.ties, c.losses, c.n_pairs]
                    for c in rows],
        hovertemplate="%{y}: %{x:+.3f} %{customdata[0]}<br>p (Holm) %{customdata[1]:.3f}<br>"
                      "%{customdata[2]} better · %{customdata[3]} tied · %{customdata[4]} worse "
                      "of %{customdata[5]} pairs<extra></extra>")
    fig.update_layout(title=f"Mean difference, {title} (95% CI)", xaxis=dict(range=[-1, 1], zeroline=False),
                      height=140 + 60 * max(1, len(rows)), **_LAYOUT)
    return fig


def deltas(df: pd.DataFrame, metric: str) -> go.Figure:
    """Per question, RAG − LLM only on one metric, sorted: where retrieval helped and hurt.
    Bars up to BARS questions (the question on hover, never as text on every bar); past
    that, the sorted differences as one curve of at most CURVE_POINTS points."""
    p = paired(df, metric).dropna(subset=["delta"]).sort_values("delta", kind="stable")
    fig = go.Figure()
    title = f"{METRIC_LABELS[metric]}: change with RAG per question (sorted)"
    if len(p) <= BARS:
        fig.add_bar(x=[f"{q}" for q in p["question_id"]], y=p["delta"],
                    marker_color=[COLORS["rag"] if d >= 0 else "#dc2626" for d in p["delta"]],
                    customdata=[_short(q) for q in p["question"]],
                    hovertemplate="%{x} · %{customdata}<br>change %{y:+.3f}<extra></extra>")
        xaxis = dict(title="question", type="category", showticklabels=len(p) <= 60)
    else:
        keep = np.unique(np.linspace(0, len(p) - 1, CURVE_POINTS).round().astype(int))
        s, rank = p.iloc[keep], keep + 1
        worse = (s["delta"] < 0).to_numpy()
        for name, mask, color in (("worse with RAG", worse, "#dc2626"),
                                  ("better or equal with RAG", ~worse, COLORS["rag"])):
            part = s[mask]
            fig.add_scatter(x=rank[mask], y=part["delta"], mode="lines", fill="tozeroy", name=name,
                            line=dict(color=color, width=1.5),
                            customdata=np.stack([part["question_id"].to_numpy(dtype=object),
                                                 np.array([_short(q) for q in part["question"]], dtype=object)],
                                                axis=-1),
                            hovertemplate="%{customdata[0]} · %{customdata[1]}<br>change %{y:+.3f}<extra></extra>")
        title = (f"{METRIC_LABELS[metric]}: change with RAG across all {len(p):,} questions, sorted "
                 f"(a curve through {len(keep):,} of them)")
        xaxis = dict(title=f"questions, sorted by the change (of {len(p):,})")
    fig.update_layout(title=title, yaxis=dict(range=[-1.05, 1.05], title="LLM + RAG − LLM only"), xaxis=xaxis,
                      **_LAYOUT)
    return fig


def category_differences(table: pd.DataFrame) -> go.Figure:
    """The per-category comparison (`core.stats.by_category`): one point per category and metric."""
    t = table.dropna(subset=["mean_diff"])
    fig = go.Figure()
    fig.add_vline(x=0, line=dict(color="#64748b", dash="dot"))
    for i, (metric, g) in enumerate(t.groupby("metric", sort=False)):
        fig.add_scatter(
            x=g["mean_diff"], y=g["category"], mode="markers", name=METRIC_LABELS.get(metric, metric),
            marker=dict(size=12, symbol=["circle", "diamond"][i % 2]),
            error_x=dict(type="data", symmetric=False, array=(g["ci_high"] - g["mean_diff"]).fillna(0),
                         arrayminus=(g["mean_diff"] - g["ci_low"]).fillna(0)),
            customdata=g[["n_pairs"]].to_numpy(),
            hovertemplate="%{y}: %{x:+.3f} over %{customdata[0]} pairs<extra>%{fullData.name}</extra>")
    fig.update_layout(title="Mean difference per category (LLM + RAG − LLM only, 95% CI)",
                      xaxis=dict(range=[-1, 1], zeroline=False),
                      height=160 + 40 * max(1, t["category"].nunique()), **_LAYOUT)
    return fig


def _gap(high, low) -> float:
    return 0.0 if high is None or low is None else high - low


def _ci(c: Comparison) -> str:
    return "" if c.ci_low is None else f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]"


def distributions(df: pd.DataFrame) -> go.Figure:
    """Box plots per metric and mode: with every score as a point up to BOX_POINTS scores a
    box, past that drawn from the quartiles alone (the title says so)."""
    fig = go.Figure()
    scored = df[df["value"].notna()]
    large = scored.groupby(["mode", "metric"]).size().max() > BOX_POINTS if len(scored) else False
    for mode in df["mode"].unique():
        g = scored[scored["mode"] == mode]
        if not large:
            fig.add_box(x=[METRIC_LABELS[m] for m in g["metric"]], y=g["value"], name=MODE_LABELS[mode],
                        marker_color=COLORS[mode], boxpoints="all", jitter=0.4, pointpos=0, text=g["question_id"],
                        hovertemplate="%{text}: %{y:.3f}<extra>" + MODE_LABELS[mode] + "</extra>")
            continue
        q = g.groupby("metric", sort=False)["value"].describe()
        iqr = q["75%"] - q["25%"]
        values = g.groupby("metric", sort=False)["value"]
        low = pd.Series({m: v[v >= q.loc[m, "25%"] - 1.5 * iqr[m]].min() for m, v in values})
        high = pd.Series({m: v[v <= q.loc[m, "75%"] + 1.5 * iqr[m]].max() for m, v in values})
        fig.add_box(x=[METRIC_LABELS[m] for m in q.index], q1=q["25%"], median=q["50%"], q3=q["75%"],
                    lowerfence=low[q.index], upperfence=high[q.index], mean=q["mean"], name=MODE_LABELS[mode],
                    marker_color=COLORS[mode], boxpoints=False)
    title = "Score distributions"
    if large:
        title += f" (quartiles of {len(scored):,} scores; the points are not drawn one by one)"
    fig.update_layout(boxmode="group", title=title, yaxis=dict(range=[-0.05, 1.05]), **_LAYOUT)
    return fig


def scatter(df: pd.DataFrame) -> go.Figure:
    """Faithfulness against answer relevancy, one point per answer, coloured by mode; past
    SCATTER_SAMPLE answers a mode shows a seeded random sample of them (the title says so)."""
    wide = df.pivot_table(index=["question_id", "question", "mode"], columns="metric", values="value",
                          aggfunc="first").reset_index()
    fig = go.Figure()
    title = "Faithfulness vs answer relevancy"
    if {"faithfulness", "answer_relevancy"} <= set(wide.columns):
        for mode, g in wide.groupby("mode", sort=False):
            g = g.dropna(subset=["faithfulness", "answer_relevancy"])
            if len(g) > SCATTER_SAMPLE:
                title = f"Faithfulness vs answer relevancy (a random {SCATTER_SAMPLE:,} answers of each mode)"
                g = g.sample(SCATTER_SAMPLE, random_state=0)
            fig.add_scatter(x=g["faithfulness"], y=g["answer_relevancy"], mode="markers", name=MODE_LABELS[mode],
                            marker=dict(color=COLORS[mode], size=10 if len(g) <= 300 else 6, opacity=0.8),
                            text=[f"{i} · {_short(q)}" for i, q in zip(g.question_id, g.question)],
                            hovertemplate="%{text}<br>faithfulness %{x:.3f}<br>relevancy %{y:.3f}<extra></extra>")
    fig.update_layout(title=title, xaxis=dict(title="Faithfulness", range=[-0.05, 1.05]),
                      yaxis=dict(title="Answer relevancy", range=[-0.05, 1.05]), **_LAYOUT)
    return fig


def _short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def why_bar(counts: dict[str, int]) -> go.Figure:
    """Horizontal bars: how many questions fall in each "why" class (core.why)."""
    from core.why import CLASSES

    fig = go.Figure(go.Bar(x=[counts.get(k, 0) for k in CLASSES], y=[CLASSES[k] for k in CLASSES], orientation="h",
                           marker_color=["#16a34a" if k == "helped" else "#dc2626" for k in CLASSES],
                           hovertemplate="%{y}: %{x} questions<extra></extra>"))
    fig.update_layout(title="Why RAG changed a question's scores", xaxis=dict(title="questions"),
                      yaxis=dict(autorange="reversed"), **_LAYOUT)
    return fig


def experiment_differences(rows: pd.DataFrame, baseline_label: str) -> go.Figure:
    """An experiment's leaderboard (`core.experiments.board` rows with `label`): per configuration and
    metric, the mean paired difference against the baseline with its 95% interval; 0 = the baseline."""
    fig = go.Figure()
    fig.add_vline(x=0, line=dict(color="#64748b", dash="dot"))
    shown = rows[~rows["baseline"] & rows["mean_diff"].notna()]
    palette = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2"]
    for j, (metric, g) in enumerate(shown.groupby("metric", sort=False)):
        fig.add_scatter(
            x=g["mean_diff"], y=[f"#{c} {_short(label, 40)}" for c, label in zip(g["config"], g["label"])],
            mode="markers", name=METRIC_LABELS.get(metric, metric),
            marker=dict(color=palette[j % len(palette)], size=12),
            error_x=dict(type="data", symmetric=False, array=(g["ci_high"] - g["mean_diff"]).fillna(0),
                         arrayminus=(g["mean_diff"] - g["ci_low"]).fillna(0)),
            customdata=g[["p_holm", "wins", "ties", "losses", "n_pairs"]].to_numpy(dtype=float),
            hovertemplate="%{y}: %{x:+.3f}<br>p (Holm across configurations) %{customdata[0]:.3f}<br>"
                          "%{customdata[1]} better · %{customdata[2]} tied · %{customdata[3]} worse of "
                          "%{customdata[4]} pairs<extra>" + METRIC_LABELS.get(metric, metric) + "</extra>")
    configs = shown["config"].nunique()
    fig.update_layout(title=f"Difference from the baseline ({_short(baseline_label, 50)}), 95% CI",
                      xaxis=dict(range=[-1, 1], zeroline=False), yaxis=dict(autorange="reversed"),
                      height=160 + 50 * max(1, configs), **_LAYOUT)
    return fig
