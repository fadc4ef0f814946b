"""Judge calibration benchmark: how well each judge ranks answers of known quality.

    python bench/judge_calibration.py [--limit 12] [--judge default] [--judge /path/model.gguf]
                                      [--temperature 0] [--strictness 3] [--prompts ragas|small]
                                      [--faithfulness auto|likelihood|ragas]

For each judge (default: the embedded SmolLM2-135M; `--judge` may repeat, a GGUF path, or
`openai:MODEL@BASE_URL`) scores the first N calibration items through the same Scorer a run
uses, with no cache, and prints one line:

    <judge> faithful>unfaithful=x/n subtle=x/n relevancy=x/n unscored=x/n s/item=…

`unscored` counts answers over both metrics (5 a item); s/item is wall-clock time per item.
The likelihood judge (the default for an embedded judge) scores each item with the rule
fitted without it (held-out figures, as `judge check` does).
Nothing is stored: this measures, `python -m core judge check` records.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def judge_config(spec: str, temperature: float):
    from core.config import ModelConfig

    if spec == "default":
        return ModelConfig(temperature=temperature)
    if spec.startswith("openai:"):
        model, _, base_url = spec[len("openai:"):].partition("@")
        return ModelConfig(backend="openai", model=model, base_url=base_url, temperature=temperature)
    return ModelConfig(model=spec, temperature=temperature)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=12, help="calibration items per judge (default 12)")
    p.add_argument("--judge", action="append", help="'default', a GGUF path, or openai:MODEL@BASE_URL")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--strictness", type=int, default=3, help="questions generated per answer for relevancy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompts", choices=("ragas", "small"), default="ragas",
                   help="faithfulness prompts: RAGAS's stock ones or core/judge_prompts.py's")
    p.add_argument("--faithfulness", choices=("auto", "likelihood", "ragas"), default="auto",
                   help="faithfulness judge (auto: likelihood for an embedded judge)")
    args = p.parse_args()

    from core.calibration import figures, run_check
    from core.embeddings import get_embedder
    from core.evaluate import Scorer
    from core.judges import faithfulness_judge
    from core.llm import get_llm

    embedder = get_embedder("")
    for spec in args.judge or ["default"]:
        cfg = judge_config(spec, args.temperature)
        faithfulness = faithfulness_judge(args.faithfulness, cfg)
        scorer = Scorer(get_llm(cfg, args.threads), cfg, embedder, None, args.strictness, args.prompts, faithfulness)
        check = run_check(scorer, cfg, strictness=args.strictness, limit=args.limit,
                          progress=lambda done, total, what: print(f"  {done}/{total} {what}", file=sys.stderr,
                                                                   flush=True))
        f = figures(check)
        faith, rel = f["faithfulness"]["pairs"], f["answer_relevancy"]["pairs"]
        unscored = sum(m["unscored"] for m in f.values())
        answers = sum(m["scored_answers"] for m in f.values())
        print(f"{check.label} faithfulness={faithfulness} prompts={args.prompts} T={args.temperature} "
              f"strictness={args.strictness} "
              f"faithful>unfaithful={faith['unfaithful']['right']}/{faith['unfaithful']['n']} "
              f"subtle={faith['subtly_unfaithful']['right']}/{faith['subtly_unfaithful']['n']} "
              f"relevancy={rel['off_topic']['right']}/{rel['off_topic']['n']} "
              f"unscored={unscored}/{answers} s/item={check.seconds / check.items:.1f}", flush=True)
        for metric, m in f.items():  # why answers went unscored, on stderr beside the progress
            for reason, n in m["unscored_reasons"].items():
                print(f"  unscored {metric} {n}x: {reason}", file=sys.stderr)


if __name__ == "__main__":
    main()
