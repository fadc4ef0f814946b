"""Imported runs: answers that already exist — the seed's markdown, or a CSV / JSON / XLSX with
`llm_only_answer` / `rag_answer` columns and optional `rag_contexts` — stored as a run marked
imported. Executing it scores those answers and never generates one; where a question came
without contexts, its evidence is retrieved from the run's knowledge base, as for any run.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from core.config import Settings
from core.errors import QuestionFileError, RagEvalError
from core.models import DEFAULT_METRICS, MODES, Answer, Passage, Run
from core.questions import ParsedFile
from core.runs import check_choices, create_run
from core.executor import missing_answer
from core.store import Store, check_name


def set_name_for(origin: str) -> str:
    """A question-set name made from a file name: 'My evals (v2).csv' -> 'My-evals-v2'."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(origin).stem).strip("-._")[:64]
    return stem or "imported"


def import_run(store: Store, settings: Settings, parsed: ParsedFile, origin: str, kb: str, *,
               set_name: str | None = None, metrics=DEFAULT_METRICS, top_k: int | None = None,
               search_mode: str | None = None) -> Run:
    """Save the file's questions as a new version of a set and its answers as a pending imported
    run. Everything is checked before the first write."""
    if not parsed.answers:
        raise QuestionFileError(f"{origin}: holds no answers to import (columns llm_only_answer / rag_answer, "
                                "or '### LLM Only:' / '### LLM + RAG:' sections); import it as a question set")
    modes = tuple(m for m in MODES if any(m in a for a in parsed.answers.values()))
    if parsed.contexts and "rag" not in modes:
        raise QuestionFileError(f"{origin}: rag_contexts are given but no rag_answer: contexts belong to a "
                                "RAG answer")
    set_name = check_name("question set", set_name or set_name_for(origin))
    metrics = tuple(metrics)
    if not metrics:
        raise RagEvalError("choose at least one metric to score the imported answers with")
    check_choices(store, settings, kb, modes, metrics, None, top_k, search_mode)
    qs = store.save_question_set(set_name, parsed.questions, origin=origin)
    run = create_run(store, settings, kb, qs.name, modes=modes, metrics=metrics, top_k=top_k,
                     search_mode=search_mode, question_set_version=qs.version, imported=True)
    answers = []
    for q in qs.questions:
        given = parsed.answers.get(q.id, {})
        for mode in modes:
            passages = _passages(origin, q.id, parsed.contexts.get(q.id, [])) if mode == "rag" else ()
            a = missing_answer(run.id, q, mode) if mode not in given else \
                Answer(run.id, q.id, mode, q.question, given[mode], model="imported")
            answers.append(replace(a, passages=passages))
    try:
        store.add_answers(answers)
    except BaseException:
        store.delete_run(run.id)  # a run without its answers would be answered by nobody
        raise
    return run


def _passages(origin: str, question_id: str, texts: list[str]) -> tuple[Passage, ...]:
    return tuple(Passage(f"{origin}#{question_id}:{i}", t, origin, origin, "", None)
                 for i, t in enumerate(texts, 1))


def import_seed(store: Store, settings: Settings, kb: str) -> Run:
    """The seed evaluation (`data/seed_evaluation.md`: 30 questions answered in both modes) as
    a pending imported run judged against `kb`: the first run a new user makes."""
    from core.questions import DEFAULT_FILE, parse_file

    return import_run(store, settings, parse_file(DEFAULT_FILE), DEFAULT_FILE.name, kb, set_name="seed-evaluation")
