"""A run's results: columnar frames read straight from LanceDB, and typed figures.

`load` reads a run once, as Arrow filtered by run in the query and with only the columns it
needs: the questions of its set, the light columns of its answers (no text, no passages) and
of its scores (no details). They are joined into the tidy frame that statistics, charts,
pages and reports all start from: one row per (question, mode, metric), value NaN when
unscored, and `reason` saying why. The heavy JSON columns (answer text, passages, the
judge's details) are read only for what is shown in full: one question's drill-down
(`items` with its id), a report's few examples, the exports and `show --json`
(`summary_json`), which are the JSON edges.
"""
from __future__ import annotations

import contextlib
import gc
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import orjson
import pandas as pd

from core import reviews, why
from core.models import Run
from core.store import Store

NOT_ANSWERED = "not answered yet"  # the reason of a score whose answer is not there yet
NOT_SCORED = "not scored yet"  # the reason of a score not there yet, its answer being there
FRAME_COLUMNS = ["question_id", "question", "category", "mode", "metric", "value", "reason", "retryable"]
QUESTION_COLUMNS = ["question_id", "question", "category", "reference"]
ANSWER_COLUMNS = ["question_id", "mode", "model", "latency_s", "prompt_tokens", "completion_tokens", "error",
                  "retryable"]
_SCORE_COLUMNS = ["question_id", "mode", "metric", "value", "reason", "retryable"]

_REPEAT_COLUMNS = ["question_id", "mode", "metric", "repeat", "temperature", "value", "reason"]


@dataclass(frozen=True)
class MetricFigure:
    """One mode's mean on one metric over its scored answers, with the counts behind it."""

    mode: str
    metric: str
    mean: float | None  # None when nothing was scored
    n_scored: int
    n_unscored: int  # scored and found unscorable, with a reason
    n_unscored_retryable: int  # of those, failures that may pass (endpoint down, timeout): resume redoes them
    n_missing: int  # no score stored yet

    def to_json(self) -> dict:
        return {"mean": self.mean, "n_scored": self.n_scored, "n_unscored": self.n_unscored,
                "n_unscored_retryable": self.n_unscored_retryable, "n_missing": self.n_missing}


@dataclass
class RunResults:
    """Everything known about one run's outcome, ready for pages, the CLI and the report."""

    run: Run
    questions: pd.DataFrame  # QUESTION_COLUMNS, in the set's order (up to the run's limit)
    answers: pd.DataFrame  # ANSWER_COLUMNS + "answered" (it has text): one row per answer stored
    frame: pd.DataFrame  # FRAME_COLUMNS: the tidy scores frame
    figures: dict[tuple[str, str], MetricFigure]  # by (mode, metric)
    counts: dict[str, int]  # items (question, mode) and scores by kind; `done` = settled items (see `_tidy`)
    total: int
    repeats: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_REPEAT_COLUMNS))
    findings: dict = field(default_factory=dict)  # core.stats.findings, when the run has both modes
    trust: dict = field(default_factory=dict)  # core.calibration.judge_trust of the run's judge
    # core.reviews.frame: people's reviews, with what each says
    reviews: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=reviews.FRAME_COLUMNS))
    human_review: dict = field(default_factory=dict)  # core.reviews.figures: the judge against people
    # what readers derive from these results and keep with them (a page's figures, by name): made once
    views: dict = field(default_factory=dict, repr=False, compare=False)

    def view(self, key, build):
        """`build()`, made once for these results and kept under `key`."""
        if key not in self.views:
            self.views[key] = build()
        return self.views[key]

    @property
    def why(self) -> pd.DataFrame:
        """core.why's class of each question (question_id, why, sentence), made when first asked
        for (0.2 s at 10,000 questions, which a page showing no class need not wait for); none
        without both modes."""
        if not self.both_modes:
            return pd.DataFrame(columns=["question_id", "why", "sentence"])
        return self.view("why", lambda: why.classify(self.frame))

    @property
    def both_modes(self) -> bool:
        return {"llm_only", "rag"} <= set(self.run.modes)

    @property
    def done(self) -> int:
        """Items (question, mode) that are settled: nothing of them is missing or waiting for a retry."""
        return self.counts["done"]

    @property
    def answered(self) -> int:
        """Answers that have text (what a re-judging would judge)."""
        return int(self.answers["answered"].sum())

    def modes_json(self) -> dict:
        """Per mode and metric: mean, n_scored, n_unscored, n_missing."""
        return {mode: {metric: self.figures[(mode, metric)].to_json() for metric in self.run.metrics}
                for mode in self.run.modes}

    def run_json(self) -> dict:
        return run_json(self.run)


def run_json(run: Run) -> dict:
    d = asdict(run)
    d.pop("config")  # model configs hold no secrets, but endpoints are not for every export
    d["faithfulness_judge"] = run.config.get("faithfulness_judge", "ragas")
    d["kb_version"], d["encoder"] = run.config.get("kb_version"), run.config.get("encoder")  # pinned at creation
    if run.config.get("experiment"):
        d["experiment"] = run.config["experiment"]  # one configuration of that experiment (core/experiments.py)
    return d


def questions_frame(store: Store, run: Run) -> pd.DataFrame:
    t = store.question_columns(run.question_set, run.question_set_version)
    if run.limit:
        t = t.slice(0, run.limit)
    df = t.select(["id", "question", "category", "reference"]).to_pandas()
    df = df.rename(columns={"id": "question_id"})
    for col in ("category", "reference"):
        df[col] = df[col].fillna("")
    return df[QUESTION_COLUMNS]


def answers_frame(store: Store, run_id: str) -> pd.DataFrame:
    """The light columns of a run's answers, and whether each has text; the text is not read."""
    cols = {c: c for c in ANSWER_COLUMNS}
    cols["answered"] = "length(text) > 0"
    df = store.run_columns("answers", run_id, cols).to_pandas()
    df["answered"] = df["answered"].fillna(False).astype(bool)
    df["retryable"] = df["retryable"].fillna(False).astype(bool)
    return df.drop_duplicates(["question_id", "mode"], keep="last")[ANSWER_COLUMNS + ["answered"]]


def load(store: Store, run_id: str, *, findings: bool = True) -> RunResults:
    """A run's results read as frames, with its statistics (`findings`) when both modes are there."""
    run = store.run(run_id)
    questions = questions_frame(store, run)
    answers = answers_frame(store, run_id)
    scores = store.run_columns("scores", run_id, _SCORE_COLUMNS).to_pandas()
    scores = scores.drop_duplicates(["question_id", "mode", "metric"], keep="last")
    scores["retryable"] = scores["retryable"].fillna(False).astype(bool)
    frame, figures, counts = _tidy(run, questions, answers, scores)
    res = RunResults(run, questions, answers, frame, figures, counts, len(questions) * len(run.modes),
                     reviews=reviews.frame(store, run_id))
    if findings:
        from core import stats
        from core.calibration import judge_trust

        res.repeats = repeats_frame(store, run_id)
        res.trust = judge_trust(store, run)
        res.human_review = reviews.figures(frame, res.reviews, run.metrics, res.both_modes)
        if res.both_modes:
            res.findings = stats.findings(frame, list(run.metrics), res.repeats, cache=store.intervals)
    return res


def draw_once(store: Store, run_id: str) -> None:
    """Draw what a finished run's readers ask for (its findings, its comparison per category) and
    keep it in the store (`Store.intervals`), so every page, report and `show` after reads it."""
    from core import stats

    res = load(store, run_id)
    if res.both_modes and res.frame["category"].ne("").any():
        stats.by_category(res.frame, list(res.run.metrics), cache=store.intervals)
    store.optimize("intervals")


def _tidy(run: Run, questions: pd.DataFrame, answers: pd.DataFrame, scores: pd.DataFrame):
    """The tidy frame: every (question, mode, metric) of the run in order, joined to its score."""
    modes, metrics = list(run.modes), list(run.metrics)
    n, m, k = len(questions), len(modes), len(metrics)
    item_q = np.repeat(np.arange(n), m)  # one row per (question, mode)
    items = pd.DataFrame({"question_id": questions["question_id"].to_numpy()[item_q],
                          "mode": np.tile(np.array(modes, dtype=object), n)})
    found = items.merge(answers[["question_id", "mode", "error", "retryable"]].assign(_answer=True), how="left",
                        on=["question_id", "mode"])
    answered = found["_answer"].notna().to_numpy()
    answer_retryable = found["retryable"].fillna(False).astype(bool).to_numpy()
    answer_failed = answered & ~answer_retryable & (found["error"].fillna("").to_numpy(dtype=object) != "")
    row_q = np.repeat(np.arange(n), m * k)
    grid = pd.DataFrame({
        "question_id": questions["question_id"].to_numpy()[row_q],
        "question": questions["question"].to_numpy()[row_q],
        "category": questions["category"].to_numpy()[row_q],
        "mode": np.tile(np.repeat(np.array(modes, dtype=object), k), n),
        "metric": np.tile(np.array(metrics, dtype=object), n * m)})
    grid = grid.merge(scores.assign(_score=True), how="left", on=["question_id", "mode", "metric"])
    has_score = grid["_score"].notna().to_numpy()
    waiting = np.where(np.repeat(answered, k), NOT_SCORED, NOT_ANSWERED)
    reason = np.where(has_score, grid["reason"].fillna("").to_numpy(dtype=object), waiting)
    retryable = grid["retryable"].fillna(False).astype(bool).to_numpy() & has_score
    frame = grid.assign(value=grid["value"].astype(float), reason=reason, retryable=retryable)[FRAME_COLUMNS]

    figures = {}
    value = frame["value"].to_numpy()
    for i, mode in enumerate(modes):
        for j, metric in enumerate(metrics):
            sel = slice(i * k + j, None, m * k)
            v, has, retry = value[sel], has_score[sel], retryable[sel]
            scored = ~np.isnan(v)
            figures[(mode, metric)] = MetricFigure(
                mode, metric, float(v[scored].mean()) if scored.any() else None, int(scored.sum()),
                int((has & ~scored).sum()), int((has & ~scored & retry).sum()), int((~has).sum()))
    scored_all = has_score & ~np.isnan(value)
    final = has_score & np.isnan(value) & ~retryable
    settled_scores = (scored_all | final).reshape(n * m, k).all(axis=1) if k else np.ones(n * m, dtype=bool)
    settled_answer = answered & ~answer_retryable
    counts = {
        "items": n * m, "done": int((settled_answer & settled_scores).sum()),
        "answered": int((answered & ~answer_retryable & ~answer_failed).sum()), "answer_failed": int(answer_failed.sum()),
        "answer_retryable": int((answered & answer_retryable).sum()), "answer_missing": int((~answered).sum()),
        "scores": n * m * k, "scored": int(scored_all.sum()), "unscored_final": int(final.sum()),
        "unscored_retryable": int((has_score & retryable).sum()), "score_missing": int((~has_score).sum())}
    return frame, figures, counts


def end_status(counts: dict, cancelled: bool = False) -> str:
    """A run's status once its execution ends: done only when every item is settled (a final
    unscored score is settled); incomplete while retryable failures or missing items remain;
    failed when nothing at all could be answered."""
    if cancelled:
        return "cancelled"
    if counts["done"] < counts["items"]:
        return "incomplete"
    return "failed" if counts["items"] and not counts["answered"] else "done"


def counts_line(c: dict) -> str:
    """The counts in one line, as `run` and `resume` print them and the Run page shows them."""
    return (f"{c['answered']}/{c['items']} answered ({c['answer_failed']} failed for good, "
            f"{c['answer_retryable']} to retry, {c['answer_missing']} not yet); "
            f"{c['scored']}/{c['scores']} scored ({c['unscored_final']} unscored for good, "
            f"{c['unscored_retryable']} to retry, {c['score_missing']} not yet)")


def repeats_frame(store: Store, run_id: str) -> pd.DataFrame:
    """One row per repeat judging: question_id, mode, metric, repeat, temperature, value (NaN = unscored), reason."""
    df = store.run_columns("judge_repeats", run_id, _REPEAT_COLUMNS).to_pandas()
    return df.astype({"value": float})[_REPEAT_COLUMNS]


# -- the JSON edges: full items, read only where they are shown ------------------------------
def items(store: Store, run: Run, questions: pd.DataFrame, question_ids: list[str] | None = None,
          raw: RawJSON | None = None) -> list[dict]:
    """Per question (all, or those of `question_ids`): the question and, per mode, the answer
    with its passages, cost and every metric's score with the judge's details. With `raw`,
    passages and details stay the JSON text they are stored as, for `raw.dumps`."""
    with _no_gc():
        return _items(store, run, questions, question_ids, raw.keep if raw is not None else parse_json)


@contextlib.contextmanager
def _no_gc():
    """The cycle collector paused while plain dicts and lists are built: at 10,000 questions its
    passes over the growing heap were a third of the time, and such records hold no cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _items(store: Store, run: Run, questions: pd.DataFrame, question_ids: list[str] | None, parse) -> list[dict]:
    if question_ids is not None:
        wanted = set(question_ids)
        questions = questions[questions["question_id"].isin(wanted)]
    answers = {(a["question_id"], a["mode"]): a
               for a in store.run_columns("answers", run.id, None, question_ids).to_pylist()}
    scores = {(s["question_id"], s["mode"], s["metric"]): s for s in store.run_columns(
        "scores", run.id, ["question_id", "mode", "metric", "value", "reason", "retryable", "details", "judge",
                           "latency_s"],
        question_ids).to_pylist()}
    out = []
    # columns as lists: iterating a frame's Arrow-backed strings costs a Python call per value
    for qid, question, category, reference in zip(*(questions[c].tolist() for c in QUESTION_COLUMNS)):
        item = {"question_id": qid, "question": question, "category": category, "reference": reference}
        for mode in run.modes:
            a = answers.get((qid, mode))
            item[mode] = None if a is None else {
                "answer": a["text"], "error": a["error"], "retryable": bool(a.get("retryable")), "model": a["model"],
                **_cost(a),
                "passages": parse(a["passages"] or "[]"),
                "scores": {m: _score_json(scores.get((qid, mode, m)), parse) for m in run.metrics}}
        out.append(item)
    return out


def item(store: Store, res: RunResults, question_id: str) -> dict:
    """One question in full, read on demand (the drill-down)."""
    return items(store, res.run, res.questions, [question_id])[0]


def summary_json(store: Store, run_id: str) -> dict:
    """The run with every item's answers and scores, per mode and metric the mean over scored
    items with the scored / unscored / missing counts, and its progress."""
    return document(store, load(store, run_id, findings=False), findings=False)


def document(store: Store, res: RunResults, raw: RawJSON | None = None, findings: bool = True) -> dict:
    """`summary_json` of results already read, with people's reviews; with `findings` (read with
    them), also the comparison, the findings in words, the judge's calibration and its agreement
    with people: the one shape `show --json` prints and the JSON export writes (README, "The
    JSON of a run")."""
    doc = {"run_id": res.run.id, "run": res.run_json(), "modes": res.modes_json(),
           "items": items(store, res.run, res.questions, raw=raw), "progress": {"done": res.done, "total": res.total},
           "counts": res.counts, "reviews": reviews_json(res.reviews)}
    if findings:
        # RAG minus LLM only, per metric, over the questions scored in both modes
        doc["comparison"] = {m: f["comparison"] for m, f in res.findings.items()}
        doc["findings"] = {m: {k: f[k] for k in ("sentence", "judge_noise", "noise_sentence")}
                           for m, f in res.findings.items()}
        doc["calibration"] = res.trust  # how the run's judge did on the calibration set, per metric
        doc["human_review"] = res.human_review  # how it agrees with people on this run, per metric
        doc["gates"] = store.gates(res.run.id)  # the latest `gate` verdicts of this run against each baseline
        if res.both_modes:  # why RAG changed each question's scores (core.why): per item, and counted
            doc["why"] = why.summary(res.why)
            classes = dict(zip(res.why["question_id"].tolist(), zip(res.why["why"].tolist(),
                                                                    res.why["sentence"].tolist())))
            for it in doc["items"]:
                found, said = classes[it["question_id"]]
                it["why"] = {"class": found, "sentence": said}
    return doc


def reviews_json(df: pd.DataFrame) -> list[dict]:
    """People's reviews as records (their stored columns); a missing number (a verdict's score,
    an unscored judge value) is null."""
    out = df[[c for c in reviews.COLUMNS if c in df.columns]].astype(object)
    return out.where(out.notna(), None).to_dict("records")


def _cost(a: dict) -> dict:
    """Latency and tokens; None for an imported answer, which was never generated here."""
    measured = a["model"] != "imported"
    return {k: a[k] if measured else None for k in ("latency_s", "prompt_tokens", "completion_tokens")}


def parse_json(text: str):
    """Stored JSON text as Python: orjson, 4x faster than json on 60,000 fragments; json for
    the NaN that json.dumps may have written into a judge's details (orjson refuses it)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _score_json(s: dict | None, parse=parse_json) -> dict:
    if s is None:
        return {"value": None, "reason": NOT_SCORED}
    value = s["value"]
    return {"value": None if value is None or value != value else value, "reason": s["reason"] or None,
            "retryable": bool(s.get("retryable")), "details": parse(s["details"] or "{}"), "judge": s["judge"],
            "latency_s": s["latency_s"]}


class RawJSON:
    """JSON text kept as it is stored and written into the document as it is (an orjson
    Fragment): parsing 60,000 stored fragments only to write them again took most of `show
    --json`, and orjson writes the 78 MB document of 10,000 questions in 0.1 s (json 0.6 s)."""

    @staticmethod
    def keep(text: str) -> orjson.Fragment:
        return orjson.Fragment(text)

    @staticmethod
    def dumps(doc) -> bytes:
        """UTF-8 JSON; NaN (never stored as a score: unscored is None) would be null, not `NaN`."""
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def items_frame(store: Store, res: RunResults) -> pd.DataFrame:
    """One row per question and mode: the answer, each metric's score and why it is missing
    (the data exports)."""
    run, q = res.run, res.questions
    cols = ANSWER_COLUMNS + ["text", "passages"]
    a = store.run_columns("answers", run.id, cols).to_pandas().drop_duplicates(["question_id", "mode"], keep="last")
    a["passages"] = [" | ".join(p["id"] for p in parse_json(s or "[]")) for s in a["passages"]]
    imported = a["model"] == "imported"
    for c in ("latency_s", "prompt_tokens", "completion_tokens"):
        a[c] = a[c].astype(object).where(~imported, None)
    n, modes = len(q), list(run.modes)
    rows = pd.DataFrame({c: np.repeat(q[c].to_numpy(), len(modes)) for c in QUESTION_COLUMNS})
    rows["mode"] = np.tile(np.array(modes, dtype=object), n)
    rows = rows.merge(a.rename(columns={"text": "answer", "error": "answer_error"}), how="left",
                      on=["question_id", "mode"])
    rows["answer_error"] = rows["answer_error"].fillna("")
    rows["passages"] = rows["passages"].astype(object).fillna("")  # all-null (no answers yet) reads as float
    rows = rows[["question_id", "question", "category", "reference", "mode", "answer", "answer_error", "model",
                 "latency_s", "prompt_tokens", "completion_tokens", "passages"]]
    stored = res.frame["reason"].to_numpy() != NOT_ANSWERED
    for metric in run.metrics:
        f = res.frame[res.frame["metric"] == metric]
        has = stored[(res.frame["metric"] == metric).to_numpy()]
        rows[metric] = f["value"].to_numpy()
        # an item without its answer has no score either: the export says "not scored yet" for both
        rows[f"{metric}_unscored_reason"] = np.where(has, f["reason"].to_numpy(dtype=object), NOT_SCORED)
    if res.both_modes and len(res.why):  # core.why's class of the question ("" where RAG changed no score)
        rows["why"] = rows["question_id"].map(res.why.set_index("question_id")["why"]).fillna("")
    return _with_reviews(rows, res)


def _with_reviews(rows: pd.DataFrame, res: RunResults) -> pd.DataFrame:
    """The export rows with, per metric, the human value people gave each score (`METRIC_human`,
    core.reviews.human_values) and its reviews as JSON text (`METRIC_reviews`, "" when none)."""
    at = list(zip(rows["question_id"], rows["mode"]))
    for metric in res.run.metrics:
        r = res.reviews[res.reviews["metric"] == metric]
        human = reviews.human_values(r)["value"].droplevel("metric").to_dict()
        texts = {k: json.dumps(reviews_json(g), ensure_ascii=False) for k, g in r.groupby(["question_id", "mode"])}
        rows[f"{metric}_human"] = [human.get(k, np.nan) for k in at]
        rows[f"{metric}_reviews"] = [texts.get(k, "") for k in at]
    return rows
