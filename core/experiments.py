"""Experiments: one question set run over a grid of settings, and a leaderboard against a baseline.

An experiment names a question set, a base knowledge base and, per axis (AXES: top-k, search
mode, chunk size, encoder, answer model), the values to try; every combination is one
configuration, executed as one ordinary run tagged with the experiment's id. The first value
of every axis makes the first configuration, the default baseline.

A chunk size or encoder other than the base knowledge base's own is read from a knowledge base
built from the base's sources with those settings and named after them (`docs.chunk-128-26`,
`docs.chunk-200-40.enc-1a2b3c4d`): built once, reused by every later experiment that asks for
the same, and topped up (an incremental ingest) when the base has gained or lost sources.

One job, `experiment:<id>`, executes the configurations one after another (each run under its
own `run:<id>` job, as any run). Cancel stops the run in flight after its items in flight and
the experiment with it; resume skips the runs that are done and resumes the others.

The leaderboard pairs each configuration's run with the baseline's on the questions both asked
(`core.stats.compare_runs`, as the regression gate does): per metric, the mean, the mean paired
difference with its 95% bootstrap interval and the Wilcoxon p-value, Holm-adjusted across the
configurations compared with the baseline (per metric), and the regression gate's verdict on the
configuration against the baseline (`core.gate.verdict`, its default allowance of 0.05).
"""
from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import jobs
from core.config import PROJECT_ROOT, ModelConfig, Settings, live_model, stored_model, validated
from core.errors import ConfigError, NotFoundError, RagEvalError
from core.models import DEFAULT_METRICS, METRIC_LABELS, MODE_LABELS, Experiment
from core.runs import check_choices, create_run, new_run_id
from core.store import Store, check_name, now

AXES = ("top_k", "search_mode", "chunk_tokens", "embedding_model", "answer_model")
AXIS_LABELS = {"top_k": "top-k", "search_mode": "search", "chunk_tokens": "chunk size",
               "embedding_model": "encoder", "answer_model": "answer model"}
MAX_CONFIGS = 12  # a grid larger than this is refused unless the caller raises the bound
# Chunk size and encoder: None means the base knowledge base as it is (no knowledge base is built).
BASE = None
Progress = Callable[[int, int, str], None]


# -- the grid ----------------------------------------------------------------------------------
def grid_of(settings: Settings, **axes) -> dict:
    """Each axis's values as an experiment stores them, the unnamed ones at their single default:
    the settings' top-k, search mode and answer model, the base knowledge base's chunks and encoder.
    An answer model is given as a ModelConfig and stored without credentials (`stored_model`)."""
    unknown = set(axes) - set(AXES)
    if unknown:
        raise RagEvalError(f"experiment axis {sorted(unknown)[0]!r} is unknown: use {', '.join(AXES)}")
    defaults = {"top_k": [settings.top_k], "search_mode": [settings.search_mode], "chunk_tokens": [BASE],
                "embedding_model": [BASE], "answer_model": [settings.answer_model]}
    grid = {}
    for axis in AXES:
        values = list(axes.get(axis) or defaults[axis])
        if axis == "answer_model":
            values = [stored_model(v) if isinstance(v, ModelConfig) else dict(v) for v in values]
        seen = []
        for v in values:
            if v in seen:
                raise RagEvalError(f"{AXIS_LABELS[axis]} {value_label(axis, v)} is given twice")
            seen.append(v)
        grid[axis] = values
    return grid


def combinations(grid: dict) -> list[dict]:
    """Every configuration of the grid, {axis: value}, the first values first (the baseline)."""
    return [dict(zip(AXES, values)) for values in itertools.product(*(grid[a] for a in AXES))]


def overlap_for(settings: Settings, chunk_tokens: int) -> int:
    """The overlap for another chunk size: the settings' overlap in proportion, under half a chunk."""
    return min(round(chunk_tokens * settings.chunk_overlap / settings.chunk_tokens), chunk_tokens // 2 - 1)


def derived_kb(kb: str, chunk_tokens: int, chunk_overlap: int, embedding_model: str | None) -> str:
    """The name of the knowledge base built from `kb`'s sources with these settings."""
    name = f"{kb}.chunk-{chunk_tokens}-{chunk_overlap}"
    if embedding_model is not None:
        name += ".enc-" + hashlib.sha256(embedding_model.encode()).hexdigest()[:8]
    return check_name("knowledge base", name)


def value_label(axis: str, value) -> str:
    """One axis value in words, as the leaderboard names configurations."""
    if axis == "chunk_tokens":
        return "the base's chunks" if value is BASE else f"{value}-token chunks"
    if axis == "embedding_model":
        return "the base's encoder" if value is BASE else (Path(value).name or value) if value else "MiniLM (packaged)"
    if axis == "answer_model":
        from core.llm import label

        return label(ModelConfig(**value))
    return f"top-{value}" if axis == "top_k" else str(value)


def config_label(exp: Experiment, index: int) -> str:
    """A configuration named by the axes that vary in its experiment, e.g. "top-2 · vector"."""
    varying = [a for a in AXES if len(exp.grid[a]) > 1] or ["top_k", "search_mode", "chunk_tokens"]
    return " · ".join(value_label(a, exp.configs[index]["settings"][a]) for a in varying)


# -- creating, executing, cancelling -----------------------------------------------------------------
def create_experiment(store: Store, settings: Settings, name: str, kb: str, question_set: str, *,
                      modes=("rag",), metrics=DEFAULT_METRICS, limit: int | None = None,
                      max_configs: int = MAX_CONFIGS, **axes) -> Experiment:
    """Validate an experiment's choices (every configuration's) and store it; nothing runs yet.
    `axes` are lists per axis (AXES); see `grid_of`."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise RagEvalError("name the experiment (1-100 characters)")
    modes, metrics = tuple(modes), tuple(metrics)
    grid = grid_of(settings, **axes)
    configs = combinations(grid)
    if len(configs) > max_configs:
        sizes = " × ".join(f"{len(grid[a])} {AXIS_LABELS[a]}" for a in AXES if len(grid[a]) > 1)
        raise RagEvalError(f"the grid makes {len(configs)} configurations ({sizes}), more than {max_configs}: "
                           "give fewer values, or raise the limit (--max-configs)")
    for top_k in grid["top_k"]:
        if not isinstance(top_k, int) or not 1 <= top_k <= 50:
            raise RagEvalError(f"top-k {top_k}: use 1 to 50 passages")
    for top_k, search_mode in itertools.product(grid["top_k"], grid["search_mode"]):
        check_choices(store, settings, kb, modes, metrics, limit, top_k, search_mode)
    qs = store.question_set(question_set)
    derived = any(v is not BASE for v in grid["chunk_tokens"] + grid["embedding_model"])
    if derived and not store.kb_sources(kb):
        raise RagEvalError(f"knowledge base '{kb}' has no sources to build another chunking or encoder from")
    for chunk in grid["chunk_tokens"]:
        if chunk is not BASE:
            try:
                validated(settings, chunk_tokens=int(chunk), chunk_overlap=overlap_for(settings, int(chunk)))
            except ConfigError:
                raise RagEvalError(f"chunk size {chunk}: use 32 to 240 tokens (the encoder reads 256)") from None
    for path in grid["embedding_model"]:
        if path and not Path(path).is_dir():
            raise RagEvalError(f"encoder {path}: no such folder (name a sentence-transformers model folder)")
    for model in grid["answer_model"]:
        live_model(ModelConfig(**model), settings)  # raises ConfigError for a key variable not declared
    stored = []
    for c in configs:
        kb_of, build = kb, None
        if c["chunk_tokens"] is not BASE or c["embedding_model"] is not BASE:
            chunk = int(c["chunk_tokens"]) if c["chunk_tokens"] is not BASE else settings.chunk_tokens
            overlap = overlap_for(settings, chunk) if c["chunk_tokens"] is not BASE else settings.chunk_overlap
            build = {"chunk_tokens": chunk, "chunk_overlap": overlap,
                     "embedding_model": settings.embedding_model if c["embedding_model"] is BASE
                     else c["embedding_model"]}
            kb_of = derived_kb(kb, chunk, overlap, c["embedding_model"])
        encoder = build["embedding_model"] if build else settings.embedding_model
        stored.append({"settings": c, "kb": kb_of, "build": build, "embedding_model": encoder, "run_id": ""})
    exp = Experiment(id="exp-" + new_run_id(), name=name, created_at=now(), kb=kb, question_set=qs.name,
                     question_set_version=qs.version, modes=modes, metrics=metrics, grid=grid,
                     configs=tuple(stored), limit=limit)
    store.create_experiment(exp)
    return exp


def prepare_kb(store: Store, settings: Settings, exp: Experiment, config: dict,
               progress: Progress | None = None) -> tuple[str, str]:
    """The knowledge base a configuration reads, built first when it is a derived one that does
    not exist yet: (its name, "base" | "reused" | "built")."""
    kb, build = config["kb"], config.get("build")
    if build is None:
        return kb, "base"
    sources = sorted(s["source"] for s in store.kb_sources(exp.kb))
    if store.has_kb(kb) and not store.kb_partial(kb):
        have = sorted(s["source"] for s in store.kb_sources(kb))
        if have == sources:
            return kb, "reused"
        for gone in set(have) - set(sources):  # the base lost a source since: so does this one
            store.delete_source(kb, gone)
    from core.embeddings import get_embedder
    from core.ingest import ingest

    chosen = validated(settings, chunk_tokens=build["chunk_tokens"], chunk_overlap=build["chunk_overlap"])
    try:
        ingest(sources, kb, store, get_embedder(build["embedding_model"]), chosen, progress=progress)
    except RagEvalError as e:
        raise RagEvalError(f"building knowledge base '{kb}' from the sources of '{exp.kb}': {e}") from None
    return kb, "built"


def execute(store: Store, settings: Settings, exp_id: str, *, claim: jobs.Claim | None = None,
            answer_llm=None, judge_llm=None, progress: Progress | None = None) -> Experiment:
    """Execute (or resume) an experiment: per configuration, its knowledge base made ready, its run
    created once and executed; runs that are done are skipped. `answer_llm` / `judge_llm` may be
    given for tests. Returns the experiment as it ended."""
    from core.embeddings import get_embedder
    from core.executor import Executor

    exp = store.experiment(exp_id)
    progress = progress or (lambda done, total, what: None)
    claim = claim or jobs.start(store, "experiment", exp_id, ("experiment", "resume", exp_id))
    with claim:
        store.update_experiment(exp_id, status="running", error="")
        configs = [dict(c) for c in exp.configs]
        n = len(configs)
        questions = store.question_set(exp.question_set, exp.question_set_version).questions
        per_run = len(questions[: exp.limit] if exp.limit else questions) * len(exp.modes)  # items of each run
        cancelled = False
        try:
            for i, config in enumerate(configs):
                if claim.cancelled():
                    cancelled = True
                    break
                step = f"configuration {i + 1}/{n} ({config_label(exp, i)})"

                def followed(done: int, total: int, what: str, i=i, step=step) -> None:
                    claim.progress(i * per_run + min(done, per_run), n * per_run)
                    progress(i * per_run + min(done, per_run), n * per_run, f"{step}: {what}")

                run = _run_of(store, config)
                if run is None:
                    started = time.perf_counter()
                    _, how = prepare_kb(store, settings, exp, config, progress=lambda d, t, w: progress(
                        i * per_run, n * per_run, f"{step}: knowledge base {config['kb']}: {w}"))
                    if how != "base":  # what became of its knowledge base, for the leaderboard to say
                        config["kb_ready"] = {"how": how, "seconds": round(time.perf_counter() - started, 1)}
                    run = _create(store, settings, exp, config)
                    config["run_id"] = run.id
                    store.update_experiment(exp_id, configs=configs)
                if run.status == "done":
                    followed(per_run, per_run, "done already")
                    continue
                embedder = get_embedder(run.config.get("embedding_model", ""))
                out = Executor(store, settings, embedder, run.id, answer_llm, judge_llm, progress=followed).execute()
                if out.run.status == "cancelled":
                    cancelled = True
                    break
        except BaseException as e:
            store.update_experiment(exp_id, status="failed", error=str(e) or type(e).__name__)
            raise
        statuses = [_run_status(store, c) for c in configs]
        status = "cancelled" if cancelled else "done" if all(s == "done" for s in statuses) else "incomplete"
        left = [f"configuration {i + 1} is {s}" for i, s in enumerate(statuses) if s != "done"]
        error = "" if status in ("done", "cancelled") else \
            "; ".join(left) + f"; `python -m core experiment resume {exp_id}` resumes them"
        store.update_experiment(exp_id, status=status, error=error)
        claim.finish(status, error)
    store.optimize("experiments")
    return store.experiment(exp_id)


def _create(store: Store, settings: Settings, exp: Experiment, config: dict):
    """The run of one configuration: the settings with the configuration's values."""
    c = config["settings"]
    chosen = validated(settings, top_k=c["top_k"], search_mode=c["search_mode"],
                       embedding_model=config["embedding_model"],
                       answer_model=live_model(ModelConfig(**c["answer_model"]), settings))
    return create_run(store, chosen, config["kb"], exp.question_set, modes=exp.modes, metrics=exp.metrics,
                      limit=exp.limit, top_k=c["top_k"], search_mode=c["search_mode"],
                      question_set_version=exp.question_set_version, experiment=exp.id)


def _run_of(store: Store, config: dict):
    """The configuration's run, or None while none was made (or it was deleted)."""
    if not config.get("run_id"):
        return None
    try:
        return store.run(config["run_id"])
    except NotFoundError:
        return None


def _run_status(store: Store, config: dict) -> str:
    from core.runs import status

    run = _run_of(store, config)
    return "not started" if run is None else status(store, run)


def launch(settings: Settings, store: Store, exp_id: str) -> jobs.Job:
    """Execute an experiment in its own process (`python -m core experiment resume EXP`), detached."""
    store.experiment(exp_id)
    return jobs.launch(store, settings.home, "experiment", exp_id, ("experiment", "resume", exp_id), PROJECT_ROOT)


def cancel(store: Store, exp_id: str) -> str:
    """Stop an experiment: the run in flight after its items in flight, and no run after it."""
    exp = store.experiment(exp_id)
    before = jobs.get(store, "experiment", exp_id)
    job = jobs.cancel(store, "experiment", exp_id)
    for c in exp.configs:
        if c.get("run_id") and jobs.alive(jobs.get(store, "run", c["run_id"])):
            jobs.cancel(store, "run", c["run_id"])
    if jobs.alive(job) and job.status == "running":
        return f"asked experiment {exp_id} to stop after the items in flight"
    if exp.status == "pending" or before is not None and before.status == "pending":
        store.update_experiment(exp_id, status="cancelled")
        return f"experiment {exp_id} cancelled before it started"
    raise RagEvalError(f"experiment {exp_id} is not running (it is {status(store, exp)})")


def delete(store: Store, exp_id: str, with_runs: bool = False) -> list[str]:
    """Delete an experiment (refused while its job lives); with `with_runs`, its runs too (each
    refused while it executes). Its runs stay otherwise, as ordinary runs. Returns the runs deleted."""
    from core import runs

    exp = store.experiment(exp_id)
    job = jobs.get(store, "experiment", exp_id)
    if jobs.alive(job):
        raise RagEvalError(f"{jobs.describe(job)}; cancel it first")
    deleted = []
    for c in exp.configs if with_runs else ():
        if _run_of(store, c) is not None:
            runs.delete(store, c["run_id"])
            deleted.append(c["run_id"])
    store.delete_experiment(exp_id)
    store.delete_job(jobs.key("experiment", exp_id))
    return deleted


def status(store: Store, exp: Experiment) -> str:
    """The experiment's status as a person should read it ('interrupted' when no live worker has it)."""
    return jobs.shown_status(store, "experiment", exp.id, exp.status)


# -- the leaderboard ---------------------------------------------------------------------------------
ROW_COLUMNS = ["config", "label", "run_id", "status", "metric", "baseline", "mean", "n_scored", "mean_diff",
               "ci_low", "ci_high", "p_value", "p_holm", "n_pairs", "wins", "ties", "losses", "gate"]


def board(frames: list, metrics, baseline: int = 0, mode: str = "rag"):
    """The leaderboard's rows from each configuration's tidy score frame (None: no results yet):
    per configuration and metric, the mean over its scored questions and, against the baseline
    configuration on the questions both asked, the mean paired difference with its 95% interval
    and p-value, Holm-adjusted across the configurations per metric, and whether the regression
    gate (`core.gate`, its default allowance) passes it against the baseline. Pure."""
    import pandas as pd

    from core import gate, stats

    metrics = list(metrics)
    base = frames[baseline]
    comps = {}
    for i, df in enumerate(frames):
        if i != baseline and df is not None and base is not None:
            comps[i] = stats.compare_runs(base, df, mode, metrics)[0]
    adjusted = {m: dict(zip(comps, stats.holm([comps[i][m].p_value for i in comps]))) for m in metrics}
    rows = []
    for i, df in enumerate(frames):
        means = stats.mean_table(df[df["mode"] == mode]).set_index("metric") if df is not None else None
        for m in metrics:
            has = means is not None and m in means.index
            row = {"config": i + 1, "metric": m, "baseline": i == baseline,
                   "mean": float(means.at[m, "mean"]) if has else math.nan,
                   "n_scored": int(means.at[m, "n_scored"]) if has else 0}
            c = comps.get(i, {}).get(m) if i in comps else None
            if c is not None:
                row.update(mean_diff=c.mean_diff, ci_low=c.ci_low, ci_high=c.ci_high, p_value=c.p_value,
                           p_holm=adjusted[m][i], n_pairs=c.n_pairs, wins=c.wins, ties=c.ties, losses=c.losses,
                           gate="pass" if gate.verdict(c).passed else "fail")
            rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=[c for c in ROW_COLUMNS if c not in ("label", "run_id", "status")])
    for col in ("mean_diff", "ci_low", "ci_high", "p_value", "p_holm"):
        out[col] = out[col].astype(float)
    for col in ("n_pairs", "wins", "ties", "losses"):
        out[col] = out[col].astype("Int64")  # counts, missing for the baseline itself
    out["gate"] = out["gate"].astype(object).where(out["gate"].notna(), None)  # "pass" / "fail"; None: not gated
    return out


@dataclass
class Leaderboard:
    """An experiment's configurations against its baseline, in one mode."""

    experiment: Experiment
    baseline: int  # index of the baseline configuration
    mode: str
    rows: object  # pandas DataFrame, ROW_COLUMNS
    statuses: list[str]

    def to_json(self) -> dict:
        exp = self.experiment
        rows = self.rows.astype(object).where(self.rows.notna(), None).to_dict("records")
        return {"id": exp.id, "name": exp.name, "created_at": exp.created_at, "status": exp.status,
                "error": exp.error, "kb": exp.kb, "question_set": exp.question_set,
                "question_set_version": exp.question_set_version, "modes": list(exp.modes),
                "metrics": list(exp.metrics), "limit": exp.limit, "grid": exp.grid,
                "configs": [{"config": i + 1, "label": config_label(exp, i), "settings": c["settings"], "kb": c["kb"],
                             "kb_ready": c.get("kb_ready"), "run_id": c["run_id"] or None, "status": self.statuses[i]}
                            for i, c in enumerate(exp.configs)],
                "baseline": self.baseline + 1, "mode": self.mode, "leaderboard": rows}

    def lines(self) -> list[str]:
        """The leaderboard as text: per metric, the configurations from the best mean down."""
        exp, out = self.experiment, []
        base = f"#{self.baseline + 1} {config_label(exp, self.baseline)}"
        out.append(f"experiment {exp.id} '{exp.name}' [{exp.status}]: {len(exp.configs)} configurations of "
                   f"{exp.question_set} v{exp.question_set_version} on {exp.kb}, "
                   f"{MODE_LABELS.get(self.mode, self.mode)} "
                   f"answers; baseline {base}")
        for kb in dict.fromkeys(c["kb"] for c in exp.configs if c["kb"] != exp.kb):
            uses = [i for i, c in enumerate(exp.configs) if c["kb"] == kb]
            ready = [exp.configs[i]["kb_ready"] for i in uses if exp.configs[i].get("kb_ready")]
            said = ("not built yet" if not ready else
                    f"built from the sources of {exp.kb} in {ready[0]['seconds']:.1f} s" if ready[0]["how"] == "built"
                    else "reused as an earlier experiment built it")
            which = ("configurations " if len(uses) > 1 else "configuration ") + ", ".join(str(i + 1) for i in uses)
            out.append(f"knowledge base {kb} ({which}): {said}")
        for metric, g in self.rows.groupby("metric", sort=False):
            out.append(f"{METRIC_LABELS.get(metric, metric)} (difference vs the baseline on shared questions, "
                       "95% CI, p Holm-adjusted across configurations):")
            for _, r in g.sort_values("mean", ascending=False, na_position="last").iterrows():
                mean = "   —  " if math.isnan(r["mean"]) else f"{r['mean']:.3f}"
                if r["baseline"]:
                    vs = "baseline"
                elif math.isnan(r["mean_diff"]):
                    vs = "no shared scored questions" if r["status"] != "not started" else "not run yet"
                elif math.isnan(r["ci_low"]):
                    vs = f"{r['mean_diff']:+.3f}, too few pairs for an interval ({int(r['n_pairs'])})"
                else:
                    p = "p n/a" if math.isnan(r["p_holm"]) else f"p {r['p_holm']:.3f}"
                    vs = (f"{r['mean_diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] {p}, "
                          f"{int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])} better/tied/worse of "
                          f"{int(r['n_pairs'])}, gate {r['gate']}")
                out.append(f"  #{r['config']:<2} {r['label']:<32} mean {mean}  {vs}  [{r['status']}]")
        return out


def leaderboard(store: Store, exp_id: str, baseline: int = 0, mode: str | None = None) -> Leaderboard:
    """The leaderboard of an experiment against configuration `baseline` (0-based), read from its runs."""
    from core.results import load

    exp = store.experiment(exp_id)
    if not 0 <= baseline < len(exp.configs):
        raise RagEvalError(f"baseline {baseline + 1}: use a configuration from 1 to {len(exp.configs)}")
    mode = mode or ("rag" if "rag" in exp.modes else exp.modes[0])
    if mode not in exp.modes:
        raise RagEvalError(f"experiment {exp_id} has no {MODE_LABELS.get(mode, mode)} answers")
    frames, statuses = [], []
    for c in exp.configs:
        run = _run_of(store, c)
        frames.append(load(store, run.id, findings=False).frame if run is not None else None)
        statuses.append(_run_status(store, c) if run is not None or not c.get("run_id") else "deleted")
    rows = board(frames, exp.metrics, baseline, mode)
    rows.insert(1, "label", [config_label(exp, i - 1) for i in rows["config"]])
    rows.insert(2, "run_id", [exp.configs[i - 1]["run_id"] or None for i in rows["config"]])
    rows.insert(3, "status", [statuses[i - 1] for i in rows["config"]])
    return Leaderboard(store.experiment(exp_id), baseline, mode, rows, statuses)
