"""Judge variance: a run's answers judged again several times, to see how much of a
difference the judge's own noise could make.

Each repeat is a fresh sample: the judge cache is bypassed and the temperature is above
zero (at zero a repeat would only echo the first judging). Repeats are stored as they
complete, so an interrupted measurement picks up where it stopped.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace

from core.config import ModelConfig, Settings, live_model
from core.embeddings import Embedder
from core.errors import ConfigError
from core.evaluate import Scorer
from core.llm import LLM, get_llm
from core.executor import evidence
from core.runs import run_questions
from core.store import Store

DEFAULT_REPEATS = 3
DEFAULT_TEMPERATURE = 0.7


def rejudge(store: Store, settings: Settings, embedder: Embedder, run_id: str, *, repeats: int = DEFAULT_REPEATS,
            temperature: float = DEFAULT_TEMPERATURE, metrics=None, judge_llm: LLM | None = None,
            progress=None, cancelled=lambda: False) -> int:
    """Judge every answer of a run `repeats` times on its metrics (or the `metrics` given),
    stopping early once `cancelled()`; returns how many judgings were made now."""
    if not 2 <= repeats <= 20:
        raise ConfigError(f"repeats must be between 2 and 20 (got {repeats})")
    if not 0 < temperature <= 2:
        raise ConfigError(f"judge variance needs a temperature above 0 and at most 2 (got {temperature}); "
                          "at 0 every repeat repeats the first judging")
    run = store.run(run_id)
    if metrics and not set(metrics) <= set(run.metrics):
        raise ConfigError(f"run {run_id} was scored on {', '.join(run.metrics)} only")
    base = (live_model(ModelConfig(**run.config["judge_model"]), settings) if run.config.get("judge_model")
            else settings.judge_model)
    cfg = replace(base, temperature=temperature)
    judge_llm = judge_llm or get_llm(base, settings.threads)
    scorer = Scorer(judge_llm, cfg, embedder, cache=None,
                    strictness=run.config.get("relevancy_strictness", settings.relevancy_strictness),
                    faithfulness=run.config.get("faithfulness_judge", "ragas"))
    answers = [a for a in store.answers(run_id) if a.text]
    rag = {a.question_id: a for a in answers if a.mode == "rag"}
    references = {q.id: q.reference for q in run_questions(store, run)}
    have = {(r["question_id"], r["mode"], r["metric"], r["repeat"]) for r in store.repeats(run_id)}
    todo = [(a, metric, r) for a in answers for metric in (metrics or run.metrics) for r in range(repeats)
            if (a.question_id, a.mode, metric, r) not in have]
    progress = progress or (lambda done, total, what: None)
    progress(0, len(todo), "starting")
    judged_against: dict[str, tuple] = {}
    n = 0
    for n, (a, metric, r) in enumerate(todo, 1):
        if cancelled():
            n -= 1
            break
        if a.question_id not in judged_against:
            judged_against[a.question_id] = evidence(store, run, a.question, rag.get(a.question_id), embedder)
        store.add_repeat(asyncio.run(scorer.score(a, judged_against[a.question_id], metric,
                                                     references.get(a.question_id, ""))), r, temperature)
        progress(n, len(todo), f"{a.question_id} {a.mode} {metric} #{r + 1}")
    store.optimize("judge_repeats")
    return n
