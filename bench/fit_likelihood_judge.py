"""Fit the likelihood judge's verdict rule on the calibration set, with k-fold cross-validation.

    python bench/fit_likelihood_judge.py [--folds 5] [--write] [--judge PATH.gguf]

Scores every calibration answer (faithful, contradicting, subtly wrong) with the two
likelihood passes (figures cached under bench/results/ per file that runs), then prints the
held-out pairwise figures of the rule for several feature sets, each cross-validated the
same way: the answers of an item are scored only by a rule fitted without that item. The
feature set that ships was chosen before this ran (core.judges.fitting.FEATURES); the others
are printed to show what each figure adds. `--write` fits the shipped features on all items
and writes data/likelihood_judge.json with the per-fold rules and the held-out figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VERSION = "2"  # 2: refitted on the weights that run since the Q8_0 copy and flash attention (was: Q4_1)
ALTERNATIVES = {"pmi": ("pmi",), "logp_evidence": ("logp_evidence",), "disagreement": ("disagreement",),
                "logp_evidence+pmi": ("logp_evidence", "pmi"), "pmi+disagreement": ("pmi", "disagreement")}


def figures_table(model, items, cache_path: Path):
    """Statement figures of every calibration answer; the two passes' token log-probabilities
    are cached per model file, so trying other figures needs no model."""
    from core.judges.fitting import KINDS, answer_figures, passes
    from core.models import TokenLogprobs

    cached = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    t0, n = time.perf_counter(), 0
    for item in items:
        for kind in KINDS:
            key = f"{item.id}/{kind}"
            if key not in cached:
                cached[key] = [asdict(p) for p in passes(model, item.question, item.evidence, getattr(item, kind))]
                n += 1
        print(f"  {item.id}", file=sys.stderr, flush=True)
    if n:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cached))
        print(f"scored {n} answers in {time.perf_counter() - t0:.1f} s "
              f"({(time.perf_counter() - t0) / n:.2f} s an answer, two passes each)")
    return {i.id: {k: answer_figures(getattr(i, k), tuple(TokenLogprobs(**{f: tuple(v) if isinstance(v, list) else v
                                                                          for f, v in p.items()})
                                                         for p in cached[f"{i.id}/{k}"]))
                   for k in KINDS} for i in items}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--limit", type=int, default=None, help="first N calibration items only")
    p.add_argument("--judge", default="", help="a GGUF path (default: the embedded SmolLM2-135M)")
    p.add_argument("--write", action="store_true", help="write data/likelihood_judge.json")
    args = p.parse_args()

    from core.calibration import load_items, set_version
    from core.judges.fitting import FEATURES, cross_validate, fit
    from core.judges.likelihood import RULE_FILE
    from core.llm.embedded import EmbeddedLLM, gguf_digest

    model = EmbeddedLLM(args.judge)
    items = load_items()[: args.limit]
    table = figures_table(model, items, ROOT / "bench" / "results" / f"likelihood_passes_{gguf_digest(model.weights)[:12]}.json")
    print(f"{len(items)} items, {sum(len(v) for t in table.values() for v in t.values())} statements, "
          f"{args.folds}-fold cross-validation by item (held-out figures)")
    for name, feats in {"shipped " + "+".join(FEATURES): FEATURES, **ALTERNATIVES}.items():
        _, cv = cross_validate(table, args.folds, feats, VERSION)
        pairs = cv["pairs"]
        print(f"  {name:<45} faithful>subtly_wrong {pairs['subtly_unfaithful']['right']}/{pairs['subtly_unfaithful']['n']}"
              f"  faithful>contradicting {pairs['unfaithful']['right']}/{pairs['unfaithful']['n']}")
    if args.write:
        folds, cv = cross_validate(table, args.folds, FEATURES, VERSION)
        rule = fit(table, list(table), FEATURES, VERSION)
        data = {"about": "The likelihood judge's verdict rule (core/judges/likelihood.py), fitted by "
                         "bench/fit_likelihood_judge.py on data/judge_calibration.json. Cross-validation figures are "
                         "held-out: each item scored by the fold rule fitted without it.",
                "version": VERSION, "model": Path(model.path).name, "runs": Path(model.weights).name,
                "model_sha256": gguf_digest(model.weights),
                "calibration_set": set_version(), "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "rule": {k: v for k, v in asdict(rule).items() if k != "version"},
                "folds": [{"held_out": sorted(h), "rule": {k: v for k, v in asdict(r).items() if k != "version"}}
                          for h, r in folds],
                "cross_validation": {"folds": args.folds, "items": len(table), "pairs": cv["pairs"]}}
        RULE_FILE.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {RULE_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
