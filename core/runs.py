"""Runs: create one, execute it item by item (writing each result as it completes),
resume what is missing, cancel through a flag in the store, and summarise it.

An item is one (question, mode). For each question the passages are retrieved once:
the RAG answer reads them, and both modes' faithfulness is judged against them, so the
two modes face the same evidence.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from core import answer as answering
from core import jobs, retrieval
from core.config import PROJECT_ROOT, ModelConfig, Settings, live_model, stored_model
from core.embeddings import Embedder
from core.errors import RagEvalError
from core.evaluate import JudgeCache, Scorer
from core.judges import faithfulness_judge
from core.llm import LLM, get_llm, label
from core.models import METRICS, MODE_LABELS, MODES, Answer, Passage, Question, Run, Score
from core.results import counts_line, end_status, load
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
    run_id = new_run_id()
    # the knowledge base as it is now is the run's for its whole life: resume and re-judging
    # retrieve from this version (tagged, so cleanup keeps it), embedded by this encoder
    kb_version = store.pin_kb(kb, pin_tag(run_id))
    run = Run(
        id=run_id, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), kb=kb,
        question_set=qs.name, question_set_version=qs.version, modes=modes, metrics=metrics,
        answer_model="imported" if imported else label(settings.answer_model),
        judge_model=label(settings.judge_model), top_k=top_k, search_mode=search_mode, limit=limit,
        imported=imported,
        config={"answer_model": stored_model(settings.answer_model), "judge_model": stored_model(settings.judge_model),
                "relevancy_strictness": settings.relevancy_strictness,
                "faithfulness_judge": faithfulness_judge(settings.faithfulness_judge, settings.judge_model),
                "embedding_model": settings.embedding_model, "kb_version": kb_version,
                "encoder": store.kb_encoder(kb)},
    )
    store.create_run(run)
    return run


def pin_tag(run_id: str) -> str:
    """The tag that keeps the knowledge-base version a run was made with."""
    return f"run-{run_id}"


def model_choices(settings: Settings) -> dict[str, ModelConfig]:
    """The models a run can use, each with its whole configuration: the settings' answer
    model and judge model, and the embedded default; a label two different configurations
    share is told apart by the role."""
    out: dict[str, ModelConfig] = {}
    for role, cfg in (("answer model", settings.answer_model), ("judge model", settings.judge_model),
                      ("embedded default", ModelConfig())):
        if cfg in out.values():
            continue
        name = label(cfg)
        if name in out:
            name = f"{name} (the {role}: temperature {cfg.temperature}, {cfg.max_tokens} tokens, context {cfg.n_ctx})"
        out[name] = cfg
    return out


@dataclass(frozen=True)
class Estimate:
    """The work a run's choices mean, before anything starts."""

    questions: int
    answers: int
    judge_calls: int  # at most: the judge cache answers what it has seen
    faithfulness_judge: str

    def sentence(self) -> str:
        per = ("two likelihood passes per answer for faithfulness" if self.faithfulness_judge == "likelihood"
               else "RAGAS's prompts for faithfulness")
        return (f"Estimated work: {self.answers} answers ({self.questions} questions × "
                f"{self.answers // max(self.questions, 1)} modes) and up to {self.judge_calls} judge model calls "
                f"({per}; fewer when cached).")


def estimate(settings: Settings, questions: int, modes, metrics) -> Estimate:
    """How many answers and judge calls a run of `questions` questions makes at most."""
    judge = faithfulness_judge(settings.faithfulness_judge, settings.judge_model)
    # relevancy's repeats at temperature 0 are one prompt: one call (core.evaluate)
    relevancy = settings.relevancy_strictness if settings.judge_model.temperature > 0 else 1
    per_answer = (2 if "faithfulness" in metrics else 0) + (relevancy if "answer_relevancy" in metrics else 0)
    answers = questions * len(modes)
    return Estimate(questions, answers, answers * per_answer, judge)


def setup_differences(a: Run, b: Run) -> list[tuple[str, str, str]]:
    """What differs between two runs' setups: (what, in a, in b)."""
    judge = {r.id: r.config.get("faithfulness_judge", "ragas") for r in (a, b)}
    pairs = [("answer model", a.answer_model, b.answer_model), ("judge model", a.judge_model, b.judge_model),
             ("faithfulness judge", judge[a.id], judge[b.id]), ("knowledge base", a.kb, b.kb),
             ("top-k", a.top_k, b.top_k), ("search", a.search_mode, b.search_mode),
             ("question set", f"{a.question_set} v{a.question_set_version}",
              f"{b.question_set} v{b.question_set_version}")]
    if a.kb == b.kb:  # the same knowledge base, perhaps as it was at another time
        pairs.append(("knowledge-base version", a.config.get("kb_version", "?"), b.config.get("kb_version", "?")))
    return [(what, str(x), str(y)) for what, x, y in pairs if x != y]


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
        self.store.optimize("answers", "scores", "runs", "jobs")
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
        scorer = Scorer(self.judge_llm, self.judge_cfg, self.embedder,
                        JudgeCache(self.settings.cache_dir / "judge"), self.strictness, faithfulness=self.faithfulness)
        limit = asyncio.Semaphore(self.settings.concurrency)
        state = {"done": done, "cancelled": False}

        async def one_question(q: Question):
            async with limit:
                if state["cancelled"] or self.claim.cancelled():
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
    return tuple(retrieval.search(store, run.kb, question, embedder, run.top_k, run.search_mode,
                                  version=run.config.get("kb_version")))


def missing_answer(run_id: str, q: Question, mode: str) -> Answer:
    """The place of an answer an imported file did not hold: unscored with its reason, never generated."""
    return Answer(run_id, q.id, mode, q.question, "", model="imported",
                  error=f"the imported file holds no {MODE_LABELS[mode]} answer to this question")


def delete(store: Store, run_id: str) -> None:
    """Delete a run with its answers and scores; refused while a live worker executes or
    re-judges it."""
    run = store.run(run_id)
    for kind in ("run", "rejudge"):
        job = jobs.get(store, kind, run_id)
        if jobs.alive(job):
            raise RagEvalError(f"{jobs.describe(job)}; cancel it first")
    store.delete_run(run_id)
    for kind in ("run", "rejudge"):
        store.delete_job(jobs.key(kind, run_id))
    store.unpin_kb(run.kb, pin_tag(run_id))


def status(store: Store, run: Run) -> str:
    """The run's status as a person should read it: 'interrupted' when it is marked running
    (or was launched) but no live worker executes it any more; resume finishes it."""
    if run.status not in ("pending", "running"):
        return run.status
    job = jobs.get(store, "run", run.id)
    if job is None:
        return "interrupted" if run.status == "running" else "pending"
    return "interrupted" if jobs.state(job) in ("interrupted", "failed", "done", "incomplete") else \
        "cancelled" if job.status == "cancelled" else run.status


def launch(settings: Settings, store: Store, run_id: str, *command: str) -> "jobs.Job":
    """Execute a run in its own process (`python -m core resume RUN_ID`, or another command on
    the run), detached from the caller; refused while it is pending or running already."""
    command = command or ("resume", run_id)
    kind = "rejudge" if command[0] == "rejudge" else "run"
    store.run(run_id)
    return jobs.launch(store, settings.home, kind, run_id, command, PROJECT_ROOT)


def cancel(store: Store, run_id: str) -> str:
    """Stop a run: at once while it waits for a worker, else after the items in flight.
    Returns what happened, in words."""
    run = store.run(run_id)
    before = jobs.get(store, "run", run_id)
    job = jobs.cancel(store, "run", run_id)
    if jobs.alive(job) and job.status == "running":
        return f"asked run {run_id} to stop after the items in flight"
    if run.status == "pending" or before is not None and before.status == "pending":
        store.update_run(run_id, status="cancelled")
        return f"run {run_id} cancelled before it started"
    raise RagEvalError(f"run {run_id} is not running (it is {status(store, run)})")


def summary(store: Store, run_id: str) -> dict:
    """The run with every item's answers and scores, and per mode and metric the mean over
    scored items and the scored / unscored counts (read as columns: `core.results`)."""
    from core.results import summary_json

    return summary_json(store, run_id)


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
