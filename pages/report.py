"""Report: the findings of one run as a file a stakeholder can open anywhere."""
import streamlit as st

from core.report import export_bytes, html_report
from pages import ui

st.title("Report")
run_id = ui.pick_run("report_run")
res = ui.results(run_id)
run = res.run
if run.status != "done":
    st.warning(f"This run is {run.status}: the report covers the items finished so far.")

st.markdown("One HTML file holds the setup, the findings in plain sentences, the interactive charts, the best and "
            "worst examples with both answers side by side, and a note on method. It opens offline in any "
            "browser: Plotly's JavaScript is inside the file.")
if res.both_modes:
    with st.container(border=True):
        for f in res.findings.values():
            st.markdown(ui.md(f["sentence"]))
ui.demo_judge_note(run.judge_model, run.config.get("faithfulness_judge", "ragas"))
ui.trust_marks(res.trust, run.metrics)

name = f"rag-eval-{run_id}"
c1, c2, c3, c4 = st.columns(4)
c1.download_button("HTML report", lambda: html_report(ui.store(), res).encode("utf-8"), f"{name}.html", "text/html",
                   type="primary", icon=":material/description:", on_click="ignore", key="report_html")
for col, fmt, mime in ((c2, "csv", "text/csv"), (c3, "parquet", "application/vnd.apache.parquet"),
                       (c4, "json", "application/json")):
    col.download_button(f"Results as {fmt.upper()}", lambda fmt=fmt: export_bytes(ui.store(), res, fmt), f"{name}.{fmt}", mime,
                        icon=":material/download:", on_click="ignore", key=f"report_{fmt}")
st.caption("The data files hold one row per question and mode: the answer, each score, and why a score is "
           "missing. CSV cells that a spreadsheet would run as a formula are made inert.")
