"""The "why" classes on hand-made questions."""
import math

import pandas as pd

from core import why


def frame(**questions):
    """A tidy frame from {qid: {(mode, metric): value}}; a missing value is unscored (NaN)."""
    rows = [{"question_id": qid, "mode": mode, "metric": metric, "value": value}
            for qid, values in questions.items() for (mode, metric), value in values.items()]
    return pd.DataFrame(rows)


def q(f_llm, f_rag, r_llm, r_rag, relevance=math.nan):
    return {("llm_only", "faithfulness"): f_llm, ("rag", "faithfulness"): f_rag,
            ("llm_only", "answer_relevancy"): r_llm, ("rag", "answer_relevancy"): r_rag,
            ("llm_only", "context_relevance"): math.nan, ("rag", "context_relevance"): relevance}


def test_each_class_on_a_hand_made_question():
    out = why.classify(frame(
        helped=q(0.2, 0.9, 0.8, 0.85, relevance=1.0),
        missed=q(0.6, 0.3, 0.9, 0.6, relevance=0.0),
        ignored=q(0.6, 0.3, 0.9, 0.6, relevance=1.0),
        misled=q(0.5, 1.0, 0.9, 0.2, relevance=1.0),
        unknown=q(0.6, 0.3, 0.9, 0.6),
        unchanged=q(0.5, 0.55, 0.8, 0.8, relevance=1.0),
        fine=q(1.0, 1.0, 0.9, 0.7, relevance=1.0),
    )).set_index("question_id")["why"]
    assert out.to_dict() == {"helped": "helped", "missed": "retrieval_missed", "ignored": "evidence_ignored",
                             "misled": "evidence_misled", "unknown": "cannot_tell", "unchanged": None,
                             "fine": "unexplained"}


def test_thresholds_decide_at_their_edges():
    assert why.rule({"faithfulness": -why.CHANGE + 0.01}, 1.0, 0.2, 0.9) is None  # below CHANGE: no change
    assert why.rule({"faithfulness": -0.3}, why.RELEVANT_PASSAGES, 0.2, 0.9) == "evidence_ignored"
    assert why.rule({"faithfulness": -0.3}, why.RELEVANT_PASSAGES - 0.01, 0.2, 0.9) == "retrieval_missed"
    assert why.rule({"answer_relevancy": -0.3}, 1.0, why.GROUNDED, why.ON_TOPIC - 0.01) == "evidence_misled"
    assert why.rule({"answer_relevancy": -0.3}, 1.0, why.GROUNDED, why.ON_TOPIC) == "unexplained"
    assert why.rule({"faithfulness": 0.3, "answer_relevancy": -0.3}, 1.0, 0.9, 0.2) == "evidence_misled"


def test_counts_and_sentences_say_the_figures():
    classes = why.classify(frame(a=q(0.2, 0.9, 0.8, 0.85), b=q(0.6, 0.3, 0.9, 0.6, relevance=0.0),
                                 c=q(math.nan, 0.3, 0.9, 0.9)))
    summary = why.summary(classes)
    assert summary["counts"]["helped"] == 1 and summary["counts"]["retrieval_missed"] == 1
    assert sum(summary["counts"].values()) == 2 and summary["unchanged"] == 1
    assert set(summary["rules"]) == set(why.CLASSES)
    b = classes.set_index("question_id").at["b", "sentence"]
    assert b == ("Retrieval missed: faithfulness -0.30, answer relevancy -0.30 (context relevance 0.00, "
                 "RAG faithfulness 0.30, RAG answer relevancy 0.60).")
    assert classes.set_index("question_id").at["c", "sentence"] == "RAG changed no score by 0.1 or more."


def test_a_passages_metric_is_said_as_a_mean_not_a_comparison():
    from core import stats

    df = pd.DataFrame([{"question_id": q, "question": q, "category": "", "mode": mode, "metric": "context_relevance",
                        "value": value, "reason": "", "retryable": False}
                       for q, llm, rag in (("a", math.nan, 1.0), ("b", math.nan, 0.5))
                       for mode, value in (("llm_only", llm), ("rag", rag))])
    said = stats.findings(df, ["context_relevance"])["context_relevance"]["sentence"]
    assert said == ("Context relevance judges the retrieved passages, which both modes share, so it is not a "
                    "comparison: mean 0.75 over 2 questions.")
