"""Why RAG changed a question's scores: one class per question, from the figures a run has.

Pure: it reads the tidy scores frame (core.results) and nothing else. A question is classified
when RAG moved at least one score scored in both modes by CHANGE or more; the passages' own
metric (context_relevance, scored on the RAG item) tells a retrieval miss from an answer that
ignored good passages. The rules are tried in the order of RULES, and the first that fits wins.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

CHANGE = 0.1  # a difference smaller than this is not a change (judge noise is of this order)
RELEVANT_PASSAGES = 0.5  # context relevance below this: no retrieved passage bears on the question
GROUNDED = 0.7  # RAG faithfulness at or above this: the answer rests on the passages
ON_TOPIC = 0.5  # RAG answer relevancy below this: the answer does not address the question

CLASSES = {"helped": "helped", "retrieval_missed": "retrieval missed", "evidence_misled": "evidence misled",
           "evidence_ignored": "evidence ignored", "cannot_tell": "cannot be told",
           "unexplained": "hurt, no rule fits"}
RULES = {
    "helped": f"RAG raised at least one score by {CHANGE} or more and lowered none by as much.",
    "retrieval_missed": f"RAG lowered a score and the retrieved passages' context relevance is below "
                        f"{RELEVANT_PASSAGES}: no passage bears on the question.",
    "evidence_misled": f"RAG lowered a score while its answer is grounded in the passages (faithfulness "
                       f"{GROUNDED} or more) but off the question (answer relevancy below {ON_TOPIC}).",
    "evidence_ignored": f"RAG lowered a score although the passages are relevant (context relevance "
                        f"{RELEVANT_PASSAGES} or more) and its answer is not grounded in them (faithfulness below "
                        f"{GROUNDED}).",
    "cannot_tell": "RAG lowered a score, and without context relevance (or RAG's faithfulness) a retrieval miss "
                   "cannot be told from ignored evidence.",
    "unexplained": "RAG lowered a score although the passages are relevant and its answer is grounded and on "
                   "the question (e.g. a lower answer correctness).",
}
PAIRED = ("faithfulness", "answer_relevancy", "answer_correctness")  # scored in both modes


def classify(frame: pd.DataFrame) -> pd.DataFrame:
    """Per question of the frame (question_id, mode, metric, value): `why` (a CLASSES key, None
    when RAG changed no score or the run lacks a mode) and `sentence`, the class in words with
    the figures behind it."""
    # each figure as one array per (mode, metric), in question order: looking figures up one by one
    # (in the frame 19 s at 10,000 questions, a pivot 0.7 s, a dict of Arrow strings 0.5 s) was the cost
    known = frame[frame["value"].notna()].drop_duplicates(["question_id", "mode", "metric"])
    ids = frame["question_id"].drop_duplicates().tolist()
    at = pd.Index(ids).get_indexer(known["question_id"])
    modes, metrics = known["mode"].to_numpy(dtype=object), known["metric"].to_numpy(dtype=object)
    values = known["value"].to_numpy(dtype=float)

    def column(mode: str, metric: str) -> list[float | None]:
        picked = (modes == mode) & (metrics == metric)
        out = np.full(len(ids), np.nan)
        out[at[picked]] = values[picked]
        return [None if math.isnan(v) else v for v in out.tolist()]

    paired = {m: (column("rag", m), column("llm_only", m)) for m in PAIRED}
    relevance, faithfulness, relevancy = (column("rag", m) for m in ("context_relevance", "faithfulness",
                                                                       "answer_relevancy"))
    rows = []
    for i, qid in enumerate(ids):
        diffs = {m: rag[i] - llm[i] for m, (rag, llm) in paired.items() if rag[i] is not None and llm[i] is not None}
        why = rule(diffs, relevance[i], faithfulness[i], relevancy[i])
        rows.append({"question_id": qid, "why": why,
                     "sentence": sentence(why, diffs, relevance[i], faithfulness[i], relevancy[i])})
    out = pd.DataFrame(rows, columns=["question_id", "why", "sentence"])
    out["why"] = out["why"].astype(object).where(out["why"].notna(), None)  # JSON's null, not NaN
    return out


def rule(diffs: dict[str, float], relevance: float | None, faithfulness: float | None,
         relevancy: float | None) -> str | None:
    """The class of one question from RAG-minus-LLM-only differences and RAG's own figures."""
    if not any(abs(d) >= CHANGE for d in diffs.values()):
        return None
    if not any(d <= -CHANGE for d in diffs.values()):
        return "helped"
    if relevance is not None and relevance < RELEVANT_PASSAGES:
        return "retrieval_missed"
    if faithfulness is not None and relevancy is not None and faithfulness >= GROUNDED and relevancy < ON_TOPIC:
        return "evidence_misled"
    if relevance is None or faithfulness is None:
        return "cannot_tell"
    return "evidence_ignored" if faithfulness < GROUNDED else "unexplained"


def sentence(why: str | None, diffs: dict[str, float], relevance, faithfulness, relevancy) -> str:
    """One question's class in words, with its figures."""
    if why is None:
        return (f"RAG changed no score by {CHANGE} or more." if diffs
                else "No score was given in both modes, so RAG's effect is unknown.")
    changes = ", ".join(f"{m.replace('_', ' ')} {d:+.2f}" for m, d in diffs.items())
    figures = ", ".join(f"{name} {v:.2f}" for name, v in (("context relevance", relevance),
                                                          ("RAG faithfulness", faithfulness),
                                                          ("RAG answer relevancy", relevancy)) if v is not None)
    return f"{CLASSES[why].capitalize()}: {changes}" + (f" ({figures})." if figures else ".")


def counts(classes: pd.DataFrame) -> dict[str, int]:
    """How many questions fall in each class, every class listed (0 when none)."""
    found = classes["why"].value_counts()
    return {k: int(found.get(k, 0)) for k in CLASSES}


def summary(classes: pd.DataFrame) -> dict:
    """The breakdown for `show --json` and pages: counts per class, the rule of each, thresholds."""
    return {"counts": counts(classes), "rules": RULES, "labels": CLASSES,
            "thresholds": {"change": CHANGE, "relevant_passages": RELEVANT_PASSAGES, "grounded": GROUNDED,
                           "on_topic": ON_TOPIC},
            "unchanged": int(classes["why"].isna().sum())}
