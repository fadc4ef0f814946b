"""Fitting the likelihood judge's verdict rule on the calibration set, honestly.

Labels come from the calibration answers: every statement of a faithful answer is
supported; every statement of an answer that contradicts the evidence is not; a subtly
wrong answer's statements are supported where they equal a statement of the faithful
answer, and not where the number, name or condition was changed. A logistic rule is fitted
on those statements, and cross-validated by calibration item (k folds): each item's
answers are scored only by the rule fitted without that item, and the pairwise figures
(faithful above subtly wrong, faithful above contradicting) are counted on those held-out
scores. `bench/fit_likelihood_judge.py` writes the result to data/likelihood_judge.json.
"""
from __future__ import annotations

import random
from collections.abc import Iterable

import numpy as np

from core.judges.likelihood import (
    Rule,
    StatementFigures,
    evidence_messages,
    question_messages,
    statement_figures,
)
from core.judges.statements import split_statements
from core.models import TokenLogprobs

KINDS = ("faithful", "unfaithful", "subtly_unfaithful")
FEATURES = ("logp_evidence", "pmi", "disagreement")
Table = dict[str, dict[str, list[StatementFigures]]]  # item id -> answer kind -> statement figures


def passes(model, question: str, evidence: Iterable[str], answer: str) -> tuple[TokenLogprobs, TokenLogprobs]:
    """The two likelihood passes over one answer, as the judge makes them."""
    return (model.continuation_logprobs(evidence_messages(question, list(evidence)), answer),
            model.continuation_logprobs(question_messages(question), answer))


def answer_figures(answer: str, two_passes: tuple[TokenLogprobs, TokenLogprobs]) -> list[StatementFigures]:
    return statement_figures(split_statements(answer), *two_passes)


def labels(item: dict[str, list[StatementFigures]]) -> dict[str, list[int]]:
    """Supported (1) or not (0) per statement of each kind of answer, from what the answer is."""
    faithful = {_norm(f.text) for f in item["faithful"]}
    return {"faithful": [1] * len(item["faithful"]),
            "unfaithful": [0] * len(item["unfaithful"]),
            "subtly_unfaithful": [int(_norm(f.text) in faithful) for f in item["subtly_unfaithful"]]}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def fit(table: Table, items: Iterable[str], features=FEATURES, version: str = "0", c: float = 1.0) -> Rule:
    """A logistic rule fitted on the statements of `items` (features standardised first)."""
    from sklearn.linear_model import LogisticRegression

    x, y = [], []
    for item in items:
        for kind, marks in labels(table[item]).items():
            for f, mark in zip(table[item][kind], marks):
                feats = f.features()
                x.append([feats[n] for n in features])
                y.append(mark)
    x = np.asarray(x, dtype=float)
    center, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit((x - center) / scale, np.asarray(y))
    return Rule(version, tuple(features), tuple(center.round(6)), tuple(scale.round(6)),
                tuple(model.coef_[0].round(6)), round(float(model.intercept_[0]), 6))


def answer_score(rule: Rule, figures: list[StatementFigures]) -> float | None:
    """Faithfulness as the metric computes it: the expected share of supported statements."""
    return sum(rule.probability(f) for f in figures) / len(figures) if figures else None


def pairwise(scores: dict[str, dict[str, float | None]]) -> dict[str, dict[str, int]]:
    """Faithful above each worse kind: right only when both are scored and strictly higher."""
    out = {}
    for worse in ("unfaithful", "subtly_unfaithful"):
        right = sum(1 for s in scores.values() if s["faithful"] is not None and s[worse] is not None
                    and s["faithful"] > s[worse])
        out[worse] = {"right": right, "n": len(scores)}
    return out


def folds_of(items: list[str], k: int, seed: int = 0) -> list[list[str]]:
    order = sorted(items)
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


def cross_validate(table: Table, k: int = 5, features=FEATURES, version: str = "0", seed: int = 0,
                   c: float = 1.0) -> tuple[list[tuple[list[str], Rule]], dict]:
    """Per fold, the rule fitted without it; and the held-out pairwise figures over all items."""
    folds, held_out_scores = [], {}
    for held_out in folds_of(list(table), k, seed):
        rule = fit(table, [i for i in table if i not in held_out], features, version, c)
        folds.append((held_out, rule))
        for item in held_out:
            held_out_scores[item] = {kind: answer_score(rule, table[item][kind]) for kind in KINDS}
    return folds, {"folds": k, "pairs": pairwise(held_out_scores), "scores": held_out_scores}

