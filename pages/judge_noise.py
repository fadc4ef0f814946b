"""The judge-variance part of the Results page: judge every answer again k times in the
background and show how much each answer's score moved."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import jobs
from core.models import METRIC_LABELS, MODE_LABELS
from pages import ui


def _running(run_id: str) -> bool:
    return jobs.alive(jobs.get(ui.store(), "rejudge", run_id))


def section(res) -> None:
    run = res.run_json()
    answered = res.answered
    with st.expander("Judge variance: could the judge's own noise explain the difference?",
                     expanded=bool(len(res.repeats))):
        st.caption("Each answer is judged again several times at a temperature above zero, bypassing the cache. "
                   "The spread of those scores is the judge's own noise; the findings above then say whether "
                   "the observed difference is larger than that noise.")
        if _running(run["id"]):
            _follow(run["id"])
            return
        if len(res.repeats):
            _spread(res.repeats)
        with st.form(f"results_rejudge_form_{run['id']}", border=False):
            c1, c2 = st.columns(2)
            repeats = c1.number_input("Judgings per answer", 2, 10, 3, key="results_repeats")
            temperature = c2.slider("Judge temperature", 0.1, 1.5, 0.7, 0.1, key="results_temperature")
            st.caption(f"About {answered * len(run['metrics']) * repeats} judgings ({answered} answers × "
                       f"{len(run['metrics'])} metrics × {repeats}); judgings already stored are kept.")
            if st.form_submit_button("Judge every answer again", icon=":material/replay:"):
                from core.runs import launch

                with ui.guard("judge again"):
                    launch(ui.settings(), ui.store(), run["id"], "rejudge", run["id"], "--repeats", str(repeats),
                           "--temperature", str(temperature))
                    st.rerun()


@st.fragment(run_every=3)
def _follow(run_id: str) -> None:
    job = jobs.get(ui.store(), "rejudge", run_id)
    if not jobs.alive(job):
        ui.refresh()
        st.rerun(scope="app")
    st.info(f"Judging again in the background: {job.done} of {job.total} judgings made so far.",
            icon=":material/hourglass_top:")
    if st.button("Stop judging", key=f"results_rejudge_stop_{run_id}", icon=":material/stop:"):
        jobs.cancel(ui.store(), "rejudge", run_id)
        st.toast("Stopping after the judging in flight…")


def _spread(repeats: pd.DataFrame) -> None:
    g = repeats.groupby(["question_id", "mode", "metric"])["value"]
    table = g.agg(judgings="count", low="min", high="max", sd="std").reset_index()
    table["crosses 0.5"] = (table["low"] < 0.5) & (table["high"] >= 0.5)
    table["mode"], table["metric"] = table["mode"].map(MODE_LABELS), table["metric"].map(METRIC_LABELS)
    st.markdown(f"**{int(table['crosses 0.5'].sum())}** of {len(table)} answers crossed 0.5 between judgings.")
    st.dataframe(table.sort_values("sd", ascending=False), hide_index=True, width="stretch", column_config={
        "low": st.column_config.NumberColumn(format="%.2f"), "high": st.column_config.NumberColumn(format="%.2f"),
        "sd": st.column_config.NumberColumn("spread (SD)", format="%.3f")})
