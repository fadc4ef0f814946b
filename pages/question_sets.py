"""Question sets: upload, validate, preview, edit and save as named, versioned sets."""
import pandas as pd
import streamlit as st

from core.export import csv_bytes
from core.questions import parse_bytes, parse_records
from pages import ui

st.title("Question sets")
st.caption("Columns: `question` (required), `reference`, `category`, `id`. CSV, JSON, JSONL or the "
           "evaluation-markdown format (`## Q1: …`). Nothing is stored unless the whole file is valid.")
store = ui.store()


def frame(questions) -> pd.DataFrame:
    return pd.DataFrame([{"id": q.id, "question": q.question, "reference": q.reference, "category": q.category}
                         for q in questions], columns=["id", "question", "reference", "category"])


st.subheader("Upload a question file")
with st.container(border=True):
    up = st.file_uploader("Question file", type=["csv", "tsv", "json", "jsonl", "md"], key="qs_upload")
    if up is not None:
        with ui.guard("upload"):
            parsed = parse_bytes(up.getvalue(), up.name)
            st.success(f"{ui.md(up.name)}: {len(parsed.questions)} questions" +
                       (f", {len(parsed.answers)} with answers already" if parsed.answers else ""))
            for note in parsed.dropped:
                st.caption(f"⚠ {note}")
            st.dataframe(frame(parsed.questions), hide_index=True, width="stretch")
            with st.form("qs_save_upload"):
                default = up.name.rsplit(".", 1)[0].replace(" ", "-")[:64]
                name = st.text_input("Save as", value=default, help="an existing name gets a new version")
                if st.form_submit_button("Save question set", type="primary", icon=":material/save:"):
                    with ui.guard("save"):
                        qs = store.save_question_set(name, parsed.questions, origin=up.name)
                        ui.refresh()
                        st.session_state["qs_pick"] = qs.name
                        st.success(f"Saved '{qs.name}' version {qs.version} ({len(qs.questions)} questions).")

sets = ui.question_sets()
if not sets:
    st.info("No question sets yet.")
    st.stop()

st.subheader("Saved sets")
st.dataframe(pd.DataFrame(sets)[["name", "version", "count", "created_at", "origin"]], hide_index=True,
             width="stretch",
             column_config={"version": "Latest version", "count": "Questions", "created_at": "Saved",
                            "origin": "From file"})
names = [s["name"] for s in sets]
pick = st.selectbox("Open a set", names, key="qs_pick")
qs = store.question_set(pick)
st.caption(f"'{qs.name}' version {qs.version} · {len(qs.questions)} questions · edit cells, add or delete rows, "
           "then save a new version.")
edited = st.data_editor(frame(qs.questions), num_rows="dynamic", width="stretch", hide_index=True,
                        key=f"qs_editor_{qs.name}_{qs.version}",
                        column_config={"question": st.column_config.TextColumn("question", required=True,
                                                                               width="large")})
c1, c2 = st.columns(2)
if c1.button("Save as new version", type="primary", icon=":material/save:"):
    with ui.guard("save"):
        records = edited.fillna("").to_dict("records")
        parsed = parse_records(records, f"'{qs.name}' (edited)")
        saved = store.save_question_set(qs.name, parsed.questions, origin="edited in the app")
        ui.refresh()
        st.success(f"Saved '{saved.name}' version {saved.version} ({len(saved.questions)} questions).")
        for note in parsed.dropped:
            st.caption(f"⚠ {note}")
c2.download_button("Download CSV", csv_bytes(frame(qs.questions)),
                   file_name=f"{qs.name}-v{qs.version}.csv", mime="text/csv", icon=":material/download:")
