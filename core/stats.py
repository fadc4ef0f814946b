"""Statistics over a run's scores: pure functions, data in, numbers out.

Everything starts from the tidy frame (`score_frame`): one row per (question, mode, metric)
with columns question_id, question, category, mode, metric, value (NaN when unscored),
reason. A comparison pairs two sides (two modes of one run, or one mode of two runs) on
the questions scored on both; a question unscored on either side is left out and counted.
"""
from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri, stdtrit

from core.models import METRIC_LABELS, RETRIEVAL_METRICS

RESAMPLES = 10_000
SEED = 20261124  # fixed, so the same scores always give the same interval
TIE_MARGIN = 0.05  # a difference this small or smaller counts as a tie: judges are not that precise
ALPHA = 0.05


def score_frame(summary: dict) -> pd.DataFrame:
    """The tidy frame of a run summary (see `core.runs.summary`)."""
    rows = []
    for item in summary["items"]:
        for mode in summary["modes"]:
            a = item.get(mode)
            for metric in summary["modes"][mode]:
                s = (a or {}).get("scores", {}).get(metric) or {"value": None, "reason": "not answered yet"}
                rows.append({"question_id": item["question_id"], "question": item["question"],
                             "category": item.get("category") or "", "mode": mode, "metric": metric,
                             "value": math.nan if s["value"] is None else s["value"],
                             "reason": s.get("reason") or ""})
    return pd.DataFrame(rows, columns=["question_id", "question", "category", "mode", "metric", "value", "reason"])


def mean_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean per mode and metric over scored items, with a 95% t-interval of the mean."""
    out = []
    for (mode, metric), g in df.groupby(["mode", "metric"], sort=False):
        v = g["value"].dropna()
        n = len(v)
        mean = v.mean() if n else math.nan
        half = stdtrit(n - 1, 0.975) * v.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        out.append({"mode": mode, "metric": metric, "mean": mean, "ci_low": mean - half, "ci_high": mean + half,
                    "n_scored": n, "n_unscored": int(g["value"].isna().sum())})
    return pd.DataFrame(out, columns=["mode", "metric", "mean", "ci_low", "ci_high", "n_scored", "n_unscored"])


def paired(df: pd.DataFrame, metric: str, a: str = "llm_only", b: str = "rag") -> pd.DataFrame:
    """One row per question: question_id, question, category, the two sides' scores and
    delta (b − a); NaN where a side is unscored. Sorted by delta, unpaired questions first."""
    g = df[df.metric == metric]
    first = g.drop_duplicates("question_id").set_index("question_id")
    wide = g.pivot(index="question_id", columns="mode", values="value").reindex(index=first.index, columns=[a, b])
    wide.insert(0, "question", first["question"])
    wide.insert(1, "category", first["category"])
    wide = wide.reset_index()
    wide.columns.name = None
    wide["delta"] = wide[b] - wide[a]
    return wide.sort_values("delta", na_position="first", kind="stable").reset_index(drop=True)


def hurt(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The questions where RAG scored lower than LLM only, worst first."""
    p = paired(df, metric)
    return p[p["delta"] < 0].sort_values("delta").reset_index(drop=True)


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of side b against side a on one metric (differences are b − a)."""

    metric: str
    n_pairs: int  # questions scored on both sides
    n_excluded: int  # questions unscored on either side, left out
    mean_diff: float | None
    ci_low: float | None  # 95% paired bootstrap interval of the mean difference
    ci_high: float | None
    p_value: float | None  # Wilcoxon signed-rank, two-sided
    p_holm: float | None  # p_value after Holm's correction across the metrics compared together
    effect_size: float | None  # matched-pairs rank-biserial correlation, -1..1
    wins: int  # b better by more than the tie margin
    ties: int
    losses: int
    tie_margin: float = TIE_MARGIN

    def to_json(self) -> dict:
        return asdict(self)


class PairedCache(Protocol):
    """Where what was drawn from paired differences is kept, by `paired_key` (`Store.intervals`):
    per key (ci_low, ci_high, p_value, effect_size), for differences of two pairs or more."""

    def get(self, keys: list[str]) -> dict[str, tuple[float, float, float, float]]: ...

    def put(self, drawn: dict[str, tuple[float, float, float, float]]) -> None: ...


def paired_key(d: np.ndarray, resamples: int, seed: int) -> str:
    """What the interval and the test of `d` depend on: the differences, exactly, and the draws."""
    h = hashlib.sha256(np.ascontiguousarray(d, dtype=np.float64).tobytes())
    h.update(f"|{resamples}|{seed}|BCa".encode())
    return h.hexdigest()


def compare(a, b, metric: str, *, tie_margin: float = TIE_MARGIN, resamples: int = RESAMPLES,
            seed: int = SEED) -> Comparison:
    """Compare aligned scores `a` and `b` (one entry per question; NaN or None = unscored)."""
    return compare_many([(a, b, metric)], tie_margin=tie_margin, resamples=resamples, seed=seed)[0]


def compare_many(jobs: list[tuple], *, tie_margin: float = TIE_MARGIN, resamples: int = RESAMPLES,
                 seed: int = SEED, cache: PairedCache | None = None) -> list[Comparison]:
    """`compare(a, b, metric)` for each job, the same numbers as one at a time: with one fixed
    seed, jobs with as many pairs resample the same questions, so those indices are drawn once.
    What `cache` holds for a job's differences is not drawn again; what is drawn is put there."""
    diffs = [_differences(a, b) for a, b, _ in jobs]
    drawn = _drawn([d for d, _ in diffs], resamples, seed, cache)
    return [_comparison(metric, d, excluded, found, tie_margin) for (_, _, metric), (d, excluded), found
            in zip(jobs, diffs, drawn)]


def _drawn(ds: list[np.ndarray], resamples: int, seed: int, cache: PairedCache | None) -> list[tuple]:
    """Per `d`: its interval and its test (ci_low, ci_high, p_value, effect_size), read from
    `cache` where it holds them. A run's readers find them there, drawn once by its worker, and
    then neither resample nor import `scipy.stats` (0.6 s of every command's start)."""
    keys = {i: paired_key(d, resamples, seed) for i, d in enumerate(ds) if len(d) >= 2} if cache is not None else {}
    known = cache.get(list(keys.values())) if keys else {}
    out = [known.get(keys.get(i)) for i in range(len(ds))]
    todo = [i for i, found in enumerate(out) if found is None and len(ds[i])]  # nothing to draw from no pairs
    for i, ci in zip(todo, _bootstrap_cis([ds[i] for i in todo], resamples, seed)):
        out[i] = (*ci, *_signed_rank(ds[i]))
    if cache is not None and (new := {keys[i]: out[i] for i in todo if i in keys}):
        cache.put(new)
    return out


def _differences(a, b) -> tuple[np.ndarray, int]:
    """b − a over the entries scored on both sides, and how many entries were left out."""
    a = np.asarray([math.nan if v is None else v for v in a], dtype=float)
    b = np.asarray([math.nan if v is None else v for v in b], dtype=float)
    both = ~(np.isnan(a) | np.isnan(b))
    return b[both] - a[both], int(len(a) - both.sum())


def _comparison(metric: str, d: np.ndarray, excluded: int, drawn: tuple, tie_margin: float) -> Comparison:
    n = len(d)
    wins, losses = int((d > tie_margin).sum()), int((d < -tie_margin).sum())
    base = dict(metric=metric, n_pairs=n, n_excluded=excluded, wins=wins, ties=n - wins - losses,
                losses=losses, tie_margin=tie_margin)
    if n == 0:
        return Comparison(mean_diff=None, ci_low=None, ci_high=None, p_value=None, p_holm=None, effect_size=None,
                          **base)
    low, high, p, r = drawn
    return Comparison(mean_diff=float(d.mean()), ci_low=low, ci_high=high, p_value=p, p_holm=p, effect_size=r,
                      **base)


def _bootstrap_ci(d: np.ndarray, resamples: int, seed: int) -> tuple[float | None, float | None]:
    return _bootstrap_cis([d], resamples, seed)[0]


def _bootstrap_cis(ds: list[np.ndarray], resamples: int, seed: int) -> list[tuple[float | None, float | None]]:
    """The 95% BCa interval of the mean of each `d`, as `scipy.stats.bootstrap` gives it with this
    seed. Every `d` of one length gets the same resamples (scipy, seeded alike, would draw them for
    each), so each length's indices are drawn once; lengths run on every core at once (numpy
    releases the GIL while it draws and gathers). Drawing is nearly all the time (10,000 resamples
    of 10,000 pairs: 10^8 indices, ~0.6 s)."""
    out: list = [(None, None)] * len(ds)
    by_length: dict[int, list[int]] = {}
    for i, d in enumerate(ds):
        if len(d) < 2:
            continue
        if np.ptp(d) == 0:  # every pair differs by the same amount: no spread to resample
            out[i] = (float(d[0]), float(d[0]))
        else:
            by_length.setdefault(len(d), []).append(i)

    def intervals(members: list[int]) -> None:
        means = _resampled_means(np.stack([ds[i] for i in members]), resamples, np.random.default_rng(seed))
        for i, m in zip(members, means):
            low, high = _bca(ds[i], m)
            if not (math.isfinite(low) and math.isfinite(high)):  # BCa degenerates on near-constant data
                low, high = np.percentile(m, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
            out[i] = (float(low), float(high))

    groups = list(by_length.values())
    if len(groups) < 2:
        for g in groups:
            intervals(g)
    else:
        with ThreadPoolExecutor(max_workers=min(len(groups), os.cpu_count() or 1)) as pool:
            list(pool.map(intervals, groups))
    return out


_BATCH_VALUES = 1_000_000  # resampled values at once: 8 MB of indices stay in cache (4,000,000 was 1.4x slower)


def _resampled_means(ds: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """For each row of `ds` (k × n), the means of the same `resamples` bootstrap resamples,
    drawn in batches: a (k, resamples) array.

    The indices come from the generator in the same order and shape as
    `scipy.stats.bootstrap` draws them (`rng.integers(0, n, (batch, n))`), so the
    resamples, and the interval, are scipy's; only the memory is bounded: scipy held
    every resample at once (10,000 × 10,000 pairs ≈ 3 GB with its jackknife). Drawing is
    most of the work: a second thread gathers one batch's means while the next is drawn."""
    k, n = ds.shape
    batch = max(1, _BATCH_VALUES // n)
    out = np.empty((k, resamples))

    def gather(start: int, idx: np.ndarray) -> None:
        for row, d in zip(out, ds):
            row[start:start + len(idx)] = d[idx].mean(axis=-1)

    with ThreadPoolExecutor(max_workers=1) as gatherer:
        pending = None
        for start in range(0, resamples, batch):
            idx = rng.integers(0, n, (min(batch, resamples - start), n))
            if pending is not None:
                pending.result()
            pending = gatherer.submit(gather, start, idx)
        pending.result()
    return out


def _bca(d: np.ndarray, means: np.ndarray) -> tuple[float, float]:
    """The bias-corrected and accelerated interval of the mean (as scipy computes it), with
    the jackknife in closed form: leaving out pair i, the mean is (sum - d_i) / (n - 1)."""
    n, theta = len(d), d.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = ndtri(((means < theta).sum() + (means <= theta).sum()) / (2 * len(means)))
        jack = (d.sum() - d) / (n - 1)
        dev = jack.mean() - jack
        accel = (dev ** 3).sum() / (6 * ((dev ** 2).sum()) ** 1.5)
        z = ndtri(np.array([ALPHA / 2, 1 - ALPHA / 2]))
        alphas = ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    if not np.isfinite(alphas).all():
        return math.nan, math.nan
    low, high = np.percentile(means, 100 * alphas)
    return float(low), float(high)


def _signed_rank(d: np.ndarray) -> tuple[float | None, float | None]:
    """Wilcoxon signed-rank p-value and the matched-pairs rank-biserial correlation."""
    nonzero = d[d != 0]
    if len(nonzero) == 0:
        return 1.0, 0.0  # no question changed at all
    from scipy import stats  # 0.6 s to import: only for differences not tested before (`_drawn`)

    ranks = stats.rankdata(np.abs(nonzero))
    r = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
    if len(d) < 2:
        return None, r
    return float(stats.wilcoxon(d).pvalue), r


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of p-values (None stays None)."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def with_holm(comparisons: dict[str, Comparison]) -> dict[str, Comparison]:
    """The comparisons with p_holm adjusted across all of them."""
    adjusted = holm([c.p_value for c in comparisons.values()])
    return {k: Comparison(**{**asdict(c), "p_holm": p}) for (k, c), p in zip(comparisons.items(), adjusted)}


def compare_modes(df: pd.DataFrame, metrics, a: str = "llm_only", b: str = "rag",
                  cache: PairedCache | None = None) -> dict[str, Comparison]:
    """Per metric, mode b against mode a over the questions scored in both, Holm-corrected."""
    metrics, jobs = list(metrics), []
    for metric in metrics:
        p = paired(df, metric, a, b)
        jobs.append((p[a], p[b], metric))
    return with_holm(dict(zip(metrics, compare_many(jobs, cache=cache))))


def by_category(df: pd.DataFrame, metrics, a: str = "llm_only", b: str = "rag",
                cache: PairedCache | None = None) -> pd.DataFrame:
    """The same comparison within each category (Holm across every category and metric)."""
    rows, jobs = [], []
    for metric in metrics:
        p = paired(df, metric, a, b)
        for cat, g in p.groupby("category", sort=True):
            jobs.append((g[a], g[b], metric))
            rows.append({"category": cat or "(none)", "metric": metric})
    comps = compare_many(jobs, cache=cache)
    adjusted = holm([c.p_value for c in comps])
    return pd.DataFrame([{**r, **asdict(c), "p_holm": p} for r, c, p in zip(rows, comps, adjusted)])


def _matched(df: pd.DataFrame, mode: str) -> pd.DataFrame:
    """One mode's rows keyed by the question's text (case and spacing ignored): how two runs'
    questions are matched."""
    g = df[df["mode"] == mode].assign(key=lambda x: x["question"].str.split().str.join(" ").str.lower())
    return g.drop_duplicates(["key", "metric"])


def compare_runs(df_a: pd.DataFrame, df_b: pd.DataFrame, mode: str, metrics,
                 cache: PairedCache | None = None) -> tuple[dict[str, Comparison], int]:
    """One mode of run b against the same mode of run a, on the questions both runs asked
    (matched by their text); also returns how many questions they share."""
    a, b = _matched(df_a, mode), _matched(df_b, mode)
    shared = sorted(set(a["key"]) & set(b["key"]))
    metrics = list(metrics)
    jobs = [(a[a.metric == m].set_index("key")["value"].reindex(shared),
             b[b.metric == m].set_index("key")["value"].reindex(shared), m) for m in metrics]
    return with_holm(dict(zip(metrics, compare_many(jobs, cache=cache)))), len(shared)


def paired_questions(df_a: pd.DataFrame, df_b: pd.DataFrame, mode: str, metric: str) -> pd.DataFrame:
    """Per question both runs asked: its text, run A's and run B's score and the change."""
    a, b = (_matched(df, mode) for df in (df_a, df_b))
    a, b = (d[d["metric"] == metric].set_index("key") for d in (a, b))
    table = a[["question", "value"]].rename(columns={"value": "run A"}).join(
        b[["value"]].rename(columns={"value": "run B"}), how="inner")
    table["change"] = table["run B"] - table["run A"]
    return table.reset_index(drop=True)


def headline(c: Comparison, subject: str = "RAG", against: str = "") -> str:
    """The comparison as one plain sentence, e.g. "RAG raised faithfulness by 0.21
    [0.12, 0.30], p = 0.001, on 28 of 30 scored questions (…)"."""
    name = METRIC_LABELS.get(c.metric, c.metric).lower()
    total = c.n_pairs + c.n_excluded
    versus = f" {against}" if against else ""
    if c.n_pairs < 2 or c.mean_diff is None or c.ci_low is None:
        return (f"Too few questions were scored on both sides to compare {name} "
                f"({c.n_pairs:,} of {total:,}).")
    counts = (f"on {c.n_pairs:,} of {total:,} questions scored on both sides ({c.wins:,} better, {c.ties:,} within "
              f"±{c.tie_margin:.2f}, {c.losses:,} worse)")
    if c.ci_low > 0 or c.ci_high < 0:
        up = c.mean_diff > 0
        low, high = (c.ci_low, c.ci_high) if up else (-c.ci_high, -c.ci_low)
        return (f"{subject} {'raised' if up else 'lowered'} {name}{versus} by {abs(c.mean_diff):.2f} "
                f"[{low:.2f}, {high:.2f}], {_p(c.p_holm)}, {counts}.")
    return (f"{subject} made no clear difference to {name}{versus}: {c.mean_diff:+.2f} [{c.ci_low:+.2f}, "
            f"{c.ci_high:+.2f}], {_p(c.p_holm)}, {counts}; the interval includes no change.")


def _p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def judge_noise(repeats: pd.DataFrame, n_pairs: int) -> dict | None:
    """How much the judge's own noise could move a mean difference over `n_pairs` questions.

    `repeats` has one row per judging of an answer: question_id, mode, value (several
    rows per answer). Returns the pooled within-answer SD, the 95% half-width that noise
    alone gives a mean difference of two modes, and the answers whose repeats cross 0.5.
    """
    r = repeats.dropna(subset=["value"])
    groups = r.groupby(["question_id", "mode"])["value"]
    spread = groups.agg(["count", "var", "min", "max"])
    spread = spread[spread["count"] >= 2]
    if spread.empty or n_pairs < 1:
        return None
    within_var = float(spread["var"].mean())
    # a difference of two means, each over n_pairs answers with independent judge noise
    half = 1.96 * math.sqrt(2 * within_var / n_pairs)
    crossing = spread[(spread["min"] < 0.5) & (spread["max"] >= 0.5)]
    return {"within_sd": math.sqrt(within_var), "half_width": half, "answers": int(len(spread)),
            "crossing": [list(k) for k in crossing.index]}


def noise_sentence(c: Comparison, noise: dict | None, repeats: int) -> str | None:
    """What the judge's own noise means for one comparison, in plain words."""
    if noise is None or c.mean_diff is None:
        return None
    name = METRIC_LABELS.get(c.metric, c.metric).lower()
    within = abs(c.mean_diff) <= noise["half_width"]
    verdict = ("within that, so the judge's noise alone could explain it" if within
               else "larger than that, so the judge's noise alone does not explain it")
    crossing = len(noise["crossing"])
    return (f"Judging each answer {repeats} more times, the judge's own noise could move the {name} difference "
            f"by ±{noise['half_width']:.2f}; the observed {c.mean_diff:+.2f} is {verdict}. "
            f"{crossing} of {noise['answers']} answers crossed 0.5 between repeats.")


def findings(df: pd.DataFrame, metrics, repeats: pd.DataFrame | None = None,
             cache: PairedCache | None = None) -> dict[str, dict]:
    """Per metric: the RAG vs LLM-only comparison, its sentence, and, when the run's answers
    were judged repeatedly, the judge's noise and what it means."""
    comps = compare_modes(df, metrics, cache=cache)
    out = {}
    for metric, c in comps.items():
        noise, k = None, 0
        if repeats is not None and len(repeats):
            r = repeats[repeats["metric"] == metric]
            noise, k = judge_noise(r, c.n_pairs), int(r["repeat"].nunique()) if len(r) else 0
        said = retrieval_sentence(df, metric) if metric in RETRIEVAL_METRICS else headline(c)
        out[metric] = {"comparison": c.to_json(), "sentence": said, "judge_noise": noise,
                       "noise_sentence": noise_sentence(c, noise, k)}
    return out


def retrieval_sentence(df: pd.DataFrame, metric: str) -> str:
    """A passages' metric is not a RAG-vs-LLM-only comparison (both modes share the passages): its
    mean over the questions scored, on the RAG item."""
    v = df[(df["metric"] == metric) & (df["mode"] == "rag")]["value"].dropna()
    name = METRIC_LABELS.get(metric, metric)
    if v.empty:
        return f"{name} judges the retrieved passages, which both modes share; no question was scored on it."
    return (f"{name} judges the retrieved passages, which both modes share, so it is not a comparison: "
            f"mean {v.mean():.2f} over {len(v):,} questions.")


# -- the judge against people (core/reviews.py joins the reviews to the scores) ----------------
def agreement(judge_high, human_high) -> dict:
    """How often the judge and people put a score on the same side of 0.5: n, agreements,
    accuracy and Cohen's κ over the two binary labels (scikit-learn). κ is None when it is
    undefined: both gave every score the same label, so chance agreement is already 1."""
    j, h = np.asarray(judge_high, dtype=bool), np.asarray(human_high, dtype=bool)
    n, agree = len(j), int((j == h).sum())
    if n == 0:
        return {"n": 0, "agree": 0, "accuracy": None, "kappa": None}
    from sklearn.metrics import cohen_kappa_score  # 0.2 s to import: only once someone reviewed

    one_label = bool((j == j[0]).all() and (h == j[0]).all())
    kappa = None if one_label else float(cohen_kappa_score(j, h, labels=[False, True]))
    return {"n": n, "agree": agree, "accuracy": agree / n, "kappa": kappa}


@dataclass(frozen=True)
class Corrected:
    """The human-corrected (prediction-powered) estimate of a mean, beside the judge's mean
    and the estimate from the reviewed items alone."""

    estimate: float
    ci_low: float  # 95% normal interval
    ci_high: float
    n_reviewed: int  # items with a human value
    n_total: int  # items the judge scored
    judge_mean: float  # the judge's mean over all items: what the estimate corrects
    rectifier: float  # the mean judge error on the reviewed items (human − judge)
    reviewed_mean: float  # the human mean over the reviewed items alone, and its classical interval
    reviewed_ci_low: float
    reviewed_ci_high: float

    def to_json(self) -> dict:
        return asdict(self)


def ppi_mean(judge, human, alpha: float = ALPHA) -> Corrected:
    """Prediction-powered inference for a mean (Angelopoulos, Bates, Fannjiang, Jordan & Zrnic,
    "Prediction-powered inference", Science 2023): the judge's values on all N items, corrected
    by the judge's mean error on the n items people reviewed (`human`: NaN where not reviewed).

        θ̂ = mean(judge over all N) + mean(human − judge over the n reviewed)

    The paper takes the judge's mean over unlabelled items only; here it runs over all N, the
    reviewed ones included, so that θ̂ is the human mean when every item is reviewed. θ̂ is
    then mean_L(human − λ·judge) + λ·mean_U(judge) with λ = (N − n)/N over the n reviewed (L)
    and the N − n others (U), independent parts whose variances add (PPI++'s mean estimator,
    Angelopoulos, Duchi & Zrnic 2023, at that λ):

        Var θ̂ = Var_L(human − λ·judge)/n + λ²·Var(judge)/(N − n)

    with Var(judge) estimated over all N. The interval is normal, as in the paper. It assumes
    the reviewed items are a random sample of the N (not chosen for being surprising)."""
    judge, human = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    if judge.shape != human.shape or np.isnan(judge).any():
        raise ValueError("judge needs a value for every item, human one per item (NaN: not reviewed)")
    reviewed = ~np.isnan(human)
    big_n, n = len(judge), int(reviewed.sum())
    if n < 2:
        raise ValueError("the corrected estimate needs at least 2 reviewed items")
    lam = (big_n - n) / big_n
    f_l, h_l = judge[reviewed], human[reviewed]
    rectifier = float((h_l - f_l).mean())
    estimate = float(judge.mean()) + rectifier
    var = np.var(h_l - lam * f_l, ddof=1) / n
    if big_n > n:
        var += lam ** 2 * np.var(judge, ddof=1) / (big_n - n)
    z = float(ndtri(1 - alpha / 2))
    half = z * math.sqrt(var)
    h_mean, h_half = float(h_l.mean()), z * float(np.std(h_l, ddof=1)) / math.sqrt(n)
    return Corrected(estimate, estimate - half, estimate + half, n, big_n, float(judge.mean()), rectifier,
                     h_mean, h_mean - h_half, h_mean + h_half)
