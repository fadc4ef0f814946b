"""The pages' one door to core: cached heavy objects and reads, error display, and one
way to refresh after a write. Pages import this and never open the store themselves."""
from __future__ import annotations

import contextlib
import os
import re

import streamlit as st

from core.config import Settings, load_settings
from core.errors import RagEvalError
from core.store import Store
from core.workspace import open_workspace


def _secrets_to_env() -> None:
    """Keys in .streamlit/secrets.toml reach backends the way environment keys do; the
    environment wins, and nothing of them is ever displayed or stored."""
    try:
        for name, value in st.secrets.items():
            if isinstance(value, str) and name.isupper():
                os.environ.setdefault(name, value)
    except Exception:  # no secrets file is the common case
        pass


def settings() -> Settings:
    """Current settings (environment over the saved settings file); cheap, read every run."""
    _secrets_to_env()
    return load_settings()


@st.cache_resource(show_spinner="Opening the workspace…")
def _store(uri: str, home: str) -> Store:
    return open_workspace(settings())


def store() -> Store:
    s = settings()
    return _store(s.db_uri, str(s.home))


@st.cache_resource(show_spinner="Loading the embedding model…")
def embedder(path: str = ""):
    from core.embeddings import get_embedder

    return get_embedder(path)


def refresh() -> None:
    """Forget cached reads after a write, so every page shows the store as it is."""
    st.cache_data.clear()
    _results.clear()


def md(text) -> str:
    """User text made inert for Streamlit markdown: no links, images, emphasis or LaTeX."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


@contextlib.contextmanager
def guard(what: str = ""):
    """Show errors as st.error: the user's fixable ones as they are, others in one line."""
    try:
        yield
    except RagEvalError as e:
        st.error(md(e), icon=":material/error:")
    except Exception as e:  # never a traceback on a page
        st.error(f"{what + ': ' if what else ''}unexpected {type(e).__name__}: {md(e)}", icon=":material/error:")


def init_choice(key: str, wanted, options: list, force: bool = False) -> None:
    """Start the keyed widget `key` at `wanted` (from the URL, or with `force` from another
    page) when it is one of the options; afterwards the widget keeps the user's choice."""
    if wanted in options and (force or key not in st.session_state):
        st.session_state[key] = wanted
    elif st.session_state.get(key) not in options:
        st.session_state.pop(key, None)


def pick_run(key: str, opened_from: str | None = None) -> str:
    """A run with results, chosen in a selectbox that follows `?run=` in the URL (or
    `opened_from`, a run another page sent the user to); stops the page when there is none."""
    done = [r for r in runs() if r.status != "pending"]
    if not done:
        st.info("No results yet: start a run first.")
        st.page_link("pages/run.py", label="Go to Run", icon=":material/play_arrow:")
        st.stop()
    ids = [r.id for r in done]
    init_choice(key, opened_from or st.query_params.get("run"), ids, force=bool(opened_from))
    run_id = st.selectbox("Run", ids, key=key, format_func=lambda i: next(
        f"{r.id} · {r.status} · {r.question_set} v{r.question_set_version} on {r.kb} · {r.answer_model}"
        for r in done if r.id == i))
    st.query_params["run"] = run_id
    return run_id


def ingest_with_progress(specs: list[str], kb: str):
    """Ingest with a progress bar (the chunks embedded so far); returns the ingest report."""
    from core.ingest import ingest

    bar = st.progress(0.0, text="Reading sources…")

    def progress(done, total, what):
        bar.progress(done / total if total else 0.0, text=f"{what}: {done}/{total} chunks" if total else what)

    report = ingest(specs, kb, store(), embedder(settings().embedding_model), settings(), progress=progress)
    refresh()
    return report


def demo_judge_note(judge_label: str, faithfulness: str = "ragas") -> None:
    if not judge_label.startswith("embedded:"):
        return
    if faithfulness == "likelihood":
        st.info("Judged on this machine by the embedded 135M model. **Faithfulness** comes from the *likelihood "
                "judge*: for each statement of an answer, how much more likely the retrieved evidence makes it "
                "(two forward passes, no text written by the judge), with a verdict rule fitted and cross-validated "
                "on our calibration set. **Answer relevancy** uses RAGAS's prompts through the same small model. "
                "The calibration figures below say how far each can be trusted; a capable judge over an "
                "OpenAI-compatible endpoint (Settings) can give RAGAS's own faithfulness verdicts.",
                icon=":material/science:")
        return
    st.warning("Scores judged by the embedded 135M model are **demo-grade**: a model this small cannot "
               "reliably tell faithful answers from unfaithful ones. Connect a capable judge over an "
               "OpenAI-compatible endpoint in Settings for scores you can rely on.",
               icon=":material/science:")


def draw_verdicts(details: dict, passages: list[dict]) -> None:
    """A faithfulness judgement statement by statement. The likelihood judge's figures are put in
    words ("the evidence makes this statement 40× more likely") beside the passage closest to it."""
    import pandas as pd

    rows = pd.DataFrame(details["verdicts"])
    rows["verdict"] = rows["verdict"].map({1: "supported", 0: "not supported"})
    if details.get("judge") != "likelihood":
        st.dataframe(rows[["statement", "verdict", "reason"]], hide_index=True, width="stretch")
        return
    number = {p["id"]: n for n, p in enumerate(passages, 1)}
    rows["why"] = rows["reason"]
    rows["p(supported)"] = rows["probability"]
    rows["closest passage"] = rows["passage"].map(lambda pid: f"#{number[pid]}" if pid in number else "—")
    st.dataframe(rows[["statement", "verdict", "p(supported)", "why", "closest passage"]], hide_index=True,
                 width="stretch", column_config={"p(supported)": st.column_config.ProgressColumn(
                     "p(supported)", min_value=0.0, max_value=1.0, format="%.2f")})
    st.caption("Likelihood judge: the score is the expected share of statements the evidence supports. "
               "“× more likely” compares the statement's probability with the evidence and without it.")


# -- cached reads (short TTL: a background worker writes while pages read) -----------------
@st.cache_data(show_spinner=False, ttl=3)
def kb_names() -> list[str]:
    return store().kb_names()


@st.cache_data(show_spinner=False, ttl=3)
def kb_sources(kb: str) -> list[dict]:
    return store().kb_sources(kb)


@st.cache_data(show_spinner=False, ttl=3)
def question_sets() -> list[dict]:
    return store().question_sets()


@st.cache_data(show_spinner=False, ttl=3)
def runs() -> list:
    return store().runs()


def results(run_id: str, findings: bool = True):
    """A run's results (`core.results.RunResults`: frames, figures, and with `findings` the
    statistics and the judge's trust), read once for each state of the run. The key is the
    run's status and error and how many answers, scores, repeat judgings and judge checks
    there are, so a finished run is read once and a running one again only when it has
    moved; a page rerun recomputes nothing."""
    s = store()
    run = s.run(run_id)
    return _results(s.uri, run_id, (run.status, run.error, *s.run_counts(run_id)), findings)


@st.cache_resource(show_spinner="Reading the run…", max_entries=8)
def _results(uri: str, run_id: str, state: tuple, findings: bool):
    from core.results import load

    return load(store(), run_id, findings=findings)  # shared, not copied: pages only read it


def paged_dataframe(df, key: str, page_size: int = 500, **kwargs) -> None:
    """st.dataframe of one page of rows at a time: a table of 40,000 rows is never sent whole."""
    pages = max(1, -(-len(df) // page_size))
    page = 1
    if pages > 1:
        # the page count is in the key: when a filter changes it, the table starts again at page 1
        page = st.number_input(f"Page (of {pages:,})", 1, pages, 1, key=f"{key}_{pages}")
        st.caption(f"Rows {(page - 1) * page_size + 1:,}–{min(page * page_size, len(df)):,} of {len(df):,}")
    st.dataframe(df.iloc[(page - 1) * page_size: page * page_size], **kwargs)


@st.cache_data(show_spinner=False, ttl=3)
def judge_trust(judge_config: str, strictness: int, faithfulness: str) -> dict:
    """The calibration figures of a judge (a ModelConfig as JSON, so it caches by value)."""
    import json

    from core.calibration import judge_trust as trust
    from core.config import ModelConfig

    return trust(store(), ModelConfig(**json.loads(judge_config)), strictness, faithfulness)


def faithfulness_judge_or_none(settings) -> str | None:
    """The faithfulness judge the settings choose, or None (with the reason shown) when they conflict."""
    from core.errors import ConfigError
    from core.judges import faithfulness_judge

    try:
        return faithfulness_judge(settings.faithfulness_judge, settings.judge_model)
    except ConfigError as e:
        st.error(md(e))
        return None


def trust_marks(trust: dict, metrics) -> None:
    """Beside the scores: per metric, whether the run's judge can be trusted on it, in words."""
    from core.report import trust_line

    lines = {True: [], False: []}
    for m in metrics:
        if m in trust:
            lines[bool(trust[m]["trusted"])].append(trust_line(m, trust[m]))  # our own words and numbers
    if lines[False]:
        st.warning("\n\n".join(lines[False]) + "\n\nCheck the judge in Settings.", icon=":material/gavel:")
    if lines[True]:
        st.success("\n\n".join(lines[True]), icon=":material/verified:")


def draw_calibration(figures: dict) -> None:
    """Per metric, how the judge did on the calibration set, in words a stakeholder reads.
    The sentences hold only our own words and numbers; st.text keeps them inert anyway."""
    from core.models import METRIC_LABELS

    for metric, f in figures.items():
        icon = {True: ":material/verified:", False: ":material/warning:", None: ":material/help:"}[f["trusted"]]
        verdict = ("uncalibrated" if f.get("calibrated") is False
                   else {True: "trustworthy", False: "not trustworthy", None: "not checked"}[f["trusted"]])
        with st.container(border=True):
            st.markdown(f"{icon} **{METRIC_LABELS[metric]}: {verdict}**")
            st.text(f["sentence"])
            if f.get("source") == "fit":
                st.caption(f"{f['items']} calibration items, cross-validated when the rule was fitted "
                           f"({f['checked_at'][:10]})")
            elif f.get("checked"):
                st.caption(f"{f['items']} calibration items · {f['seconds_per_item']:.1f} s per item · "
                           f"{f['unscored']}/{f['scored_answers']} answers unscored · checked {f['checked_at'][:16]}")
                for reason, n in f["unscored_reasons"].items():
                    st.text(f"unscored {n}×: {reason}")


def why_section(res) -> None:
    """Results: how many questions fall in each "why" class, each with its rule beside the count."""
    from core import charts, why

    summary = why.summary(res.why)
    st.markdown("**Why RAG changed the scores**")
    st.plotly_chart(charts.why_bar(summary["counts"]), width="stretch")
    st.dataframe([{"class": why.CLASSES[k], "questions": n, "rule": why.RULES[k]}
                  for k, n in summary["counts"].items()], hide_index=True, width="stretch")
    st.caption(f"{summary['unchanged']:,} questions where RAG changed no score by {why.CHANGE} or more are not "
               "counted. Rules are tried top to bottom; the first that fits wins.")


def why_line(res, question_id: str) -> None:
    """Drill-down: this question's "why" class in words, with the figures behind it."""
    from core import why

    row = why.classify(res.frame[res.frame["question_id"].to_numpy() == question_id]).iloc[0]  # not all 10,000
    st.markdown("**Why**")
    st.text(row["sentence"])  # our own words and numbers, kept inert anyway
    if row["why"] is not None:
        st.caption(why.RULES[row["why"]])


def draw_metric_details(details: dict) -> None:
    """What the judge said for the retrieval and reference metrics, for the drill-down."""
    if details.get("ratings"):
        st.caption("The two judges' ratings of the passages (0-2): " + ", ".join(map(str, details["ratings"])))
    if details.get("classifications"):
        st.caption("The reference answer's statements, attributed to the passages or not:")
        st.dataframe(details["classifications"], hide_index=True, width="stretch")
    if details.get("passage_verdicts"):
        st.caption("Each passage, useful for the reference answer or not (in rank order):")
        st.dataframe(details["passage_verdicts"], hide_index=True, width="stretch")
    for key, words in (("TP", "in the answer and the reference"), ("FP", "in the answer only"),
                       ("FN", "in the reference only")):
        if details.get(key):
            st.caption(f"Statements {words}: " + md(" · ".join(details[key])))
