"""Home: what the workspace holds, the latest run's headline, and the first-time path."""
import streamlit as st

from core.imports import import_seed
from core.models import METRIC_LABELS, MODE_LABELS
from core.runs import launch
from core.sources import DEMO_KB, demo_specs
from pages import ui

st.title("RAG Eval Studio")
st.caption("Does retrieval make the assistant's answers better, by how much, and where does it hurt?")

kbs, sets, runs = ui.kb_names(), ui.question_sets(), ui.runs()
c1, c2, c3 = st.columns(3)
c1.metric("Knowledge bases", len(kbs))
c2.metric("Question sets", len(sets))
c3.metric("Runs", len(runs))



def score_the_seed() -> None:
    """One click from nothing to a finished comparison: the seed evaluation's answers, judged
    against a knowledge base (the demo one is built first when it is not there)."""
    build = DEMO_KB not in kbs
    options = ([DEMO_KB] if build else []) + kbs
    with st.form("home_seed"):
        st.markdown("**Score the seed evaluation**: 30 questions about Requests, Flask and friends, each already "
                    "answered *LLM only* and *LLM + RAG* (`data/seed_evaluation.md`). Both answers of a question "
                    "are judged against the same passages from the knowledge base you choose.")
        kb = st.selectbox("Knowledge base (the evidence)", options, key="home_seed_kb",
                          format_func=lambda k: f"{k} — build it now from {len(demo_specs())} packages' docs "
                                                "(downloads ~5 MB from PyPI, about 3 min)" if k == DEMO_KB and build
                          else k)
        go = st.form_submit_button("Score the seed evaluation", type="primary", icon=":material/play_arrow:")
    if go:
        with ui.guard("seed evaluation"):
            if kb == DEMO_KB and build:
                ui.ingest_with_progress(demo_specs(), DEMO_KB)
            run = import_seed(ui.store(), ui.settings(), kb)
            launch(ui.settings(), ui.store(), run.id)
            ui.refresh()
            st.session_state["run_watch"] = run.id
            st.switch_page("pages/run.py")


latest = next((r for r in runs if r.status == "done"), None)
if latest is None:
    score_the_seed()
    st.subheader("Get started")
    steps = [
        (bool(kbs), "Build a knowledge base from your documentation", "pages/knowledge_base.py", ":material/database:"),
        (bool(sets), "Pick or upload the questions (the 30 seed questions are ready)", "pages/question_sets.py",
         ":material/quiz:"),
        (bool(runs), "Run both modes: LLM only and LLM + RAG", "pages/run.py", ":material/play_arrow:"),
        (False, "Explore the results", "pages/results.py", ":material/insights:"),
    ]
    for n, (done, text, page, icon) in enumerate(steps, 1):
        st.page_link(page, label=f"{n}. {text}" + ("  ✓" if done else ""), icon=icon)
else:
    res = ui.results(latest.id)
    st.subheader("Latest run")
    st.caption(f"{latest.id} · {latest.question_set} v{latest.question_set_version} on {latest.kb} · answers by "
               f"{ui.md(latest.answer_model)} · judged by {ui.md(latest.judge_model)}")
    cols = st.columns(len(latest.modes) * len(latest.metrics))
    i = 0
    for mode in latest.modes:
        for metric in latest.metrics:
            m = res.figures[(mode, metric)]
            value = "—" if m.mean is None else f"{m.mean:.2f}"
            cols[i].metric(f"{MODE_LABELS[mode]} · {METRIC_LABELS[metric]}", value,
                           help=f"{m.n_scored:,} scored, {m.n_unscored:,} unscored")
            i += 1
    for f in res.findings.values():
        st.markdown(ui.md(f["sentence"]))
    ui.demo_judge_note(latest.judge_model, latest.config.get("faithfulness_judge", "ragas"))
    with st.expander("Score the seed evaluation", icon=":material/play_arrow:"):
        score_the_seed()
    if st.button("Open results", icon=":material/insights:"):
        st.session_state["results_run"] = latest.id
        st.switch_page("pages/results.py")
