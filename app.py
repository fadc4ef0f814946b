"""RAG Eval Studio — entry point: page config and navigation."""
import streamlit as st

st.set_page_config(page_title="RAG Eval Studio", page_icon=":material/fact_check:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
]
st.navigation(pages).run()
