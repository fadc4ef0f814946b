"""Run: choose what to evaluate, see the work it means, start it in the background, watch it."""
import dataclasses

import pandas as pd
import streamlit as st

from core.models import DEFAULT_METRICS, METRIC_LABELS, METRICS, MODE_LABELS, MODES
from core.results import NOT_ANSWERED, NOT_SCORED
from core.retrieval import SEARCH_MODES
from core.results import counts_line
from core import jobs
from core.runs import cancel, create_run, estimate, launch, model_choices, status
from pages import ui

st.title("Run")
st.caption("Answers every question in each mode and scores every answer. Runs execute in a background "
           "process: refreshing or closing this tab does not stop them.")
settings, store = ui.settings(), ui.store()
kbs, sets = ui.kb_names(), ui.question_sets()

# Each configured model keeps its whole configuration (temperature, tokens, context, endpoint):
# the choices are the configurations themselves, named by their role where labels coincide.
models = model_choices(settings)

if not kbs:
    st.info("Build a knowledge base first: the RAG mode reads it, and both modes are judged against it.")
    st.page_link("pages/knowledge_base.py", label="Go to Knowledge base", icon=":material/database:")
else:
    # No form: the estimate below follows every choice as it is made.
    c1, c2 = st.columns(2)
    qs_name = c1.selectbox("Question set", [s["name"] for s in sets], key="run_qs",
                           format_func=lambda n: next(f"{n} (v{s['version']}, {s['count']} questions)"
                                                      for s in sets if s["name"] == n))
    kb = c2.selectbox("Knowledge base", kbs)
    configs = list(models.values())
    answer_label = c1.selectbox("Answer model", list(models), index=configs.index(settings.answer_model))
    judge_label = c2.selectbox("Judge model", list(models), index=configs.index(settings.judge_model))
    modes = c1.multiselect("Modes", MODES, default=list(MODES), format_func=MODE_LABELS.get)
    metrics = c2.multiselect("Metrics", METRICS, default=list(DEFAULT_METRICS), format_func=METRIC_LABELS.get)
    c3, c4, c5 = st.columns(3)
    top_k = c3.number_input("Top-k passages", 1, 50, settings.top_k)
    search_mode = c4.selectbox("Search", SEARCH_MODES, index=SEARCH_MODES.index(settings.search_mode))
    limit = c5.number_input("Only the first N questions (0 = all)", 0, 50_000, 0)
    count = next(s["count"] for s in sets if s["name"] == qs_name)
    chosen = dataclasses.replace(settings, answer_model=models[answer_label], judge_model=models[judge_label])
    with ui.guard("estimate"):
        st.caption(estimate(chosen, min(count, limit) if limit else count, modes, metrics).sentence())
    if st.button("Start run", type="primary", icon=":material/play_arrow:", disabled=not modes):
        with ui.guard("start"):
            run = create_run(store, chosen, kb, qs_name, modes=modes, metrics=metrics, limit=limit or None,
                             top_k=int(top_k), search_mode=search_mode)
            launch(settings, store, run.id)
            ui.refresh()
            st.session_state["run_watch"] = run.id
            st.toast(f"Started run {run.id}", icon=":material/rocket_launch:")

runs = ui.runs()
if runs:
    st.subheader("Progress")
    ids = [r.id for r in runs]
    started = st.session_state.pop("run_watch", None)  # the run this page just started
    ui.init_choice("run_pick", started, ids, force=True)
    run_id = st.selectbox("Run", ids, key="run_pick",
                          format_func=lambda i: next(f"{r.id} · {r.status} · {r.question_set} on {r.kb}"
                                                     for r in runs if r.id == i))

    active = jobs.alive(jobs.get(store, "run", run_id))  # a worker is on it: follow it live

    @st.fragment(run_every=2 if active else None)
    def live(run_id: str):
        run = store.run(run_id)
        res = ui.results(run_id, findings=False)
        done, total = res.done, res.total
        now, job = status(store, run), jobs.get(store, "run", run_id)
        working = jobs.alive(job)
        st.progress(done / total if total else 0.0, text=f"{now} · {done} of {total} items")
        ui.demo_judge_note(run.judge_model, run.config.get("faithfulness_judge", "ragas"))
        c1, c2, c3 = st.columns(3)
        if working and c1.button("Cancel", icon=":material/stop:", key="run_cancel"):
            with ui.guard("cancel"):
                st.toast(cancel(store, run.id))
        if not working and now != "done" and c1.button("Resume", icon=":material/replay:", key="run_resume"):
            with ui.guard("resume"):
                launch(ui.settings(), store, run.id)
                st.toast(f"Resumed run {run.id}")
                st.rerun()
        if done and c2.button("Open results", icon=":material/insights:", key="run_results"):
            st.session_state["results_run"] = run.id
            st.switch_page("pages/results.py")
        if job is not None and job.log:
            st.caption(f"Worker log: `{job.log}`")
        if now == "incomplete":  # retryable failures (endpoint down, timeout, 429, 5xx) are left
            st.warning(f"Some calls failed for reasons that may pass: {ui.md(counts_line(res.counts))}. "
                       "Resume retries exactly those.", icon=":material/replay:")
        elif run.error:
            st.error(f"The run stopped: {ui.md(run.error)}")
        ui.paged_dataframe(progress_table(res), "run_table_page", hide_index=True, width="stretch")
        if not working and active:
            ui.refresh()
            st.rerun(scope="app")  # the run has ended: redraw the page without auto-refresh

    def progress_table(res) -> pd.DataFrame:
        """One row per question and mode: waiting, answered or not, and each metric's score."""
        items = res.questions[["question_id", "question"]].loc[
            res.questions.index.repeat(len(res.run.modes))].reset_index(drop=True)
        items["mode"] = list(res.run.modes) * len(res.questions)
        items = items.merge(res.answers[["question_id", "mode", "error", "retryable"]], how="left",
                            on=["question_id", "mode"])
        state = items["error"].map(lambda e: "waiting" if pd.isna(e) else "no answer" if e else "answered")
        table = pd.DataFrame({"question": items["question"], "mode": items["mode"].map(MODE_LABELS),
                              "status": state.where(~items["retryable"].fillna(False).astype(bool), "to retry")})
        k = len(res.run.metrics)
        for j, metric in enumerate(res.run.metrics):  # the frame holds (question, mode, metric) in this order
            f = res.frame.iloc[j::k]
            cell = f["value"].map(lambda v: f"{v:.2f}").where(f["value"].notna(), "unscored")
            cell = cell.where(~f["retryable"], "to retry")
            waiting = f["reason"].isin([NOT_ANSWERED, NOT_SCORED])
            table[METRIC_LABELS[metric]] = cell.where(~waiting, "").to_numpy()
        return table

    live(run_id)
