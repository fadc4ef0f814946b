"""The pages' one door to core: cached heavy objects and reads, and one way to refresh them."""
from __future__ import annotations

import streamlit as st

from core.config import Settings, load_settings
from core.store import Store
from core.workspace import open_workspace


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner="Opening the workspace…")
def store() -> Store:
    return open_workspace(settings())


def refresh() -> None:
    """Forget cached reads after a write, so every page shows the store as it is."""
    st.cache_data.clear()


@st.cache_data(show_spinner=False, ttl=5)
def overview() -> dict:
    from core.runs import summary

    s = store()
    runs = s.runs()
    latest = next((r for r in runs if r.status == "done"), None)
    return {
        "kbs": {kb: s.kb_sources(kb) for kb in s.kb_names()},
        "question_sets": s.question_sets(),
        "runs": len(runs),
        "latest": summary(s, latest.id) if latest else None,
    }
