"""Home: what the workspace holds and the latest run's headline."""
import streamlit as st

from core.models import METRIC_LABELS, MODE_LABELS
from pages import ui

st.title("RAG Eval Studio")
st.caption("Does retrieval make the assistant's answers better, by how much, and where does it hurt?")

data = ui.overview()
c1, c2, c3 = st.columns(3)
c1.metric("Knowledge bases", len(data["kbs"]))
c2.metric("Question sets", len(data["question_sets"]))
c3.metric("Runs", data["runs"])

latest = data["latest"]
if latest is None:
    st.info("No finished run yet. Build a knowledge base and run the questions from the command line: "
            "`python -m core ingest DOCS --kb NAME`, then `python -m core run --kb NAME`.")
else:
    run = latest["run"]
    st.subheader(f"Latest run · {run['id']}")
    st.caption(f"{run['question_set']} v{run['question_set_version']} on {run['kb']} · answers by "
               f"{run['answer_model']} · judged by {run['judge_model']}")
    for mode, metrics in latest["modes"].items():
        cols = st.columns(len(metrics))
        for col, (metric, m) in zip(cols, metrics.items()):
            value = "—" if m["mean"] is None else f"{m['mean']:.2f}"
            col.metric(f"{MODE_LABELS[mode]} · {METRIC_LABELS[metric]}", value,
                       help=f"{m['n_scored']} scored, {m['n_unscored']} unscored")
    if run["judge_model"].startswith("embedded:"):
        st.warning("Judged by the embedded 135M model: demo-grade. Connect a capable judge over an "
                   "OpenAI-compatible endpoint for scores you can rely on.")
