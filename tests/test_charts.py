import math

import plotly.graph_objects as go
import pytest

from core import charts, stats


def summary_with(values: dict) -> dict:
    """A run summary whose scores are `values[(qid, mode, metric)]` (None = unscored)."""
    qids = sorted({k[0] for k in values})
    items = []
    for q in qids:
        item = {"question_id": q, "question": f"Question {q}?", "category": "a" if q < "q3" else "b"}
        for mode in ("llm_only", "rag"):
            item[mode] = {"scores": {m: {"value": values.get((q, mode, m)),
                                         "reason": None if values.get((q, mode, m)) is not None else "no statements"}
                                     for m in ("faithfulness", "answer_relevancy")}}
        items.append(item)
    metrics = {"faithfulness": {}, "answer_relevancy": {}}
    return {"modes": {"llm_only": metrics, "rag": metrics}, "items": items}


VALUES = {("q1", "llm_only", "faithfulness"): 0.2, ("q1", "rag", "faithfulness"): 0.8,
          ("q2", "llm_only", "faithfulness"): 0.6, ("q2", "rag", "faithfulness"): 0.4,
          ("q3", "llm_only", "faithfulness"): 0.5, ("q3", "rag", "faithfulness"): None,
          ("q1", "llm_only", "answer_relevancy"): 0.9, ("q1", "rag", "answer_relevancy"): 0.7,
          ("q2", "llm_only", "answer_relevancy"): 0.5, ("q2", "rag", "answer_relevancy"): 0.9,
          ("q3", "llm_only", "answer_relevancy"): 0.4, ("q3", "rag", "answer_relevancy"): 0.8}


@pytest.fixture
def df():
    return stats.score_frame(summary_with(VALUES))


def test_score_frame_keeps_unscored_as_missing_with_reason(df):
    assert len(df) == 12
    row = df[(df.question_id == "q3") & (df["mode"] == "rag") & (df.metric == "faithfulness")].iloc[0]
    assert math.isnan(row.value) and row.reason == "no statements"


def test_mean_table_counts_and_intervals(df):
    t = stats.mean_table(df).set_index(["mode", "metric"])
    rag_f = t.loc[("rag", "faithfulness")]
    assert rag_f["mean"] == pytest.approx(0.6) and (rag_f.n_scored, rag_f.n_unscored) == (2, 1)
    llm_f = t.loc[("llm_only", "faithfulness")]
    # t-interval by hand: mean 0.4333, sd 0.2082, t(0.975, 2) = 4.3027 -> half-width 0.5171
    assert llm_f["mean"] == pytest.approx(1.3 / 3)
    assert llm_f.ci_high - llm_f["mean"] == pytest.approx(4.302653 * 0.2081666 / math.sqrt(3), rel=1e-4)


def test_paired_and_hurt(df):
    p = stats.paired(df, "faithfulness")
    assert list(p.question_id) == ["q3", "q2", "q1"]  # unpaired first, then by delta
    assert p.delta.iloc[1:].round(2).tolist() == [-0.2, 0.6]
    h = stats.hurt(df, "faithfulness")
    assert list(h.question_id) == ["q2"]
    assert list(stats.hurt(df, "answer_relevancy").question_id) == ["q1"]


def test_paired_when_a_metric_is_wholly_unscored():
    values = {k: (None if k[2] == "faithfulness" else v) for k, v in VALUES.items()}
    df = stats.score_frame(summary_with(values))
    p = stats.paired(df, "faithfulness")
    assert list(p.columns) == ["question_id", "question", "category", "llm_only", "rag", "delta"]
    assert p.delta.isna().all() and stats.hurt(df, "faithfulness").empty
    for fig in (charts.mean_bars(df), charts.dumbbell(df, "faithfulness"), charts.distributions(df),
                charts.scatter(df), charts.deltas(df, "faithfulness"),
                charts.differences(stats.compare_modes(df, ["faithfulness", "answer_relevancy"])),
                charts.category_differences(stats.by_category(df, ["faithfulness"]))):
        assert isinstance(fig, go.Figure)


def test_figures_carry_the_data(df):
    bars = charts.mean_bars(df)
    assert [t.name for t in bars.data] == ["LLM only", "LLM + RAG"]
    assert list(bars.data[1].y) == pytest.approx([0.6, 0.8])
    d = charts.dumbbell(df, "faithfulness")
    markers = {t.name: list(t.x) for t in d.data if t.mode == "markers"}
    assert markers["LLM + RAG"][1:] == [0.4, 0.8] and math.isnan(markers["LLM + RAG"][0])
    s = charts.scatter(df)
    assert {t.name: len(t.x) for t in s.data} == {"LLM only": 3, "LLM + RAG": 2}
    box = charts.distributions(df)
    assert sum(len(t.y) for t in box.data) == 11  # every scored value, none of the unscored


def test_difference_charts_carry_the_comparison(df):
    comps = stats.compare_modes(df, ["faithfulness", "answer_relevancy"])
    fig = charts.differences(comps)
    point = fig.data[0]
    assert list(point.y) == ["Faithfulness", "Answer relevancy"]
    assert list(point.x) == pytest.approx([0.2, 0.2])  # (0.6 - 0.2) / 2 and (-0.2 + 0.4 + 0.4) / 3
    c = comps["answer_relevancy"]
    assert point.error_x.array[1] == pytest.approx(c.ci_high - c.mean_diff)
    d = charts.deltas(df, "faithfulness")
    assert list(d.data[0].x) == ["q2", "q1"] and list(d.data[0].y) == pytest.approx([-0.2, 0.6])
    cats = charts.category_differences(stats.by_category(df, ["faithfulness"]))
    assert list(cats.data[0].y) == ["a"]  # category b has no pair scored in both modes
