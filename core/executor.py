"""Executing a run: every missing answer and score computed and written as it completes,
what failed for a reason that may pass redone, all under the run's job (core/jobs.py).

An item is one (question, mode). For each question the passages are retrieved once:
the RAG answer reads them, and both modes' faithfulness is judged against them, so the
two modes face the same evidence.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from core import answer as answering
from core import jobs, retrieval
from core.config import ModelConfig, Settings, live_model
from core.embeddings import Embedder
from core.evaluate import JudgeCache, Scorer
from core.llm import LLM, get_llm
from core.models import MODE_LABELS, Answer, Passage, Question, Run, Score
from core.results import counts_line, draw_once, end_status, load
from core.runs import run_questions
from core.store import Store

Progress = Callable[[int, int, str], None]  # (items done, items total, what)


@dataclass
class Outcome:
    """What one execution of a run did."""

    run: Run
    answered: int = 0
    scored: int = 0
    seconds: float = 0.0
    counts: dict | None = None  # RunResults.counts of the run when this execution ended


class Executor:
    """Executes (or resumes) one run as its job; `answer_llm` and `judge_llm` may be given for
    tests, `claim` when the job was already claimed (a launched worker)."""

    def __init__(self, store: Store, settings: Settings, embedder: Embedder, run_id: str,
                 answer_llm: LLM | None = None, judge_llm: LLM | None = None, progress: Progress | None = None,
                 claim: jobs.Claim | None = None):
        self.store, self.settings, self.embedder = store, settings, embedder
        self.run = store.run(run_id)
        cfg = self.run.config
        # the stored URLs carry no credentials: the live settings give the real ones back
        self.answer_cfg = live_model(ModelConfig(**cfg["answer_model"]), settings) if cfg.get("answer_model") \
            else settings.answer_model
        self.judge_cfg = live_model(ModelConfig(**cfg["judge_model"]), settings) if cfg.get("judge_model") \
            else settings.judge_model
        self.answer_llm = answer_llm
        self.judge_llm = judge_llm
        self._progress = progress or (lambda done, total, what: None)
        self.claim = claim
        self.strictness = cfg.get("relevancy_strictness", settings.relevancy_strictness)
        self.faithfulness = cfg.get("faithfulness_judge", "ragas")  # runs made before the likelihood judge: RAGAS

    def progress(self, done: int, total: int, what: str) -> None:
        self.claim.progress(done, total)
        self._progress(done, total, what)

    def execute(self, rescore: bool = False) -> Outcome:
        """Compute every missing answer and score; with `rescore`, score everything again
        (judge calls are answered from the cache when nothing changed). Refused (JobBusy)
        while another process executes the run."""
        self.claim = self.claim or jobs.start(self.store, "run", self.run.id,
                                              ("rescore" if rescore else "resume", self.run.id))
        with self.claim:
            if rescore:
                self.store.delete_scores(self.run.id)
            self.store.update_run(self.run.id, status="running", error="")
            t0 = time.perf_counter()
            outcome = Outcome(self.run)
            try:
                cancelled = asyncio.run(self._execute(outcome))
            except BaseException as e:
                self.store.update_run(self.run.id, status="failed", error=str(e) or type(e).__name__)
                raise
            outcome.counts = counts = load(self.store, self.run.id, findings=False).counts
            status = end_status(counts, cancelled)
            error = ("" if status in ("done", "cancelled") else
                     f"{counts_line(counts)}; `python -m core resume {self.run.id}` retries what may pass"
                     if status == "incomplete" else f"no answer could be generated: {counts_line(counts)}")
            self.store.update_run(self.run.id, status=status, error=error)
            self.claim.finish(status, error)
        self.store.optimize("answers", "scores", "runs")
        draw_once(self.store, self.run.id)
        outcome.seconds = time.perf_counter() - t0
        outcome.run = self.store.run(self.run.id)
        return outcome

    async def _execute(self, outcome: Outcome) -> bool:
        run = self.run
        questions = run_questions(self.store, run)
        answers = {(a.question_id, a.mode): a for a in self.store.answers(run.id)}
        scores = {(s.question_id, s.mode, s.metric): s for s in self.store.scores(run.id)}
        total = len(questions) * len(run.modes)
        done = load(self.store, run.id, findings=False).done
        self.progress(done, total, "starting")
        if done == total:
            return False
        if self.answer_llm is None and not run.imported:  # an imported run's answers are never generated
            self.answer_llm = get_llm(self.answer_cfg, self.settings.threads)
        if self.judge_llm is None:
            self.judge_llm = get_llm(self.judge_cfg, self.settings.threads)
        concurrency = self.settings.concurrency
        # threads for retrieval, the encoder and the writes; the model calls need none
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(concurrency + 4))
        calls = asyncio.Semaphore(concurrency)  # model calls in flight, across questions and within one
        scorer = Scorer(self.judge_llm, self.judge_cfg, self.embedder, JudgeCache(self.settings.cache_dir / "judge"),
                        self.strictness, faithfulness=self.faithfulness, limit=calls)
        writer = Writer(self.store)
        state = {"done": done, "cancelled": False}

        async def one_item(q: Question, mode: str, evidence: tuple[Passage, ...]):
            old = a = answers.get((q.id, mode))
            if a is None and run.imported:
                a = missing_answer(run.id, q, mode)
                writer.answer(a, replace=False)
            elif _redo(a):
                async with calls:  # a cancel seen now stops an answer that has not started
                    if state["cancelled"] or self.claim.cancelled():
                        state["cancelled"] = True
                        return
                    a = await answering.answer(self.answer_llm, self.answer_cfg, run.id, q.id, q.question, mode,
                                               evidence)
                writer.answer(a, replace=old is not None)
                outcome.answered += 1
            # a new answer gets new scores; else what is missing or failed for a reason that may pass
            todo = [m for m in run.metrics if a is not old or _redo(scores.get((q.id, mode, m)))]
            scored = await asyncio.gather(*(scorer.score(a, evidence, m, q.reference) for m in todo))
            for metric, score in zip(todo, scored):
                writer.score(score, replace=(q.id, mode, metric) in scores)
            outcome.scored += len(todo)
            state["done"] += 1
            self.progress(state["done"], total, f"{q.id} {mode}")

        async def one_question(q: Question):
            # what is missing, and what failed for a reason that may pass; never what failed for good
            todo = [m for m in run.modes if _redo(answers.get((q.id, m)))
                    or any(_redo(scores.get((q.id, m, k))) for k in run.metrics)]
            if not todo:
                return
            evidence = await self._evidence(q, answers.get((q.id, "rag")))
            async with calls:  # asked when this question's first call could start, so a cancel stops it
                if state["cancelled"] or self.claim.cancelled():
                    state["cancelled"] = True
                    return
            await asyncio.gather(*(one_item(q, m, evidence) for m in todo))
            await writer.flush(due=True)

        pending = iter(questions)

        async def worker():  # enough questions under way to keep `concurrency` calls in flight
            for q in pending:  # shared: each question is taken by one worker
                if state["cancelled"]:
                    return
                await one_question(q)

        try:
            await asyncio.gather(*(worker() for _ in range(2 * concurrency)))
        finally:
            await writer.flush()  # what completed is kept, whatever ended the run
            for llm in {self.answer_llm, self.judge_llm} - {None}:
                await llm.aclose()
        return state["cancelled"]

    async def _evidence(self, q: Question, rag_answer: Answer | None) -> tuple[Passage, ...]:
        return await asyncio.to_thread(evidence, self.store, self.run, q.question, rag_answer, self.embedder)


class Writer:
    """A run's new answers and scores, written a batch at a time instead of a commit per row: at
    most every FLUSH_S seconds, so a crash loses at most the items in flight and those finished in
    the last FLUSH_S (resume does them again). Answers go before their scores."""

    FLUSH_S = 0.5

    def __init__(self, store: Store):
        self.store = store
        self.rows: dict[tuple[str, bool], list] = {}  # ("answers" | "scores", replace) -> rows
        self.since = 0.0  # when the oldest unwritten row came
        self._lock = asyncio.Lock()

    def answer(self, a: Answer, replace: bool) -> None:
        self._add("answers", replace, a)

    def score(self, s: Score, replace: bool) -> None:
        self._add("scores", replace, s)

    def _add(self, table: str, replace: bool, row) -> None:
        self.since = self.since or time.monotonic()
        self.rows.setdefault((table, replace), []).append(row)

    async def flush(self, due: bool = False) -> None:
        """Write what is waiting (with `due`, only once the oldest row has waited FLUSH_S)."""
        if not self.rows or (due and time.monotonic() - self.since < self.FLUSH_S):
            return
        rows, self.rows, self.since = self.rows, {}, 0.0
        async with self._lock:  # one batch at a time, in order
            await asyncio.to_thread(self._write, rows)

    def _write(self, rows: dict) -> None:
        for (table, replace), batch in sorted(rows.items()):  # "answers" before "scores"
            (self.store.add_answers if table == "answers" else self.store.add_scores)(batch, replace)


def _redo(row: Answer | Score | None) -> bool:
    """Whether execution computes this answer or score (again): when missing or retryable."""
    return row is None or row.retryable


def evidence(store: Store, run: Run, question: str, rag_answer: Answer | None,
             embedder: Embedder) -> tuple[Passage, ...]:
    """What both modes' answers to a question are judged against: the passages the RAG
    answer actually saw, else those the run's retrieval finds for the question."""
    if rag_answer is not None and rag_answer.passages:
        return rag_answer.passages
    return tuple(retrieval.search(store, run.kb, question, embedder, run.top_k, run.search_mode,
                                  version=run.config.get("kb_version")))


def missing_answer(run_id: str, q: Question, mode: str) -> Answer:
    """The place of an answer an imported file did not hold: unscored with its reason, never generated."""
    return Answer(run_id, q.id, mode, q.question, "", model="imported",
                  error=f"the imported file holds no {MODE_LABELS[mode]} answer to this question")
