"""Runs: the history, and two runs compared on the questions they share."""
import pandas as pd
import streamlit as st

from core import charts, gate, stats
from core.runs import setup_differences, status
from core.models import METRIC_LABELS, MODE_LABELS
from pages import ui

st.title("Runs")
runs = ui.runs()
if not runs:
    st.info("No runs yet: start one on the Run page.")
    st.page_link("pages/run.py", label="Go to Run", icon=":material/play_arrow:")
    st.stop()

now = {r.id: status(ui.store(), r) for r in runs}  # 'interrupted' when no live worker executes it any more
st.dataframe(pd.DataFrame([{
    "run": r.id, "created": r.created_at, "status": now[r.id] + (" (imported)" if r.imported else ""),
    "question set": f"{r.question_set} v{r.question_set_version}", "knowledge base": r.kb,
    "answer model": r.answer_model, "judge model": r.judge_model, "top-k": r.top_k, "search": r.search_mode,
    "modes": ", ".join(MODE_LABELS[m] for m in r.modes), "experiment": r.config.get("experiment", "")}
    for r in runs]), hide_index=True, width="stretch")

resumable = [r.id for r in runs if now[r.id] in ("incomplete", "cancelled", "failed", "interrupted")]
if resumable:
    with st.popover("Resume a run", icon=":material/replay:"):
        pick = st.selectbox("Run", resumable, key="runs_resume_pick")
        st.caption("Redoes what is missing and what failed for reasons that may pass (endpoint down, timeout, "
                   "429, 5xx), never what failed for good. It executes in the background; follow it on the Run page.")
        if st.button("Resume run", key="runs_resume"):
            from core.runs import launch

            with ui.guard("resume the run"):
                launch(ui.settings(), ui.store(), pick)
                ui.refresh()
                st.toast(f"Resumed run {pick}")
                st.rerun()

with st.popover("Delete a run", icon=":material/delete:"):
    doomed = st.selectbox("Run", [r.id for r in runs], key="runs_delete_pick")
    st.caption("Deletes the run with its answers, scores and repeat judgings. Refused while it is executing.")
    if st.button("Delete run", type="primary", key="runs_delete"):
        from core.runs import delete

        with ui.guard("delete the run"):
            delete(ui.store(), doomed)
            ui.refresh()
            st.toast(f"Deleted run {doomed}")
            st.rerun()

st.subheader("Compare two runs")
finished = [r for r in runs if r.status != "pending"]
if len(finished) < 2:
    st.caption("Two runs with results are needed: for example the same questions with another answer model, "
               "another top-k or another knowledge base.")
    st.stop()
by_id = {r.id: r for r in finished}
ids = list(by_id)


def describe(run_id: str) -> str:
    r = by_id[run_id]
    return f"{r.id} · {r.question_set} v{r.question_set_version} on {r.kb} · {r.answer_model} · top-{r.top_k}"


# By default the newest run (B) against the one before it (A); a shared link's choice wins.
wanted_a, wanted_b = st.query_params.get("a"), st.query_params.get("b")
wanted_b = wanted_b if wanted_b in ids else ids[0]
ui.init_choice("runs_a", wanted_a if wanted_a in ids else next(i for i in ids if i != wanted_b), ids)
ui.init_choice("runs_b", wanted_b, ids)
c1, c2 = st.columns(2)
a_id = c1.selectbox("Baseline run (A)", ids, key="runs_a", format_func=describe)
b_id = c2.selectbox("Compared run (B)", ids, key="runs_b", format_func=describe)
st.query_params["a"], st.query_params["b"] = a_id, b_id
a, b = by_id[a_id], by_id[b_id]
if a_id == b_id:
    st.info("Pick two different runs.")
    st.stop()

differs = setup_differences(a, b)
st.caption("What differs: " + ("; ".join(f"{label} {ui.md(x)} → {ui.md(y)}" for label, x, y in differs)
                               if differs else "nothing in the setup (a repeat of the same run)"))
if a.judge_model != b.judge_model:
    st.warning("The two runs were judged by different judges, so part of any difference may be the judges'.",
               icon=":material/gavel:")

modes = [m for m in MODE_LABELS if m in a.modes and m in b.modes]
metrics = [m for m in METRIC_LABELS if m in a.metrics and m in b.metrics]
if not modes or not metrics:
    st.warning("These runs share no mode or no metric, so there is nothing to compare.")
    st.stop()
mode = st.radio("Mode", modes, index=len(modes) - 1, format_func=MODE_LABELS.get, horizontal=True, key="runs_mode")
res_a, res_b = ui.results(a_id, findings=False), ui.results(b_id, findings=False)
comps, shared = stats.compare_runs(res_a.frame, res_b.frame, mode, metrics, cache=ui.store().intervals)
if shared == 0:
    st.warning("The two runs share no question (questions are matched by their text).")
    st.stop()
st.caption(f"{shared} questions in common, matched by their text; {MODE_LABELS[mode]} answers compared.")
for c in comps.values():
    st.markdown(f"**{ui.md(stats.headline(c, subject='Run B', against='compared with run A'))}**")
st.plotly_chart(charts.differences(comps, title=f"run B − run A, {MODE_LABELS[mode]}"), width="stretch")

if st.toggle("Gate run B against run A", key="runs_gate", help="What `python -m core gate` would decide in CI"):
    c1, c2 = st.columns(2)
    max_drop = c1.number_input("Max drop allowed", 0.0, 1.0, gate.MAX_DROP, 0.01, key="runs_gate_max_drop")
    significant = c2.checkbox("Fail only when the interval excludes zero", key="runs_gate_significant")
    with ui.guard("gate run B"):
        verdict = gate.decide(res_a.frame, res_b.frame, mode=mode, default_max_drop=max_drop,
                              require_significant=significant)
        for c in verdict.checks:
            icon = ":material/check_circle:" if c.passed else ":material/cancel:"
            st.markdown(f"{icon} {ui.md(c.line)}")
        flags = f" --max-drop {max_drop:g}" + (" --require-significant" if significant else "")
        st.caption(f"The gate {'passes' if verdict.passed else 'fails'}: `python -m core gate {b_id} --baseline "
                   f"{a_id} --mode {mode}{flags}` decides the same, exits {0 if verdict.passed else 1} and can "
                   "write JUnit XML for CI.")

metric = st.radio("Per question", metrics, format_func=METRIC_LABELS.get, horizontal=True, key="runs_metric")


table = stats.paired_questions(res_a.frame, res_b.frame, mode, metric)
ui.paged_dataframe(table.sort_values("change", na_position="first"), "runs_table_page", hide_index=True,
                   width="stretch", column_config={
    "run A": st.column_config.NumberColumn(format="%.2f"), "run B": st.column_config.NumberColumn(format="%.2f"),
    "change": st.column_config.NumberColumn(format="%+.2f")})
