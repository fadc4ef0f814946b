"""The regression gate: does a candidate run score worse than a baseline run, by more than allowed?

For each gated metric, the two runs' answers in one mode (RAG by default) are paired on the
questions both runs asked (matched by their text, as the Runs page does) and scored in both;
the *drop* is the baseline's mean minus the candidate's, with the paired 95% bootstrap
interval of `core.stats` (a negative drop is an improvement). A check fails when the drop is
more than its `max_drop`; with `require_significant`, only when, in addition, the interval
excludes zero. A check that cannot be measured — the metric is missing from a run, the runs
share no question, or fewer than `min_pairs` questions are scored in both — fails with that
reason: a gate that cannot see must not pass.

Pure: two score frames and thresholds in, typed verdicts out (`decide`), and the JUnit XML
CI systems read (`junit_xml`). `python -m core gate` loads the runs, prints and exits.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from core.errors import RagEvalError
from core.models import METRICS, MODE_LABELS

if TYPE_CHECKING:  # the CLI reads this module's defaults at start: pandas and scipy load when gating
    import pandas as pd

    from core.stats import Comparison

MAX_DROP = 0.05  # the default allowance: as large as the tie margin, below which judges are not precise
MIN_PAIRS = 2  # the fewest questions scored in both runs that give an interval
# Means of scores like 0.8 and 0.75 differ by 0.05000000000000004: a drop equal to the allowance
# up to float noise is within it.
_EPS = 1e-9


@dataclass(frozen=True)
class Check:
    """One metric's verdict: whether the candidate dropped more than allowed, and why, in one line."""

    metric: str
    max_drop: float
    passed: bool
    measured: bool  # False when the drop could not be measured (the reason says why)
    reason: str
    drop: float | None = None  # baseline mean − candidate mean over the questions scored in both
    ci_low: float | None = None  # 95% paired bootstrap interval of the drop
    ci_high: float | None = None
    p_value: float | None = None  # Wilcoxon signed-rank, Holm-corrected across the gated metrics
    n_pairs: int = 0  # shared questions scored in both runs
    n_excluded: int = 0  # shared questions unscored in either run, left out

    @property
    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.metric}: {self.reason}"

    def to_json(self) -> dict:
        return {**asdict(self), "line": self.line}


@dataclass(frozen=True)
class GateResult:
    """Every metric's verdict for one candidate against one baseline, in one mode."""

    mode: str
    shared: int  # questions both runs asked
    require_significant: bool
    min_pairs: int
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> int:
        return sum(not c.passed for c in self.checks)

    def to_json(self) -> dict:
        return {"passed": self.passed, "mode": self.mode, "shared_questions": self.shared,
                "require_significant": self.require_significant, "min_pairs": self.min_pairs,
                "checks": [c.to_json() for c in self.checks]}


def decide(baseline: pd.DataFrame, candidate: pd.DataFrame, limits: dict[str, float | None] | None = None, *,
           mode: str = "rag", default_max_drop: float = MAX_DROP, require_significant: bool = False,
           min_pairs: int = MIN_PAIRS) -> GateResult:
    """The verdicts of gating `candidate` against `baseline` (tidy score frames, `core.stats`).

    `limits` maps each metric to gate to its max drop (None: `default_max_drop`); without it,
    every metric both runs have is gated at `default_max_drop`. Raises RagEvalError for what
    no verdict can come from: a mode a run lacks, no metric in common, a bad threshold."""
    from core import stats

    _check_settings(limits, default_max_drop, min_pairs)
    label = MODE_LABELS.get(mode, mode)
    for side, df in (("baseline", baseline), ("candidate", candidate)):
        if mode not in set(df["mode"]):
            raise RagEvalError(f"the {side} run has no {label} answers (its modes: {_listed(df['mode'])})")
    have = {side: _metrics(df, mode) for side, df in (("baseline", baseline), ("candidate", candidate))}
    if not limits:
        common = [m for m in _ordered(have["baseline"]) if m in have["candidate"]]
        if not common:
            raise RagEvalError(f"the runs share no metric (baseline: {_listed(have['baseline'])}; candidate: "
                               f"{_listed(have['candidate'])})")
        limits = dict.fromkeys(common)
    limits = {m: default_max_drop if d is None else d for m, d in limits.items()}
    measurable = [m for m in limits if m in have["baseline"] and m in have["candidate"]]
    comps, shared = stats.compare_runs(baseline, candidate, mode, measurable)
    checks = []
    for metric, max_drop in limits.items():
        missing = [side for side in ("baseline", "candidate") if metric not in have[side]]
        if missing:
            side = missing[0]
            checks.append(_unmeasured(metric, max_drop, f"the {side} run has no {metric} scores (its metrics: "
                                                        f"{_listed(have[side])})"))
        else:
            checks.append(verdict(comps[metric], max_drop, shared, require_significant, min_pairs))
    return GateResult(mode, shared, require_significant, min_pairs, tuple(checks))


def verdict(c: Comparison, max_drop: float = MAX_DROP, shared: int | None = None, require_significant: bool = False,
            min_pairs: int = MIN_PAIRS) -> Check:
    """One metric's verdict from its paired comparison (candidate − baseline) over `shared`
    questions both runs asked (default: those the comparison paired or left out); the experiments'
    leaderboard gates each configuration against its baseline with it."""
    shared = c.n_pairs + c.n_excluded if shared is None else shared
    if shared == 0:
        return _unmeasured(c.metric, max_drop, "the runs share no question (questions are matched by their text)")
    counts = f"{c.n_pairs} of {shared} shared questions scored in both runs"
    if c.n_pairs < min_pairs or c.ci_low is None:
        return _unmeasured(c.metric, max_drop, f"only {counts}; at least {min_pairs} needed",
                           n_pairs=c.n_pairs, n_excluded=c.n_excluded)
    drop, low, high = -c.mean_diff, -c.ci_high, -c.ci_low
    figures = f"drop {_signed(drop)} [{_signed(low)}, {_signed(high)}]"
    over = drop > max_drop + _EPS
    significant = low > 0  # the whole interval lies on the side of a drop
    if not over:
        reason = f"{figures} within the allowed {max_drop:.3f}"
    elif require_significant and not significant:
        reason = f"{figures} is more than the allowed {max_drop:.3f}, but its interval includes no drop"
    else:
        reason = f"{figures} is more than the allowed {max_drop:.3f}"
    passed = not over or (require_significant and not significant)
    return Check(c.metric, max_drop, passed, True, f"{reason}; {counts}", drop, low, high, c.p_holm,
                 c.n_pairs, c.n_excluded)


def _signed(x: float) -> str:
    """+0.021, -0.034; float noise around zero reads +0.000, not -0.000."""
    return f"{round(x, 3) + 0.0:+.3f}"


def _unmeasured(metric: str, max_drop: float, why: str, **counts) -> Check:
    return Check(metric, max_drop, False, False, f"not measured: {why}", **counts)


def _check_settings(limits, default_max_drop: float, min_pairs: int) -> None:
    for metric, d in [("every metric", default_max_drop), *(limits or {}).items()]:
        if d is not None and not (math.isfinite(d) and d >= 0):
            raise RagEvalError(f"max drop {d} for {metric}: use 0 or more (0.05 allows a drop of 0.05)")
    for metric in limits or {}:
        if metric not in METRICS:
            raise RagEvalError(f"metric '{metric}' is unknown: use {', '.join(METRICS)}")
    if min_pairs < MIN_PAIRS:
        raise RagEvalError(f"min pairs {min_pairs}: use {MIN_PAIRS} or more (an interval needs two)")


def _metrics(df: pd.DataFrame, mode: str) -> set[str]:
    return set(df.loc[df["mode"] == mode, "metric"])


def _ordered(metrics) -> list[str]:
    """The metrics in the project's order, then any others by name."""
    return sorted(metrics, key=lambda m: (METRICS.index(m) if m in METRICS else len(METRICS), m))


def _listed(values) -> str:
    names = _ordered(set(values))
    return ", ".join(names) if names else "none"


def junit_xml(result: GateResult, suite: str) -> bytes:
    """The verdicts as JUnit XML: one testsuite, one testcase per metric, a `<failure>` on
    each failed check (its message the reason) and the reason in `<system-out>` of each."""
    root = ET.Element("testsuites", name=suite, tests=str(len(result.checks)), failures=str(result.failures),
                      errors="0")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(result.checks)),
                       failures=str(result.failures), errors="0", skipped="0", time="0")
    props = ET.SubElement(ts, "properties")
    for name, value in (("mode", result.mode), ("shared_questions", result.shared),
                        ("require_significant", result.require_significant), ("min_pairs", result.min_pairs)):
        ET.SubElement(props, "property", name=name, value=str(value).lower())
    for c in result.checks:
        case = ET.SubElement(ts, "testcase", classname=f"gate.{result.mode}", name=c.metric, time="0")
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=c.reason, type="drop" if c.measured else "unmeasured")
            failure.text = c.line
        ET.SubElement(case, "system-out").text = c.line
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
