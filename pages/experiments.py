"""Experiments: one question set over a grid of settings, ranked against a baseline configuration."""
import streamlit as st

from core import charts, experiments, jobs
from core.models import DEFAULT_METRICS, METRIC_LABELS, METRICS, MODE_LABELS, MODES
from core.retrieval import SEARCH_MODES
from core.runs import model_choices
from pages import ui

st.title("Experiments")
st.caption("Runs the same questions once per combination of the values below, as ordinary runs grouped "
           "under one experiment, one after another in a background process. The first value of each list is "
           "the baseline's. Another chunk size or encoder builds a knowledge base from the base's sources once, "
           "and later experiments reuse it.")
settings, store = ui.settings(), ui.store()
kbs, sets = ui.kb_names(), ui.question_sets()
models = model_choices(settings)
CHUNKS = ["base", 64, 96, 128, 160, 200, 240]

if not kbs:
    st.info("Build a knowledge base first: every configuration retrieves from it, or from one built from its sources.")
    st.page_link("pages/knowledge_base.py", label="Go to Knowledge base", icon=":material/database:")
else:
    with st.form("experiments_form"):
        name = st.text_input("Name", placeholder="top-k and chunking", key="experiments_name")
        c1, c2 = st.columns(2)
        qs_name = c1.selectbox("Question set", [s["name"] for s in sets], key="experiments_qs")
        kb = c2.selectbox("Base knowledge base", kbs, key="experiments_kb")
        modes = c1.multiselect("Modes", MODES, default=["rag"], format_func=MODE_LABELS.get, key="experiments_modes")
        metrics = c2.multiselect("Metrics", METRICS, default=list(DEFAULT_METRICS), format_func=METRIC_LABELS.get,
                                 key="experiments_metrics")
        c3, c4 = st.columns(2)
        top_k = c3.multiselect("Top-k", list(range(1, 21)), default=[settings.top_k], key="experiments_top_k")
        search = c4.multiselect("Search", SEARCH_MODES, default=[settings.search_mode], key="experiments_search")
        chunks = c3.multiselect("Chunk size (tokens)", CHUNKS, default=["base"], key="experiments_chunks",
                                help="base: the knowledge base as it is")
        answer = c4.multiselect("Answer model", list(models), default=[next(iter(models))], key="experiments_answer")
        encoders = st.text_input("Encoders (comma-separated model folders; base: the knowledge base's own)", "base",
                                 key="experiments_encoders")
        limit = st.number_input("Only the first N questions (0 = all)", 0, 50_000, 0, key="experiments_limit")
        started = st.form_submit_button("Start experiment", type="primary", icon=":material/science:")
    if started:
        with ui.guard("start the experiment"):
            exp = experiments.create_experiment(
                store, settings, name, kb, qs_name, modes=modes, metrics=metrics, limit=limit or None,
                top_k=top_k, search_mode=search, chunk_tokens=[None if c == "base" else c for c in chunks],
                embedding_model=[None if e.strip() == "base" else e.strip() for e in encoders.split(",") if e.strip()],
                answer_model=[models[a] for a in answer])
            experiments.launch(settings, store, exp.id)
            st.session_state["experiments_watch"] = exp.id
            st.toast(f"Started experiment {exp.id}: {len(exp.configs)} configurations", icon=":material/science:")

exps = store.experiments()
if not exps:
    st.stop()
st.subheader("Leaderboard")
ids = [e.id for e in exps]
ui.init_choice("experiments_pick", st.session_state.pop("experiments_watch", None) or st.query_params.get("exp"),
               ids, force=True)
exp_id = st.selectbox("Experiment", ids, key="experiments_pick",
                      format_func=lambda i: next(f"{e.id} · {e.name} · {len(e.configs)} configurations"
                                                 for e in exps if e.id == i))
st.query_params["exp"] = exp_id
active = jobs.alive(jobs.get(store, "experiment", exp_id))


@st.fragment(run_every=3 if active else None)
def live(exp_id: str):
    exp = store.experiment(exp_id)
    job = jobs.get(store, "experiment", exp_id)
    now, working = experiments.status(store, exp), jobs.alive(job)
    done, total = (job.done, job.total) if job is not None else (0, 0)
    st.progress(done / total if total else 0.0, text=f"{now} · {done} of {total} items")
    c1, c2 = st.columns(2)
    if working and c1.button("Cancel", icon=":material/stop:", key="experiments_cancel"):
        with ui.guard("cancel"):
            st.toast(experiments.cancel(store, exp_id))
    if not working and now != "done" and c1.button("Resume", icon=":material/replay:", key="experiments_resume"):
        with ui.guard("resume"):
            experiments.launch(settings, store, exp_id)
            st.rerun()
    if job is not None and job.log:
        c2.caption(f"Worker log: `{job.log}`")
    if exp.error:
        st.warning(ui.md(exp.error))
    labels = [f"#{i + 1} {experiments.config_label(exp, i)}" for i in range(len(exp.configs))]
    c1, c2 = st.columns(2)
    baseline = c1.selectbox("Baseline", range(len(labels)), format_func=labels.__getitem__,
                            key="experiments_baseline")
    mode = c2.radio("Answers", exp.modes, index=len(exp.modes) - 1, format_func=MODE_LABELS.get, horizontal=True,
                    key="experiments_mode")
    with ui.guard("read the leaderboard"):
        board = experiments.leaderboard(store, exp_id, baseline, mode)
        st.caption(f"Each configuration against #{baseline + 1} on the questions both asked: mean difference, 95% "
                   "bootstrap interval, Wilcoxon p-value Holm-adjusted across the configurations (per metric).")
        rows = board.rows.assign(metric=board.rows["metric"].map(METRIC_LABELS.get))
        numbers = {"mean": "Mean", "mean_diff": "Difference", "ci_low": "95% CI from", "ci_high": "to",
                   "p_value": "p", "p_holm": "p (Holm)"}
        rows = rows.astype({c: float for c in numbers})  # the baseline's row: empty cells, not "None"
        names = {"config": "#", "label": "Configuration", "run_id": "Run", "status": "Status", "metric": "Metric",
                 "n_scored": "Scored", "n_pairs": "Pairs", "wins": "Better", "ties": "Tied", "losses": "Worse",
                 "gate": "Gate"}
        st.dataframe(rows.drop(columns=["baseline"]), hide_index=True, width="stretch", column_config={
            **{c: st.column_config.NumberColumn(label, format="%+.3f" if c in ("mean_diff", "ci_low", "ci_high")
                                                else "%.3f") for c, label in numbers.items()},
            **{c: st.column_config.Column(label) for c, label in names.items()}})
        if board.rows["mean_diff"].notna().any():
            st.plotly_chart(charts.experiment_differences(board.rows, labels[baseline]), width="stretch")
        st.caption(f"The same from the command line: `python -m core experiment show {exp_id} --baseline "
                   f"{baseline + 1} --mode {mode}`; each run opens on the Results page.")
    if not working and active:
        st.rerun(scope="app")


live(exp_id)
