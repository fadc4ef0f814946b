"""Faithfulness by evidence likelihood: RAGAS's definition, verdicts from log-probabilities.

RAGAS defines faithfulness as the share of an answer's statements that the evidence
supports. Its stock judge asks a model to write the statements and the verdicts; a 135M
model cannot (it ranked faithful answers first in 0 of 7 usable calibration pairs). The
same model can *read*: two forward passes give, for every token of the answer, its
log-probability after "evidence + question" and after the question alone. A statement the
evidence supports becomes more likely with it (copied numbers and names jump), a changed
number or name becomes less likely exactly where it was changed.

    split_statements()   the answer's sentences, list items and code blocks (statements.py)
    statement_figures()  per statement: mean log p with evidence, mean PMI, lowest token PMI ...
    Rule                 the verdict from those figures: a logistic rule fitted on the shipped
                         calibration set with k-fold cross-validation (bench/fit_likelihood_judge.py),
                         kept in data/likelihood_judge.json; its version is part of the judge's identity
    LikelihoodFaithfulness  the RAGAS metric (a `ragas.metrics.collections` BaseMetric)
"""
from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from ragas.metrics.collections.base import BaseMetric
from ragas.metrics.result import MetricResult

from core.config import DATA_DIR
from core.errors import RagEvalError
from core.judges.statements import Statement, split_statements
from core.llm.base import LLM
from core.models import TokenLogprobs

RULE_FILE = DATA_DIR / "likelihood_judge.json"
SYSTEM = "You are a helpful assistant. Answer the question."
_CONTENT = re.compile(r"[A-Za-z0-9]")


def evidence_messages(question: str, contexts: list[str]) -> list[dict]:
    evidence = "\n\n".join(c.strip() for c in contexts)
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Evidence:\n{evidence}\n\nQuestion: {question}"}]


def question_messages(question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Question: {question}"}]


# -- figures (pure) -------------------------------------------------------------------------
@dataclass(frozen=True)
class StatementFigures:
    """What the two passes say about one statement; log-probabilities are natural logs per token."""

    text: str
    start: int
    end: int
    tokens: int
    logp_evidence: float  # mean log p(token | evidence, question, answer so far)
    logp_question: float  # mean log p(token | question, answer so far)
    pmi: float  # logp_evidence - logp_question: > 0 when the evidence makes the statement more likely
    disagreement: float  # mean over word tokens of p(top) * (log p(top) - log p(token)) with the evidence:
    #                      high where the evidence made the model sure of another token (a changed number)
    log_ratio: float  # summed PMI: the evidence makes the statement exp(log_ratio) times more likely

    def features(self) -> dict[str, float]:
        return {"logp_evidence": self.logp_evidence, "logp_question": self.logp_question, "pmi": self.pmi,
                "disagreement": self.disagreement, "log_ratio": self.log_ratio}


def statement_figures(statements: list[Statement], with_evidence: TokenLogprobs,
                      without: TokenLogprobs) -> list[StatementFigures]:
    """Each statement's figures from the tokens that start inside it."""
    if with_evidence.tokens != without.tokens:
        raise ValueError("the two passes must score the same tokens")
    # a token belongs where its first visible character is (" It" starts the next sentence)
    starts = np.asarray([o + len(t) - len(t.lstrip()) for o, t in zip(with_evidence.offsets, with_evidence.tokens)])
    lp_e, lp_q = np.asarray(with_evidence.logprobs), np.asarray(without.logprobs)
    top = np.asarray(with_evidence.top_logprobs) if with_evidence.top_logprobs else lp_e
    disagree = np.exp(top) * (top - lp_e)
    words = np.array([bool(_CONTENT.search(t)) for t in with_evidence.tokens], dtype=bool)
    out = []
    for s in statements:
        inside = (starts >= s.start) & (starts < s.end)
        if not inside.any():
            continue
        e, q = lp_e[inside], lp_q[inside]
        d = disagree[inside & words] if (inside & words).any() else disagree[inside]
        out.append(StatementFigures(s.text, s.start, s.end, int(inside.sum()), float(e.mean()), float(q.mean()),
                                    float(e.mean() - q.mean()), float(d.mean()), float((e - q).sum())))
    return out


# -- the verdict rule -------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """supported  <=>  sigmoid(bias + sum(weight * (feature - center) / scale)) >= threshold."""

    version: str
    features: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5

    def probability(self, figures: StatementFigures) -> float:
        f = figures.features()
        z = self.bias + sum(w * (f[name] - c) / s for name, c, s, w in
                            zip(self.features, self.center, self.scale, self.weights))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def supported(self, figures: StatementFigures) -> bool:
        return self.probability(figures) >= self.threshold


@dataclass(frozen=True)
class RuleFile:
    """The fitted rule, the per-fold rules its cross-validation held items out of, and the
    held-out figures it reported."""

    rule: Rule
    folds: tuple[tuple[frozenset[str], Rule], ...]  # (held-out calibration item ids, rule fitted without them)
    calibration_set: str  # hash of the calibration file it was fitted on
    cross_validation: dict
    model_sha256: str = ""  # the GGUF it was fitted on: the weights that run (a requantized copy, if any)
    fitted_at: str = ""

    def rule_for(self, item_id: str | None = None) -> Rule:
        """The rule that never saw `item_id` when it is a calibration item, else the full rule."""
        for held_out, rule in self.folds:
            if item_id in held_out:
                return rule
        return self.rule


def _rule(d: dict) -> Rule:
    return Rule(str(d["version"]), tuple(d["features"]), tuple(d["center"]), tuple(d["scale"]),
                tuple(d["weights"]), float(d["bias"]), float(d.get("threshold", 0.5)))


@lru_cache(maxsize=4)
def load_rules(path: Path = RULE_FILE) -> RuleFile:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rule = _rule({**data["rule"], "version": data["version"]})
        folds = tuple((frozenset(f["held_out"]), _rule({**f["rule"], "version": data["version"]}))
                      for f in data.get("folds", []))
        unknown = set(rule.features) - set(StatementFigures.__dataclass_fields__)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RagEvalError(f"{path}: not a readable likelihood-judge rule ({type(e).__name__}: {e})") from None
    if unknown:
        raise RagEvalError(f"{path}: the rule uses figures this code does not compute: {', '.join(sorted(unknown))}")
    return RuleFile(rule, folds, data.get("calibration_set", ""), data.get("cross_validation", {}),
                    data.get("model_sha256", ""), data.get("fitted_at", ""))


def rule_version(path: Path = RULE_FILE) -> str:
    return load_rules(path).rule.version


# -- words for people -------------------------------------------------------------------------
def ratio_words(log_ratio: float) -> str:
    """'the evidence makes this statement 40× more likely', in words a stakeholder reads."""
    if log_ratio >= math.log(1.5):
        times = math.exp(min(log_ratio, 50.0))
        shown = "over 1,000" if times > 1000 else f"{times:,.0f}" if times >= 10 else f"{times:.1f}"
        return f"the evidence makes this statement {shown}× more likely"
    if log_ratio <= -math.log(1.5):
        return "less likely with the evidence than without: contradicted or unsupported"
    return "about as likely with the evidence as without: the evidence neither supports nor contradicts it"


def best_passage(statement: str, contexts: list[str]) -> int | None:
    """The passage sharing the most words with the statement (None when none shares any)."""
    words = {w for w in re.findall(r"\w+", statement.lower()) if len(w) > 2}
    overlap = [len(words & {w for w in re.findall(r"\w+", c.lower())}) for c in contexts]
    return max(range(len(contexts)), key=overlap.__getitem__) if overlap and max(overlap) > 0 else None


# -- the RAGAS metric ---------------------------------------------------------------------------
class LikelihoodFaithfulness(BaseMetric):
    """RAGAS faithfulness (share of statements the evidence supports) with verdicts from evidence
    likelihood under a local model. `model` is ours (core.llm), not a RAGAS LLM: it reads
    log-probabilities and writes nothing."""

    def __init__(self, model: LLM, rule: Rule | None = None, name: str = "faithfulness", **kwargs):
        self.model = model
        self.rule = rule or load_rules().rule
        super().__init__(name=name, **kwargs)

    async def ascore(self, user_input: str, response: str, retrieved_contexts: list[str]) -> MetricResult:
        if not response or not response.strip():
            raise ValueError("response is missing")
        if not retrieved_contexts:
            raise ValueError("retrieved_contexts is missing")
        statements = split_statements(response)
        if not statements:
            return MetricResult(value=float("nan"), reason="no statements in the answer")
        with_e = await asyncio.to_thread(self.model.continuation_logprobs,
                                         evidence_messages(user_input, retrieved_contexts), response)
        without = await asyncio.to_thread(self.model.continuation_logprobs, question_messages(user_input), response)
        figures = statement_figures(statements, with_e, without)
        if not figures:
            return MetricResult(value=float("nan"), reason="no statements in the answer")
        verdicts = []
        for f in figures:
            p = self.rule.probability(f)
            verdicts.append({**asdict(f), "verdict": int(p >= self.rule.threshold), "probability": p,
                             "reason": ratio_words(f.log_ratio),
                             "passage": best_passage(f.text, retrieved_contexts)})
        # the expected share of supported statements: RAGAS's definition with each verdict's
        # calibrated probability, so two answers with the same verdicts still rank by how sure they are
        value = sum(v["probability"] for v in verdicts) / len(verdicts)
        return MetricResult(value=value, traces={"output": {
            "verdicts": verdicts, "rule": self.rule.version,
            "model_seconds": with_e.latency_s + without.latency_s}})
