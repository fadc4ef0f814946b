"""Checking the judge: how well does it rank answers whose quality we know?

The calibration set (`data/judge_calibration.json`, written by us) holds, per question,
evidence passages and four answers: faithful, contradicting the evidence, subtly wrong
(one number, name or condition changed) and off-topic. The configured judge scores them
through the same `Scorer` a run uses, and a metric is worth trusting only if the judge
ranks the known-better answer higher in most pairs.

Three parts, kept apart so the arithmetic is exactly testable:
  run_check()      the LLM calls: scores every calibration answer, returns a JudgeCheck
  figures()        pure: a JudgeCheck -> per-metric accuracy, unscored share, verdict, sentence
  judge_trust()    what pages, reports and `show --json` put beside a score, for a run's judge
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from core.config import DATA_DIR, ModelConfig
from core.errors import RagEvalError
from core.judges import faithfulness_judge
from core.llm import identity as model_identity
from core.llm import label as model_label
from core.models import METRIC_LABELS, METRICS, Answer, JudgeCheck, Passage, Run

CALIBRATION_FILE = DATA_DIR / "judge_calibration.json"
# Bump when the judge's prompts change (here or in core/evaluate.py): old checks then no
# longer describe the judge and are not reused.
PROMPT_VERSION = "1"
TRUST_THRESHOLD = 0.8
MIN_PAIRS = 10  # below this, a high accuracy is luck as much as skill
# which answers each metric scores, and the pairs (better, worse) it must rank
SCORED = {"faithfulness": ("faithful", "unfaithful", "subtly_unfaithful"),
          "answer_relevancy": ("faithful", "off_topic")}
PAIRS = {"faithfulness": (("faithful", "unfaithful"), ("faithful", "subtly_unfaithful")),
         "answer_relevancy": (("faithful", "off_topic"),)}
PAIR_WORDS = {"unfaithful": "answers that contradict the evidence",
              "subtly_unfaithful": "subtly wrong answers (one number, name or condition changed)",
              "off_topic": "off-topic answers"}
BETTER_WORDS = {"faithfulness": "faithful answers", "answer_relevancy": "on-topic answers"}

Progress = Callable[[int, int, str], None]
HELD_OUT_NOTE = (" The likelihood judge's verdict rule was fitted on this calibration set, so each item was scored "
                 "by the rule fitted without it (held-out figures).")


@dataclass(frozen=True)
class CalibrationItem:
    """One question of the calibration set with its evidence and four answers of known quality."""

    id: str
    domain: str
    question: str
    evidence: tuple[str, ...]
    faithful: str
    unfaithful: str
    subtly_unfaithful: str
    off_topic: str


def load_items(path: Path = CALIBRATION_FILE) -> list[CalibrationItem]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = [CalibrationItem(**{**i, "evidence": tuple(i["evidence"])}) for i in data["items"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RagEvalError(f"{path}: not a readable calibration set ({type(e).__name__}: {e})") from None
    if not items:
        raise RagEvalError(f"{path}: the calibration set has no items")
    return items


def set_version(path: Path = CALIBRATION_FILE) -> str:
    """A short hash of the calibration file: an edited set makes old checks stale."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


# -- identity -----------------------------------------------------------------------------
def judge_identity(cfg: ModelConfig, strictness: int, prompts: str = "ragas", faithfulness: str = "ragas",
                   path: Path = CALIBRATION_FILE) -> dict:
    """Everything that changes what the judge says: for a GGUF its content hash (two files of
    one name are two judges); for the likelihood judge the version of its fitted rule."""
    ident = {"backend": cfg.backend, "label": model_label(cfg), "temperature": cfg.temperature,
             "prompt_version": f"{prompts}:{PROMPT_VERSION}", "ragas": version("ragas"),
             "relevancy_strictness": strictness, "calibration_set": set_version(path),
             "faithfulness_judge": faithfulness}
    if faithfulness == "likelihood":
        from core.judges.likelihood import rule_version

        ident["faithfulness_judge"] = f"likelihood:v{rule_version()}"
    return {**ident, **model_identity(cfg)}


def identity_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


# -- the LLM part ---------------------------------------------------------------------------
def run_check(scorer, cfg: ModelConfig, *, strictness: int, limit: int | None = None,
              progress: Progress | None = None, items: list[CalibrationItem] | None = None,
              cancelled: Callable[[], bool] = lambda: False) -> JudgeCheck:
    """Score the calibration answers with `scorer` (a core.evaluate.Scorer: the same code
    path as a run). One item's failure is an unscored score with its reason, never a stop;
    `cancelled()` between items stops the check (nothing is stored)."""
    items = load_items() if items is None else items
    if limit is not None:
        if limit < 1:
            raise RagEvalError(f"limit {limit}: use 1 or more calibration items")
        items = items[:limit]
    progress = progress or (lambda done, total, what: None)
    identity = judge_identity(cfg, strictness, scorer.prompts, scorer.faithfulness)
    # a likelihood rule was fitted on this set: score each item with the fold rule that never saw it
    scorer.held_out = True
    t0 = time.perf_counter()
    scores = []
    progress(0, len(items), "checking the judge")
    for n, item in enumerate(items, 1):
        if cancelled():
            raise RagEvalError(f"the judge check was cancelled after {n - 1} of {len(items)} items; nothing was stored")
        scores += asyncio.run(_score_item(scorer, item))
        progress(n, len(items), item.id)
    return JudgeCheck(identity_key(identity), identity, identity["label"],
                      datetime.now(timezone.utc).isoformat(timespec="microseconds"), len(items),
                      time.perf_counter() - t0, tuple(scores))


async def _score_item(scorer, item: CalibrationItem) -> list[dict]:
    evidence = tuple(Passage(f"{item.id}#{i}", text, "calibration", item.id, "", 1.0)
                     for i, text in enumerate(item.evidence))
    out = []
    for metric, kinds in SCORED.items():
        for kind in kinds:
            answer = Answer("calibration", item.id, kind, item.question, getattr(item, kind), evidence)
            s = await scorer.score(answer, evidence, metric)
            out.append({"item": item.id, "answer": kind, "metric": metric, "value": s.value,
                        "reason": s.reason or ""})
    return out


def check_judge(store, make_scorer: Callable[[], object], cfg: ModelConfig, *, strictness: int,
                limit: int | None = None, force: bool = False, progress: Progress | None = None,
                items: list[CalibrationItem] | None = None, faithfulness: str = "ragas",
                claim=None) -> tuple[JudgeCheck, bool]:
    """The stored check of this judge when it covers `limit` items (or the whole set),
    else a new one, stored. `make_scorer` is called only when a check must run, so a
    reused check loads no model. Returns (check, reused)."""
    if limit is not None and limit < 1:
        raise RagEvalError(f"limit {limit}: use 1 or more calibration items")
    items = load_items() if items is None else items
    total = len(items)
    if not force:
        found = latest_check(store, judge_identity(cfg, strictness, faithfulness=faithfulness))
        if found is not None and found.items >= min(limit or total, total):
            return found, True
    from core import jobs

    # one check of a judge at a time (the job `judge_check:<identity key>`, claimed already by a
    # launched worker): a second would only repeat the first's model calls
    claim = claim or jobs.start(store, "judge_check", check_key(cfg, strictness, faithfulness), ("judge", "check"))
    with claim:
        check = run_check(make_scorer(), cfg, strictness=strictness, limit=limit, progress=claim.follow(progress),
                          items=items,
                          cancelled=claim.cancelled)
        store.add_judge_check(check)
        claim.finish("done")
    return check, False


def check_key(cfg: ModelConfig, strictness: int, faithfulness: str) -> str:
    """The target of a judge's check job: its identity key."""
    return identity_key(judge_identity(cfg, strictness, faithfulness=faithfulness))


def launch_check(store, settings, limit: int | None = None):
    """Check the settings' judge in a background worker (`python -m core judge check --force`),
    refused (JobBusy) while a check of the same judge is pending or running; returns the job."""
    from core import jobs
    from core.config import PROJECT_ROOT

    faithfulness = faithfulness_judge(settings.faithfulness_judge, settings.judge_model)
    command = ("judge", "check", "--force") + (("--limit", str(limit)) if limit else ())
    return jobs.launch(store, settings.home, "judge_check",
                       check_key(settings.judge_model, settings.relevancy_strictness, faithfulness), command,
                       PROJECT_ROOT)


def check_configured_judge(store, settings, embedder: Callable[[], object], *, cfg: ModelConfig | None = None,
                           limit: int | None = None, force: bool = False,
                           progress: Progress | None = None, claim=None) -> tuple[JudgeCheck, bool]:
    """`check_judge` for the settings' judge (or `cfg`), as the CLI and the Settings page run it.
    `embedder` is called for the encoder only when a check runs. No judge cache: a check
    measures the judge, so its seconds must be the model's own."""
    cfg = cfg or settings.judge_model
    faithfulness = faithfulness_judge(settings.faithfulness_judge, cfg)

    def make_scorer():
        from core.evaluate import Scorer  # imports RAGAS: only when a check really runs
        from core.llm import get_llm

        return Scorer(get_llm(cfg, settings.threads), cfg, embedder(), None, settings.relevancy_strictness,
                      faithfulness=faithfulness)

    return check_judge(store, make_scorer, cfg, strictness=settings.relevancy_strictness, limit=limit,
                       force=force, progress=progress, faithfulness=faithfulness, claim=claim)


def latest_check(store, identity: dict) -> JudgeCheck | None:
    """The most complete, then newest, stored check of exactly this judge."""
    checks = store.judge_checks(judge_key=identity_key(identity))
    return max(checks, key=lambda c: (c.items, c.created_at), default=None)


# -- the pure part ------------------------------------------------------------------------
def figures(check: JudgeCheck | None) -> dict:
    """Per metric: pairwise accuracy, pairs right / total (by kind of pair), ties and pairs
    lost to unscored answers, the unscored share and its reasons, seconds per item, the
    trust verdict (True, False; None when never checked) and a sentence for stakeholders.
    A pair is right only when both answers were scored and the better one scored higher."""
    if check is None:
        return {m: {"accuracy": None, "right": 0, "n": 0, "unscored": 0, "trusted": None, "checked": False,
                    "sentence": f"{METRIC_LABELS[m]}: this judge was never checked on the calibration set, "
                                "so its scores are not known to be trustworthy."} for m in SCORED}
    value = {(s["item"], s["answer"], s["metric"]): s for s in check.scores}
    items = sorted({s["item"] for s in check.scores})
    out = {}
    for metric, pairs in PAIRS.items():
        by_pair, ties, lost = {}, 0, 0
        for better, worse in pairs:
            right = 0
            for item in items:
                a, b = value.get((item, better, metric)), value.get((item, worse, metric))
                if a is None or b is None or a["value"] is None or b["value"] is None:
                    lost += 1
                elif a["value"] > b["value"]:
                    right += 1
                elif a["value"] == b["value"]:
                    ties += 1
            by_pair[worse] = {"right": right, "n": len(items)}
        mine = [s for s in check.scores if s["metric"] == metric]
        unscored = [s for s in mine if s["value"] is None]
        right, n = sum(p["right"] for p in by_pair.values()), sum(p["n"] for p in by_pair.values())
        accuracy = right / n if n else None
        trusted = accuracy is not None and accuracy >= TRUST_THRESHOLD and n >= MIN_PAIRS
        out[metric] = {
            "accuracy": accuracy, "right": right, "n": n, "pairs": by_pair, "ties": ties, "pairs_unscored": lost,
            "unscored": len(unscored), "scored_answers": len(mine),
            "unscored_share": len(unscored) / len(mine) if mine else None,
            "unscored_reasons": dict(Counter(s["reason"] for s in unscored).most_common(5)),
            "seconds_per_item": check.seconds / check.items if check.items else None,
            "items": check.items, "judge": check.label, "checked_at": check.created_at,
            "trusted": trusted, "checked": True, "sentence": _sentence(metric, by_pair, right, n, trusted, ties, lost)
            + (HELD_OUT_NOTE if metric == "faithfulness" and
               str(check.identity.get("faithfulness_judge", "")).startswith("likelihood") else ""),
        }
    return out


def fit_figures(cfg: ModelConfig) -> dict | None:
    """Faithfulness figures of the likelihood judge before anyone ran a check: the held-out
    figures of its rule's cross-validation, when the rule was fitted for this very model file
    on this very calibration set (else None)."""
    from core.judges.likelihood import load_rules
    from core.llm.embedded import default_gguf, gguf_digest, runtime_gguf

    rules = load_rules()
    gguf = Path(cfg.model or default_gguf())
    if (cfg.backend != "embedded" or not gguf.is_file() or rules.calibration_set != set_version()
            or rules.model_sha256 != gguf_digest(runtime_gguf(str(gguf)))):
        return None
    by_pair = {w: dict(rules.cross_validation["pairs"][w]) for w, _ in [("unfaithful", 0), ("subtly_unfaithful", 0)]}
    right, n = sum(p["right"] for p in by_pair.values()), sum(p["n"] for p in by_pair.values())
    trusted = n >= MIN_PAIRS and right / n >= TRUST_THRESHOLD
    items = rules.cross_validation.get("items", 0)
    return {"accuracy": right / n if n else None, "right": right, "n": n, "pairs": by_pair, "ties": 0,
            "pairs_unscored": 0, "unscored": 0, "scored_answers": 3 * items, "unscored_share": 0.0,
            "unscored_reasons": {}, "seconds_per_item": None, "items": items, "judge": model_label(cfg),
            "checked_at": rules.fitted_at, "trusted": trusted, "checked": True, "source": "fit",
            "sentence": _sentence("faithfulness", by_pair, right, n, trusted, 0, 0) + HELD_OUT_NOTE
            + " These figures come from the rule's cross-validation when it was fitted for this model "
              "(data/likelihood_judge.json); “Check the judge” checks the judge as configured."}


def _sentence(metric, by_pair, right, n, trusted, ties, lost) -> str:
    parts = [f"{p['right']}/{p['n']} pairs against {PAIR_WORDS[worse]}" for worse, p in by_pair.items()]
    said = (f"{METRIC_LABELS[metric]}: the judge ranked {BETTER_WORDS[metric]} first in {right}/{n} calibration "
            f"pairs ({' and '.join(parts)})" if len(parts) > 1 else
            f"{METRIC_LABELS[metric]}: the judge ranked {BETTER_WORDS[metric]} first in {right}/{n} calibration "
            f"pairs against {PAIR_WORDS[next(iter(by_pair))]}")
    if ties:
        said += f"; {ties} tied"
    if lost:
        said += f"; {lost} could not be compared because an answer went unscored"
    if trusted:
        return said + f". At or above the {TRUST_THRESHOLD:.0%} bar: its scores can be relied on."
    if n < MIN_PAIRS:
        return said + f". Too few pairs (fewer than {MIN_PAIRS}) to trust it: run the full check."
    return said + (f". Below the {TRUST_THRESHOLD:.0%} bar: treat these scores as not trustworthy, "
                   "they do not reliably tell good answers from bad ones.")


# -- what goes beside a score ---------------------------------------------------------------
def judge_trust(store, judge: Run | ModelConfig | str, strictness: int = 3, faithfulness: str = "ragas") -> dict:
    """Per metric, the figures of the calibration check of this judge (a run, a judge
    config, or a judge label as runs record it), with `trusted` None when never checked.
    A label matches the newest complete check made with today's prompts and set."""
    if isinstance(judge, Run):
        cfg = judge.config.get("judge_model")
        strictness = judge.config.get("relevancy_strictness", strictness)
        faithfulness = judge.config.get("faithfulness_judge", "ragas")
        judge = ModelConfig(**cfg) if cfg else judge.judge_model
    if isinstance(judge, ModelConfig):
        try:
            faithfulness = faithfulness_judge(faithfulness, judge)
            out = figures(latest_check(store, judge_identity(judge, strictness, faithfulness=faithfulness)))
            if faithfulness == "likelihood" and not out["faithfulness"]["checked"]:
                out["faithfulness"] = fit_figures(judge) or out["faithfulness"]
            return with_uncalibrated(out)
        except (OSError, RagEvalError):  # its GGUF (or the embedded package) is gone: not checked as it is
            return with_uncalibrated(figures(None))
    current = {"prompt_version": f"ragas:{PROMPT_VERSION}", "calibration_set": set_version()}
    checks = [c for c in store.judge_checks(label=judge)
              if all(c.identity.get(k) == v for k, v in current.items())]
    return with_uncalibrated(figures(max(checks, key=lambda c: (c.items, c.created_at), default=None)))


def with_uncalibrated(out: dict) -> dict:
    """The trust figures with, for each metric the calibration set does not cover (the retrieval
    and reference metrics), an entry saying so: no judge's scores on them are known to be right."""
    return {**out, **{m: {"accuracy": None, "right": 0, "n": 0, "unscored": 0, "trusted": None, "checked": False,
                          "calibrated": False,
                          "sentence": f"{METRIC_LABELS[m]}: uncalibrated. The calibration set "
                                      "(data/judge_calibration.json) covers faithfulness and answer relevancy only, "
                                      "so no judge's scores on this metric are known to be trustworthy."}
                      for m in METRICS if m not in SCORED}}
