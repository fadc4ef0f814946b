"""Runs: create one, execute it item by item (writing each result as it completes),
resume what is missing, cancel through a flag in the store, and summarise it.

An item is one (question, mode). For each question the passages are retrieved once:
the RAG answer reads them, and both modes' faithfulness is judged against them, so the
two modes face the same evidence.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from core import answer as answering
from core import retrieval
from core.config import PROJECT_ROOT, ModelConfig, Settings
from core.embeddings import Embedder
from core.errors import RagEvalError
from core.evaluate import JudgeCache, Scorer
from core.judges import faithfulness_judge
from core.llm import LLM, get_llm, label
from core.models import METRICS, MODE_LABELS, MODES, Answer, Passage, Question, Run, Score
from core.store import Store

Progress = Callable[[int, int, str], None]  # (items done, items total, what)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def check_choices(store: Store, settings: Settings, kb: str, modes: tuple, metrics: tuple, limit: int | None,
                  top_k: int | None, search_mode: str | None) -> tuple[int, str]:
    """Refuse a run's choices before anything is stored; returns top-k and search mode with defaults."""
    for m in modes:
        if m not in MODES:
            raise RagEvalError(f"mode '{m}' is unknown: use {', '.join(MODES)}")
    for m in metrics:
        if m not in METRICS:
            raise RagEvalError(f"metric '{m}' is unknown: use {', '.join(METRICS)}")
    if not modes:
        raise RagEvalError("choose at least one mode")
    if limit is not None and limit < 1:
        raise RagEvalError(f"limit {limit}: use 1 or more questions")
    store.kb_table(kb)  # raises NotFoundError naming the known ones
    top_k = top_k or settings.top_k
    search_mode = search_mode or settings.search_mode
    if search_mode not in retrieval.SEARCH_MODES or not 1 <= top_k <= 50:
        raise RagEvalError(f"top-k {top_k} / search mode '{search_mode}' is not allowed")
    return top_k, search_mode


def create_run(store: Store, settings: Settings, kb: str, question_set: str, *, modes=MODES, metrics=METRICS,
               limit: int | None = None, top_k: int | None = None, search_mode: str | None = None,
               question_set_version: int | None = None, imported: bool = False) -> Run:
    """Validate the choices and store a pending run; nothing is computed yet."""
    modes, metrics = tuple(modes), tuple(metrics)
    top_k, search_mode = check_choices(store, settings, kb, modes, metrics, limit, top_k, search_mode)
    qs = store.question_set(question_set, question_set_version)
    run = Run(
        id=new_run_id(), created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), kb=kb,
        question_set=qs.name, question_set_version=qs.version, modes=modes, metrics=metrics,
        answer_model="imported" if imported else label(settings.answer_model),
        judge_model=label(settings.judge_model), top_k=top_k, search_mode=search_mode, limit=limit,
        imported=imported,
        config={"answer_model": asdict(settings.answer_model), "judge_model": asdict(settings.judge_model),
                "relevancy_strictness": settings.relevancy_strictness,
                "faithfulness_judge": faithfulness_judge(settings.faithfulness_judge, settings.judge_model),
                "embedding_model": settings.embedding_model},
    )
    store.create_run(run)
    return run


def tally(run: Run, questions, answers: dict, scores: dict) -> dict:
    """Every item (question, mode) and score of a run counted by kind; `done` counts the items
    that are settled: answered or failed for good, and every score given or unscored for good.
    A retryable failure (endpoint down, timeout, 429, 5xx) or a missing row is not settled:
    resume redoes it."""
    c = dict.fromkeys(("items", "done", "answered", "answer_failed", "answer_retryable", "answer_missing",
                       "scores", "scored", "unscored_final", "unscored_retryable", "score_missing"), 0)
    for q in questions:
        for m in run.modes:
            a = answers.get((q.id, m))
            kind = ("answer_missing" if a is None else "answer_retryable" if a.retryable
                    else "answer_failed" if a.error else "answered")
            c["items"] += 1
            c[kind] += 1
            settled = kind in ("answered", "answer_failed")
            for k in run.metrics:
                sc = scores.get((q.id, m, k))
                kind = ("score_missing" if sc is None else "unscored_retryable" if sc.retryable
                        else "scored" if sc.scored else "unscored_final")
                c["scores"] += 1
                c[kind] += 1
                settled = settled and kind in ("scored", "unscored_final")
            c["done"] += settled
    return c


def end_status(counts: dict, cancelled: bool = False) -> str:
    """A run's status once its execution ends: done only when every item is settled (a final
    unscored score is settled); incomplete while retryable failures or missing items remain;
    failed when nothing at all could be answered."""
    if cancelled:
        return "cancelled"
    if counts["done"] < counts["items"]:
        return "incomplete"
    return "failed" if counts["items"] and not counts["answered"] else "done"


def counts_line(c: dict) -> str:
    """The counts in one line, as `run` and `resume` print them and the Run page shows them."""
    return (f"{c['answered']}/{c['items']} answered ({c['answer_failed']} failed for good, "
            f"{c['answer_retryable']} to retry, {c['answer_missing']} not yet); "
            f"{c['scored']}/{c['scores']} scored ({c['unscored_final']} unscored for good, "
            f"{c['unscored_retryable']} to retry, {c['score_missing']} not yet)")


def run_questions(store: Store, run: Run) -> list[Question]:
    qs = store.question_set(run.question_set, run.question_set_version).questions
    return list(qs[: run.limit] if run.limit else qs)


@dataclass
class Outcome:
    """What one execution of a run did."""

    run: Run
    answered: int = 0
    scored: int = 0
    seconds: float = 0.0
    counts: dict | None = None  # tally() of the run when this execution ended


class Executor:
    """Executes (or resumes) one run; `answer_llm` and `judge_llm` may be given for tests."""

    def __init__(self, store: Store, settings: Settings, embedder: Embedder, run_id: str,
                 answer_llm: LLM | None = None, judge_llm: LLM | None = None, progress: Progress | None = None):
        self.store, self.settings, self.embedder = store, settings, embedder
        self.run = store.run(run_id)
        cfg = self.run.config
        self.answer_cfg = ModelConfig(**cfg["answer_model"]) if cfg.get("answer_model") else settings.answer_model
        self.judge_cfg = ModelConfig(**cfg["judge_model"]) if cfg.get("judge_model") else settings.judge_model
        self.answer_llm = answer_llm
        self.judge_llm = judge_llm
        self.progress = progress or (lambda done, total, what: None)
        self.strictness = cfg.get("relevancy_strictness", settings.relevancy_strictness)
        self.faithfulness = cfg.get("faithfulness_judge", "ragas")  # runs made before the likelihood judge: RAGAS

    def execute(self, rescore: bool = False) -> Outcome:
        """Compute every missing answer and score; with `rescore`, score everything again
        (judge calls are answered from the cache when nothing changed)."""
        if self.run.status == "running" and worker_alive(self.run) and self.run.worker != this_worker():
            raise RagEvalError(f"run {self.run.id} is already being executed by process {self.run.worker}; "
                               "cancel it first or wait for it to finish")
        if rescore:
            self.store.delete_scores(self.run.id)
        self.store.update_run(self.run.id, status="running", error="", cancel_requested=False, worker=this_worker())
        t0 = time.perf_counter()
        outcome = Outcome(self.run)
        try:
            cancelled = asyncio.run(self._execute(outcome))
        except BaseException as e:
            self.store.update_run(self.run.id, status="failed", error=str(e) or type(e).__name__)
            raise
        outcome.counts = counts = self._tally()
        status = end_status(counts, cancelled)
        error = ("" if status in ("done", "cancelled") else
                 f"{counts_line(counts)}; `python -m core resume {self.run.id}` retries what may pass"
                 if status == "incomplete" else f"no answer could be generated: {counts_line(counts)}")
        self.store.update_run(self.run.id, status=status, error=error)
        self.store.optimize("answers", "scores", "runs")
        outcome.seconds = time.perf_counter() - t0
        outcome.run = self.store.run(self.run.id)
        return outcome

    def _tally(self) -> dict:
        return tally(self.run, run_questions(self.store, self.run),
                     {(a.question_id, a.mode): a for a in self.store.answers(self.run.id)},
                     {(s.question_id, s.mode, s.metric): s for s in self.store.scores(self.run.id)})

    async def _execute(self, outcome: Outcome) -> bool:
        run = self.run
        questions = run_questions(self.store, run)
        answers = {(a.question_id, a.mode): a for a in self.store.answers(run.id)}
        scores = {(s.question_id, s.mode, s.metric): s for s in self.store.scores(run.id)}
        total = len(questions) * len(run.modes)
        done = tally(run, questions, answers, scores)["done"]
        self.progress(done, total, "starting")
        if done == total:
            return False
        if self.answer_llm is None and not run.imported:  # an imported run's answers are never generated
            self.answer_llm = get_llm(self.answer_cfg, self.settings.threads)
        if self.judge_llm is None:
            self.judge_llm = get_llm(self.judge_cfg, self.settings.threads)
        scorer = Scorer(self.judge_llm, self.judge_cfg, self.embedder,
                        JudgeCache(self.settings.cache_dir / "judge"), self.strictness, faithfulness=self.faithfulness)
        limit = asyncio.Semaphore(self.settings.concurrency)
        state = {"done": done, "cancelled": False}

        async def one_question(q: Question):
            async with limit:
                if state["cancelled"] or self.store.run(run.id).cancel_requested:
                    state["cancelled"] = True
                    return
                # what is missing, and what failed for a reason that may pass; never what failed for good
                todo = [m for m in run.modes if _redo(answers.get((q.id, m)))
                        or any(_redo(scores.get((q.id, m, k))) for k in run.metrics)]
                if not todo:
                    return
                evidence = await self._evidence(q, answers.get((q.id, "rag")))
                for mode in todo:
                    old = a = answers.get((q.id, mode))
                    if a is None and run.imported:
                        a = missing_answer(run.id, q, mode)
                        self.store.add_answer(a)
                    elif _redo(a):
                        a = await asyncio.to_thread(answering.answer, self.answer_llm, self.answer_cfg, run.id,
                                                    q.id, q.question, mode, evidence)
                        self.store.add_answer(a, replace=old is not None)
                        outcome.answered += 1
                    for metric in run.metrics:
                        s = scores.get((q.id, mode, metric))
                        if a is not old or _redo(s):  # a new answer gets new scores
                            self.store.add_score(await scorer.score(a, evidence, metric), replace=s is not None)
                            outcome.scored += 1
                    state["done"] += 1
                    self.progress(state["done"], total, f"{q.id} {mode}")

        await asyncio.gather(*(one_question(q) for q in questions))
        return state["cancelled"]

    async def _evidence(self, q: Question, rag_answer: Answer | None) -> tuple[Passage, ...]:
        return await asyncio.to_thread(evidence, self.store, self.run, q.question, rag_answer, self.embedder)


def _redo(row: Answer | Score | None) -> bool:
    """Whether execution computes this answer or score (again): when missing or retryable."""
    return row is None or row.retryable


def evidence(store: Store, run: Run, question: str, rag_answer: Answer | None,
             embedder: Embedder) -> tuple[Passage, ...]:
    """What both modes' answers to a question are judged against: the passages the RAG
    answer actually saw, else those the run's retrieval finds for the question."""
    if rag_answer is not None and rag_answer.passages:
        return rag_answer.passages
    return tuple(retrieval.search(store, run.kb, question, embedder, run.top_k, run.search_mode))


def missing_answer(run_id: str, q: Question, mode: str) -> Answer:
    """The place of an answer an imported file did not hold: unscored with its reason, never generated."""
    return Answer(run_id, q.id, mode, q.question, "", model="imported",
                  error=f"the imported file holds no {MODE_LABELS[mode]} answer to this question")


def delete(store: Store, run_id: str) -> None:
    """Delete a run with its answers and scores; refused while a live process executes it."""
    run = store.run(run_id)
    if run.status == "running" and worker_alive(run) is not False:
        raise RagEvalError(f"run {run_id} is being executed by process {run.worker}; cancel it first")
    store.delete_run(run_id)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_alive(run: Run) -> bool | None:
    """Whether the process executing a run still lives; None when it runs on another host."""
    host, _, pid = run.worker.rpartition(":")
    if not pid.isdigit():
        return False
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_detached(settings: Settings, run_id: str, *command: str) -> int:
    """Execute a run in its own process (`python -m core resume RUN_ID`, or another command
    on the run), detached from the caller: closing the page or the terminal that started it
    does not stop it."""
    command = command or ("resume", run_id)
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RAGEVAL_HOME=str(settings.home))
    with open(logs / f"{command[0]}-{run_id}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "core", *command], cwd=str(PROJECT_ROOT), env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


def cancel(store: Store, run_id: str) -> None:
    """Ask a running run to stop after the items in flight."""
    store.run(run_id)
    store.update_run(run_id, cancel_requested=True)


def summary(store: Store, run_id: str) -> dict:
    """The run with every item's answers and scores, per mode and metric the mean over scored
    items and the scored / unscored (of those, retryable) / missing counts, and the run's
    `tally()` as `counts`."""
    run = store.run(run_id)
    questions = run_questions(store, run)
    answers = {(a.question_id, a.mode): a for a in store.answers(run_id)}
    scores: dict[tuple[str, str, str], Score] = {(s.question_id, s.mode, s.metric): s for s in store.scores(run_id)}
    modes: dict = {}
    for mode in run.modes:
        modes[mode] = {}
        for metric in run.metrics:
            got = [scores.get((q.id, mode, metric)) for q in questions]
            values = [s.value for s in got if s is not None and s.scored]
            modes[mode][metric] = {
                "mean": sum(values) / len(values) if values else None,
                "n_scored": len(values),
                "n_unscored": sum(1 for s in got if s is not None and not s.scored),
                "n_unscored_retryable": sum(1 for s in got if s is not None and s.retryable),
                "n_missing": sum(1 for s in got if s is None),
            }
    counts = tally(run, questions, answers, scores)
    items = []
    for q in questions:
        item = {"question_id": q.id, "question": q.question, "category": q.category, "reference": q.reference}
        for mode in run.modes:
            a = answers.get((q.id, mode))
            item[mode] = None if a is None else {
                "answer": a.text, "error": a.error, "retryable": a.retryable, "model": a.model, **_cost(a),
                "passages": [asdict(p) for p in a.passages],
                "scores": {m: _score_json(scores.get((q.id, mode, m))) for m in run.metrics},
            }
        items.append(item)
    return {"run_id": run.id, "run": _run_json(run), "modes": modes, "items": items,
            "progress": {"done": counts["done"], "total": counts["items"]}, "counts": counts}


def _cost(a: Answer) -> dict:
    """Latency and tokens; None for an imported answer, which was never generated here."""
    measured = a.model != "imported"
    return {k: getattr(a, k) if measured else None for k in ("latency_s", "prompt_tokens", "completion_tokens")}


def _score_json(s: Score | None) -> dict:
    if s is None:
        return {"value": None, "reason": "not scored yet"}
    return {"value": s.value, "reason": s.reason or None, "retryable": s.retryable, "details": s.details,
            "judge": s.judge, "latency_s": s.latency_s}


def _run_json(run: Run) -> dict:
    d = asdict(run)
    d.pop("config")  # model configs hold no secrets, but endpoints are not for every export
    d["faithfulness_judge"] = run.config.get("faithfulness_judge", "ragas")
    return d


@dataclass
class Asked:
    """One question answered in the chosen modes and scored, without storing anything."""

    passages: tuple[Passage, ...]
    answers: dict[str, Answer]
    scores: dict[str, dict[str, Score]]


def ask(store: Store, settings: Settings, embedder: Embedder, kb: str, question: str, *, modes=MODES,
        metrics=METRICS, top_k: int | None = None, search_mode: str | None = None) -> Asked:
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
    answers, scores = {}, {}
    for mode in modes:
        a = answering.answer(answer_llm, settings.answer_model, "ask", "ask", question, mode, passages)
        answers[mode] = a
        scores[mode] = {m: asyncio.run(scorer.score(a, passages, m)) for m in metrics}
    return Asked(passages, answers, scores)
