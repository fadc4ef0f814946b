"""Ask: one typed question answered in both modes side by side, with passages and scores."""
import streamlit as st

from core.models import METRIC_LABELS, MODE_LABELS
from core.playground import ask
from pages import ui

st.title("Ask")
st.caption("Try one question before a whole run. Nothing here is stored.")
settings, store = ui.settings(), ui.store()
kbs = ui.kb_names()
if not kbs:
    st.info("Build a knowledge base first.")
    st.page_link("pages/knowledge_base.py", label="Go to Knowledge base", icon=":material/database:")
    st.stop()

with st.form("ask_form"):
    question = st.text_area("Question", placeholder="How do I connect to an SQLite database?", key="ask_question")
    c1, c2, c3 = st.columns(3)
    kb = c1.selectbox("Knowledge base", kbs)
    top_k = c2.number_input("Top-k", 1, 20, settings.top_k)
    judge = c3.toggle("Score the answers", value=True, help="about 20 s more on the embedded judge")
    asked = st.form_submit_button("Ask", type="primary", icon=":material/send:")

if asked:
    with ui.guard("ask"), st.spinner("Retrieving, answering in both modes" + (" and judging…" if judge else "…")):
        result = ask(store, settings, ui.embedder(settings.embedding_model), kb, question, top_k=int(top_k),
                     metrics=("faithfulness", "answer_relevancy") if judge else ())
        st.session_state["ask_result"] = result

result = st.session_state.get("ask_result")
if result is not None:
    if any(result.scores.values()):
        judged_by = next(s.judge for by_metric in result.scores.values() for s in by_metric.values())
        ui.demo_judge_note(judged_by, "likelihood" if " likelihood:" in judged_by else "ragas")
    cols = st.columns(len(result.answers))
    for col, (mode, a) in zip(cols, result.answers.items()):
        with col:
            st.markdown(f"#### {MODE_LABELS[mode]}")
            with st.container(border=True):
                if a.error:
                    st.error(ui.md(a.error))
                st.text(a.text)
            st.caption(f"{a.latency_s:.1f} s · {a.completion_tokens} tokens · {ui.md(a.model)}")
            for metric, s in result.scores[mode].items():
                st.markdown(f"**{METRIC_LABELS[metric]}**: " +
                            (f"{s.value:.2f}" if s.value is not None else f"unscored — {ui.md(s.reason)}"))
                if s.details.get("verdicts"):
                    with st.expander("Statement by statement"):
                        ui.draw_verdicts(s.details, [{"id": p.id} for p in result.passages])
    st.markdown(f"**Retrieved passages** ({len(result.passages)})")
    for n, p in enumerate(result.passages, 1):
        with st.container(border=True):
            where = ui.md(p.document) + (f" › {ui.md(p.section)}" if p.section else "")
            st.caption(f"#{n} · score {p.score:.3f} · {where}")
            st.text(p.text)
