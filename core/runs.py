"""Runs' lifecycle: create one (its environment pinned), estimate its work, launch it as a
job in the background, follow its status, cancel, compare setups, delete. Executing a run is
core/executor.py; the Ask playground core/playground.py.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from core import jobs
from core.config import PROJECT_ROOT, ModelConfig, Settings, stored_model
from core.errors import RagEvalError
from core.judges import faithfulness_judge
from core.llm import label
from core.models import DEFAULT_METRICS, METRICS, MODES, Question, Run
from core.retrieval import SEARCH_MODES
from core.store import Store


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
    if search_mode not in SEARCH_MODES or not 1 <= top_k <= 50:
        raise RagEvalError(f"top-k {top_k} / search mode '{search_mode}' is not allowed")
    return top_k, search_mode


def create_run(store: Store, settings: Settings, kb: str, question_set: str, *, modes=MODES,
               metrics=DEFAULT_METRICS,
               limit: int | None = None, top_k: int | None = None, search_mode: str | None = None,
               question_set_version: int | None = None, imported: bool = False, experiment: str = "") -> Run:
    """Validate the choices and store a pending run; nothing is computed yet. `experiment` tags
    the run as one configuration of that experiment (core/experiments.py)."""
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
                "encoder": store.kb_encoder(kb), **({"experiment": experiment} if experiment else {})},
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
    per_answer = ((2 if "faithfulness" in metrics else 0) + (relevancy if "answer_relevancy" in metrics else 0)
                  + (3 if "answer_correctness" in metrics else 0))  # two statement lists, one classification
    # the passages' metrics, once per question on the RAG item: two judges, one call, one per passage
    per_question = (2 * ("context_relevance" in metrics) + ("context_recall" in metrics)
                    + settings.top_k * ("context_precision" in metrics)) if "rag" in modes else 0
    answers = questions * len(modes)
    return Estimate(questions, answers, answers * per_answer + questions * per_question, judge)


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
    return jobs.shown_status(store, "run", run.id, run.status)


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
