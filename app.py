"""RAG Eval Studio — entry point: page config and navigation."""
import streamlit as st

st.set_page_config(page_title="RAG Eval Studio", page_icon=":material/fact_check:", layout="wide")

pages = {
    "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Prepare": [
        st.Page("pages/knowledge_base.py", title="Knowledge base", icon=":material/database:"),
        st.Page("pages/question_sets.py", title="Question sets", icon=":material/quiz:"),
    ],
    "Evaluate": [
        st.Page("pages/run.py", title="Run", icon=":material/play_arrow:"),
        st.Page("pages/ask.py", title="Ask", icon=":material/chat:"),
        st.Page("pages/results.py", title="Results", icon=":material/insights:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/compare_arrows:"),
        st.Page("pages/experiments.py", title="Experiments", icon=":material/science:"),
        st.Page("pages/report.py", title="Report", icon=":material/summarize:"),
    ],
    "Configure": [st.Page("pages/settings.py", title="Settings", icon=":material/settings:")],
}
st.navigation(pages).run()
