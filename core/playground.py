"""The Ask playground: one typed question answered in each mode and judged as a run would
judge it, without storing anything."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core import answer as answering
from core import retrieval
from core.config import Settings
from core.embeddings import Embedder
from core.errors import RagEvalError
from core.evaluate import JudgeCache, Scorer
from core.judges import faithfulness_judge
from core.llm import get_llm
from core.models import DEFAULT_METRICS, MODES, Answer, Passage, Score
from core.store import Store


@dataclass
class Asked:
    """One question answered in the chosen modes and scored, without storing anything."""

    passages: tuple[Passage, ...]
    answers: dict[str, Answer]
    scores: dict[str, dict[str, Score]]


def ask(store: Store, settings: Settings, embedder: Embedder, kb: str, question: str, *, modes=MODES,
        metrics=DEFAULT_METRICS, top_k: int | None = None, search_mode: str | None = None) -> Asked:
    """The playground: answer one typed question in each mode, judged as a run would judge it."""
    if not question.strip():
        raise RagEvalError("type a question first")
    passages = tuple(retrieval.search(store, kb, question, embedder, top_k or settings.top_k,
                                      search_mode or settings.search_mode))
    answer_llm = get_llm(settings.answer_model, settings.threads)
    judge_llm = get_llm(settings.judge_model, settings.threads)
    scorer = Scorer(judge_llm, settings.judge_model, embedder, JudgeCache(settings.cache_dir / "judge"),
                    settings.relevancy_strictness,
                    faithfulness=faithfulness_judge(settings.faithfulness_judge, settings.judge_model))

    async def one(mode: str) -> tuple[Answer, dict[str, Score]]:
        a = await answering.answer(answer_llm, settings.answer_model, "ask", "ask", question, mode, passages)
        return a, dict(zip(metrics, await asyncio.gather(*(scorer.score(a, passages, m) for m in metrics))))

    async def every_mode():
        try:
            return await asyncio.gather(*(one(mode) for mode in modes))
        finally:
            for llm in {answer_llm, judge_llm}:
                await llm.aclose()

    done = asyncio.run(every_mode())
    return Asked(passages, {m: a for m, (a, _) in zip(modes, done)}, {m: s for m, (_, s) in zip(modes, done)})
