"""Seconds per judged answer for each faithfulness judge, and the seed evaluation end to end.

    python bench/judge_speed.py [--answers 12] [--seed] [--home DIR]

Part 1 judges the first N calibration answers (faithful / contradicting / subtly wrong, in
turn) for faithfulness with the likelihood judge and with RAGAS's LLM prompts, both on the
embedded SmolLM2-135M, no cache, and prints seconds per judged answer and the ratio; then
answer relevancy (RAGAS, one model call for its repeats at temperature 0).
Part 2 (--seed) imports data/seed_evaluation.md (30 questions x 2 answers) into a run
against the demo knowledge base of --home (built first if missing: downloads ~5 MB from
PyPI) and scores both metrics, as Home's "Score the seed evaluation" does, printing the
wall time. The judge cache is cleared first, so nothing comes from a previous run.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_answer(scorer, answers, metric: str) -> float:
    t0 = time.perf_counter()
    unscored = 0
    for answer, evidence in answers:
        unscored += asyncio.run(scorer.score(answer, evidence, metric)).value is None
    seconds = (time.perf_counter() - t0) / len(answers)
    print(f"  {metric:<17} {scorer.faithfulness if metric == 'faithfulness' else 'ragas':<10} "
          f"{seconds:6.2f} s an answer  ({len(answers)} answers, {unscored} unscored)", flush=True)
    return seconds


def judges(n: int) -> None:
    from core.calibration import load_items
    from core.config import ModelConfig, load_settings
    from core.embeddings import get_embedder
    from core.evaluate import Scorer
    from core.llm import get_llm
    from core.models import Answer, Passage

    cfg, embedder, threads = ModelConfig(), get_embedder(""), load_settings().threads
    llm = get_llm(cfg, threads)  # as a run builds it (RAGEVAL_THREADS)
    kinds = ("faithful", "unfaithful", "subtly_unfaithful")
    answers = []
    for i, item in enumerate(load_items()):
        if len(answers) == n:
            break
        evidence = tuple(Passage(f"{item.id}#{j}", t, "c", item.id, "", 1.0) for j, t in enumerate(item.evidence))
        kind = kinds[i % 3]
        answers.append((Answer("bench", item.id, kind, item.question, getattr(item, kind), evidence), evidence))
    print(f"SmolLM2-135M ({Path(llm.weights).name}) on {os.cpu_count()} cores, {threads} llama.cpp threads, "
          f"{len(answers)} calibration answers, no cache")
    like = per_answer(Scorer(llm, cfg, embedder, None, 3, faithfulness="likelihood"), answers, "faithfulness")
    ragas = per_answer(Scorer(llm, cfg, embedder, None, 3, faithfulness="ragas"), answers, "faithfulness")
    per_answer(Scorer(llm, cfg, embedder, None, 3), answers, "answer_relevancy")
    print(f"  faithfulness: likelihood judge {ragas / like:.1f}x faster than RAGAS's prompts")


def seed(home: Path) -> None:
    os.environ["RAGEVAL_HOME"] = str(home)
    from core.cli import main
    from core.config import load_settings
    from core.sources import DEMO_KB
    from core.workspace import open_workspace

    settings = load_settings()
    if DEMO_KB not in open_workspace(settings).kb_names():
        print("building the demo knowledge base first (downloads ~5 MB from PyPI)", flush=True)
        assert main(["ingest", "--demo"]) == 0
    shutil.rmtree(settings.cache_dir / "judge", ignore_errors=True)
    t0 = time.perf_counter()
    code = main(["runs", "import", str(ROOT / "data" / "seed_evaluation.md"), "--kb", DEMO_KB])
    print(f"seed evaluation (30 questions x 2 answers, faithfulness + answer relevancy) scored in "
          f"{time.perf_counter() - t0:.0f} s, exit {code}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--answers", type=int, default=12)
    p.add_argument("--seed", action="store_true", help="also score the seed evaluation end to end")
    p.add_argument("--home", type=Path, default=ROOT / "bench" / "results" / "seedhome")
    args = p.parse_args()
    judges(args.answers)
    if args.seed:
        seed(args.home)


if __name__ == "__main__":
    main()
