import math

import numpy as np
import pandas as pd
import pytest

from core import stats

NAN = math.nan


def test_known_constant_difference():
    a = [0.2, 0.4, 0.6, 0.8]
    c = stats.compare(a, [v + 0.1 for v in a], "faithfulness")
    assert c.mean_diff == pytest.approx(0.1)
    assert (c.ci_low, c.ci_high) == pytest.approx((0.1, 0.1))  # no spread to resample
    assert (c.wins, c.ties, c.losses, c.n_pairs, c.n_excluded) == (4, 0, 0, 4, 0)
    assert c.p_value == pytest.approx(2 / 16)  # exact signed-rank: all 4 positive, two-sided
    assert c.effect_size == 1.0


def test_exact_wilcoxon_and_rank_biserial():
    c = stats.compare([0, 0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4, 0.5], "answer_relevancy")
    assert c.p_value == pytest.approx(2 / 32)
    assert c.mean_diff == pytest.approx(0.3)
    assert c.ci_low < 0.3 < c.ci_high and c.ci_low > 0
    mixed = stats.compare([0.5, 0.5, 0.5], [0.6, 0.3, 0.8], "faithfulness")
    # differences +0.1, -0.2, +0.3 -> ranks 1, 2, 3 -> (1 + 3 - 2) / 6
    assert mixed.effect_size == pytest.approx(2 / 6)


def test_all_ties():
    c = stats.compare([0.3, 0.7, 1.0], [0.3, 0.7, 1.0], "faithfulness")
    assert (c.mean_diff, c.ci_low, c.ci_high, c.p_value, c.effect_size) == (0, 0, 0, 1.0, 0)
    assert (c.wins, c.ties, c.losses) == (0, 3, 0)


def test_unscored_pairs_are_left_out_and_counted():
    c = stats.compare([0.1, 0.5, 0.9, NAN], [0.6, 0.42, 0.9, 0.5], "faithfulness")
    assert (c.n_pairs, c.n_excluded) == (3, 1)
    assert (c.wins, c.ties, c.losses) == (1, 1, 1)  # +0.5 better, 0 tied, -0.08 beyond the ±0.05 margin
    assert c.mean_diff == pytest.approx((0.5 - 0.08 + 0) / 3)


def test_all_unscored():
    c = stats.compare([None, None], [NAN, 0.5], "faithfulness")
    assert (c.n_pairs, c.n_excluded) == (0, 2)
    assert c.mean_diff is None and c.ci_low is None and c.p_value is None
    assert "Too few questions" in stats.headline(c)


def test_holm_by_hand():
    assert stats.holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_ci_covers_the_true_difference_in_simulation():
    """500 seeded trials of 30 paired questions with a skewed difference of known mean."""
    rng = np.random.default_rng(7)
    true = 2 / 7 - 0.2  # mean of Beta(2, 5) - 0.2
    covered = 0
    for trial in range(500):
        a = rng.uniform(0, 0.5, 30)
        b = a + rng.beta(2, 5, 30) - 0.2
        c = stats.compare(a, b, "faithfulness", resamples=5000, seed=trial)
        covered += c.ci_low <= true <= c.ci_high
    assert covered / 500 >= 0.93, covered


def frame(rows):
    return pd.DataFrame(rows, columns=["question_id", "question", "category", "mode", "metric", "value", "reason"])


def two_mode_frame(pairs, categories=None):
    rows = []
    for i, (x, y) in enumerate(pairs):
        cat = categories[i] if categories else ""
        rows.append((f"q{i}", f"Question {i}?", cat, "llm_only", "faithfulness", x, ""))
        rows.append((f"q{i}", f"Question {i}?", cat, "rag", "faithfulness", y, ""))
    return frame(rows)


def test_compare_modes_and_headline():
    df = two_mode_frame([(0.1, 0.5), (0.2, 0.6), (0.3, 0.8), (0.0, 0.5), (0.4, 0.9), (0.2, 0.7), (0.5, NAN)])
    c = stats.compare_modes(df, ["faithfulness"])["faithfulness"]
    assert c.n_pairs == 6 and c.n_excluded == 1 and c.wins == 6
    assert c.mean_diff == pytest.approx(0.4666667)
    sentence = stats.headline(c)
    assert sentence.startswith("RAG raised faithfulness by 0.47 [")
    assert "on 6 of 7 questions scored on both sides (6 better, 0 within ±0.05, 0 worse)" in sentence
    flat = stats.compare([0.5, 0.4, 0.6, 0.5], [0.6, 0.3, 0.6, 0.5], "answer_relevancy")
    assert "made no clear difference to answer relevancy" in stats.headline(flat)
    down = stats.compare([0.9, 0.8, 0.9, 0.7], [0.5, 0.2, 0.4, 0.1], "faithfulness")
    assert stats.headline(down).startswith("RAG lowered faithfulness by 0.53 [0.43, 0.60], p = 0.125")


def test_by_category():
    df = two_mode_frame([(0.1, 0.9), (0.2, 0.8), (0.5, 0.5), (0.6, 0.6)], ["api", "api", "cli", "cli"])
    t = stats.by_category(df, ["faithfulness"]).set_index("category")
    assert t.loc["api", "mean_diff"] == pytest.approx(0.7) and t.loc["api", "wins"] == 2
    assert t.loc["cli", "mean_diff"] == 0 and t.loc["cli", "ties"] == 2


def test_compare_runs_pairs_questions_by_text():
    a = frame([("q1", "What is X?", "", "rag", "faithfulness", 0.2, ""),
               ("q2", "What is Y?", "", "rag", "faithfulness", 0.4, ""),
               ("q3", "Only in A?", "", "rag", "faithfulness", 0.4, "")])
    b = frame([("x9", "what is  x?", "", "rag", "faithfulness", 0.9, ""),
               ("x8", "What is Y?", "", "rag", "faithfulness", 0.6, "")])
    comps, shared = stats.compare_runs(a, b, "rag", ["faithfulness"])
    assert shared == 2
    assert comps["faithfulness"].mean_diff == pytest.approx((0.7 + 0.2) / 2)


def test_judge_noise_by_hand():
    repeats = pd.DataFrame({"question_id": ["q1"] * 3 + ["q2"] * 3, "mode": ["rag"] * 6,
                            "value": [0.4, 0.6, 0.5, 0.9, 0.9, 0.9]})
    noise = stats.judge_noise(repeats, n_pairs=10)
    # variances 0.01 and 0 -> pooled 0.005
    assert noise["within_sd"] == pytest.approx(math.sqrt(0.005))
    assert noise["half_width"] == pytest.approx(1.96 * math.sqrt(2 * 0.005 / 10))
    assert noise["crossing"] == [["q1", "rag"]]
    assert stats.judge_noise(repeats.iloc[[0, 3]], n_pairs=10) is None  # one judging each: no spread
