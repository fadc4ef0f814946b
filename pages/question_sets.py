"""Question sets: upload, validate, preview, edit, version, export and delete named sets;
import a file that already holds answers as a run, scored without regenerating them."""
import pandas as pd
import streamlit as st

from core.export import QUESTION_FORMATS, questions_bytes, questions_frame
from core.imports import import_run, set_name_for
from core.models import DEFAULT_METRICS, METRIC_LABELS, METRICS
from core.questions import SUFFIXES, parse_bytes, parse_records
from core.runs import launch
from pages import ui

st.title("Question sets")
st.caption("Columns: `question` (or `query`, `prompt`, `user_input`; required), `reference`, `category`, `id`. "
           "CSV / TSV (any delimiter; UTF-8, UTF-16 or Windows encoding), JSON, JSONL, XLSX, or the "
           "evaluation-markdown format (`## Q1: …`). Nothing is stored unless the whole file is valid.")
store = ui.store()

st.subheader("Upload a question file")
with st.container(border=True):
    up = st.file_uploader("Question file", type=[s.lstrip(".") for s in SUFFIXES], key="qs_upload")
    if up is not None:
        with ui.guard("upload"):
            parsed = parse_bytes(up.getvalue(), up.name)
            st.success(f"{ui.md(up.name)}: {len(parsed.questions)} questions" +
                       (f", {len(parsed.answers)} with answers already" if parsed.answers else ""))
            for note in parsed.dropped:
                st.caption(f"⚠ {ui.md(note)}")
            st.dataframe(questions_frame(parsed.questions), hide_index=True, width="stretch")
            with st.form("qs_save_upload"):
                name = st.text_input("Save as", value=set_name_for(up.name),
                                     help="an existing name gets a new version")
                if st.form_submit_button("Save question set", type="primary", icon=":material/save:"):
                    with ui.guard("save"):
                        qs = store.save_question_set(name, parsed.questions, origin=up.name)
                        ui.refresh()
                        st.session_state["qs_pick"] = qs.name
                        st.success(f"Saved '{ui.md(qs.name)}' version {qs.version} ({len(qs.questions)} questions).")
            if parsed.answers:
                with st.form("qs_import_run"):
                    st.markdown("**Import as a run**: score these answers without generating new ones. Where a "
                                "question has no `rag_contexts`, the evidence is retrieved from the knowledge base.")
                    kbs = ui.kb_names()
                    c1, c2 = st.columns(2)
                    kb = c1.selectbox("Knowledge base", kbs, key="qs_import_kb")
                    metrics = c2.multiselect("Metrics", METRICS, default=list(DEFAULT_METRICS),
                                             format_func=METRIC_LABELS.get, key="qs_import_metrics")
                    if st.form_submit_button("Import and score", icon=":material/upload:", disabled=not kbs,
                                             key="qs_import_go"):
                        with ui.guard("import"):
                            run = import_run(store, ui.settings(), parsed, up.name, kb, set_name=name,
                                             metrics=metrics)
                            launch(ui.settings(), ui.store(), run.id)
                            ui.refresh()
                            st.session_state["run_watch"] = run.id
                            st.switch_page("pages/run.py")
                    if not kbs:
                        st.caption("Build a knowledge base first: it supplies the evidence the answers are judged "
                                   "against.")

sets = ui.question_sets()
if not sets:
    st.info("No question sets yet.")
    st.stop()

st.subheader("Saved sets")
st.dataframe(pd.DataFrame(sets)[["name", "version", "count", "created_at", "origin"]], hide_index=True,
             width="stretch",
             column_config={"version": "Latest version", "count": "Questions", "created_at": "Saved",
                            "origin": "From file"})
c1, c2 = st.columns(2)
pick = c1.selectbox("Open a set", [s["name"] for s in sets], key="qs_pick")
versions = store.question_set_versions(pick)
version = c2.selectbox("Version", [v["version"] for v in versions], key=f"qs_version_{pick}",
                       format_func=lambda n: next(f"v{v['version']} · {v['count']} questions · {v['created_at']}"
                                                  for v in versions if v["version"] == n))
with st.expander(f"Version history ({len(versions)})"):
    st.table(pd.DataFrame(versions)[["version", "count", "created_at", "origin"]].set_index("version"))
qs = store.question_set(pick, version)
st.caption(f"'{ui.md(qs.name)}' version {qs.version} · {len(qs.questions)} questions · edit cells, add or delete "
           "rows, then save a new version.")
edited = st.data_editor(questions_frame(qs.questions), num_rows="dynamic", width="stretch", hide_index=True,
                        key=f"qs_editor_{qs.name}_{qs.version}",
                        column_config={"question": st.column_config.TextColumn("question", required=True,
                                                                               width="large")})
c1, c2, c3 = st.columns(3)
if c1.button("Save as new version", type="primary", icon=":material/save:"):
    with ui.guard("save"):
        parsed = parse_records(edited.fillna("").to_dict("records"), f"'{qs.name}' (edited)")
        saved = store.save_question_set(qs.name, parsed.questions, origin=f"edited from v{qs.version} in the app")
        ui.refresh()
        st.success(f"Saved '{ui.md(saved.name)}' version {saved.version} ({len(saved.questions)} questions).")
        for note in parsed.dropped:
            st.caption(f"⚠ {ui.md(note)}")
fmt = c2.selectbox("Export format", QUESTION_FORMATS, key="qs_export_format", label_visibility="collapsed")
c2.download_button(f"Download .{fmt}", questions_bytes(qs.questions, fmt), file_name=f"{qs.name}-v{qs.version}.{fmt}",
                   icon=":material/download:", key="qs_download")
with c3.popover("Delete set", icon=":material/delete:"):
    st.caption(f"Deletes every version of '{ui.md(qs.name)}'. Refused while runs use it.")
    if st.button("Delete all versions", type="primary", key="qs_delete"):
        with ui.guard("delete"):
            n = store.delete_question_set(qs.name)
            ui.refresh()
            st.session_state.pop("qs_pick", None)
            st.toast(f"Deleted '{qs.name}' ({n} versions)")
            st.rerun()
