"""The dashboard's pages, routed by app.py's st.navigation.

Streamlit treats a folder named pages/ as its old file-based navigation until a script
calls st.navigation, so a first visit straight to a page's URL after the server starts
would run that page without app.py (no page config, file names as navigation). When
that happens, switch the old mode off and run again through app.py.
"""
from streamlit.runtime.pages_manager import PagesManager

if PagesManager.uses_pages_directory:
    import streamlit as st

    PagesManager.uses_pages_directory = False
    st.rerun()
