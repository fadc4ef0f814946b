"""Knowledge base: add sources (files, folders, Python packages, the demo set), ingest with progress,
list and delete sources, search."""
from pathlib import Path

import streamlit as st

from core.ingest import ingest
from core.retrieval import SEARCH_MODES, search
from core.sources import DEMO_KB, demo_specs
from core.sources.folder import check_allowed
from core.store import check_name
from pages import ui

UPLOAD_TYPES = ["md", "markdown", "rst", "txt", "html", "htm", "pdf", "zip"]

st.title("Knowledge base")
st.caption("Documentation the RAG mode retrieves from. Ingesting again embeds only what changed.")

settings, store = ui.settings(), ui.store()
names = ui.kb_names()
if "kb_pending" in st.session_state:  # select the knowledge base an ingest just created
    st.session_state["kb_choice"] = st.session_state.pop("kb_pending")
left, right = st.columns([2, 1])
choice = left.selectbox("Knowledge base", names + ["➕ New knowledge base"], key="kb_choice",
                        index=0 if names else None, placeholder="Create one below")
kb = choice if choice in names else right.text_input("New name", key="kb_new", placeholder="e.g. python-docs",
                                                     help="letters, digits, '_', '-' or '.'")


def ingest_with_progress(specs: list[str], kb: str) -> None:
    """Ingest with a progress bar, then show the report on the rerun that selects `kb`."""
    st.session_state["kb_report"] = ui.ingest_with_progress(specs, kb)
    st.session_state["kb_pending"] = kb
    st.rerun()


st.subheader("Add sources")
with st.form("kb_add", clear_on_submit=True):
    files = st.file_uploader("Files or .zip archives", type=UPLOAD_TYPES, accept_multiple_files=True,
                             help="Markdown, reStructuredText, text, HTML, PDF, or zip archives of them")
    roots = settings.ingest_roots
    folder = st.text_input("…or a folder on the server", placeholder=str(roots[0]) if roots else "/path/to/docs",
                           help="Read recursively; hidden files, and links leading out of the folder, are ignored. "
                                + (f"Allowed: inside {', '.join(str(r) for r in roots)}" if roots else
                                   "Off until the operator sets RAGEVAL_INGEST_ROOTS to the folders that may be read"))
    go = st.form_submit_button("Ingest", type="primary", icon=":material/upload:")

with st.expander("Python package documentation", icon=":material/package_2:"):
    st.caption("A package's docs, README and docstrings from its PyPI source distribution, or a standard-library "
               "module's docstrings; the package's code is read, never run. Downloads are cached in the workspace.")
    with st.form("kb_packages", clear_on_submit=True):
        packages = st.text_input("Packages", placeholder="pypi:flask pypi:requests==2.34.2 stdlib:sqlite3",
                                 key="kb_package_specs",
                                 help="pypi:NAME, pypi:NAME==VERSION or stdlib:MODULE, separated by spaces")
        add = st.form_submit_button("Ingest packages", icon=":material/download:")
    st.caption(f"The demo knowledge base **{DEMO_KB}** holds the documentation the 30 seed questions ask about: "
               + ", ".join(s.split(":", 1)[1].split("==")[0] for s in demo_specs()) + ".")
    demo = st.button("Build the demo knowledge base", icon=":material/library_books:", key="kb_demo")
if add and packages.split():
    with ui.guard("ingest"):
        if not kb:
            st.error("Name the knowledge base first.")
            st.stop()
        check_name("knowledge base", kb)
        ingest_with_progress(packages.split(), kb)
if demo:
    with ui.guard("demo knowledge base"):
        ingest_with_progress(demo_specs(), DEMO_KB)

if go:
    with ui.guard("ingest"):
        if not kb:
            st.error("Name the knowledge base first.")
            st.stop()
        check_name("knowledge base", kb)
        specs = []
        if files:
            # Uploads are kept under the workspace, one folder per knowledge base, so a
            # re-upload of the same file replaces its old chunks instead of adding new ones.
            target = settings.home / "uploads" / kb
            target.mkdir(parents=True, exist_ok=True)
            for f in files:
                path = target / Path(f.name).name
                path.write_bytes(f.getvalue())
                specs.append(str(path))
        if folder.strip():
            specs.append(str(check_allowed(folder, settings.ingest_roots)))  # only where the operator allows
        if not specs:
            st.warning("Choose files or name a folder to ingest.")
        else:
            ingest_with_progress(specs, kb)

report = st.session_state.pop("kb_report", None)
if report is not None:
    st.success(f"Ingested into {report.kb}: {report.documents} documents, {report.embedded_documents} embedded "
               f"({report.chunks_embedded} chunks), {report.unchanged} unchanged, "
               f"{report.deleted_documents} removed · {report.seconds:.1f} s", icon=":material/check_circle:")
    for source in report.removed_sources:
        st.warning(f"{ui.md(source)} yields no documents any more: its chunks were removed.")
    if report.skipped:
        st.warning(f"{len(report.skipped)} files were skipped:")
        st.dataframe([{"file": s.name, "reason": s.reason} for s in report.skipped], hide_index=True)

if kb in names:
    st.subheader("Sources")
    sources = ui.kb_sources(kb)
    if not sources:
        st.info("This knowledge base is empty.")
    else:
        uploads = str(settings.home / "uploads" / kb) + "/"

        def shown(source: str) -> str:
            return "uploaded: " + source[len(uploads):] if source.startswith(uploads) else source

        st.dataframe([{**s, "source": shown(s["source"])} for s in sources], hide_index=True, width="stretch",
                     column_config={"source": "Source", "documents": "Documents", "chunks": "Chunks",
                                    "ingested_at": "Last ingested"})
        index = store.vector_index(kb)
        if index is None:
            st.caption("Vector search is exact (no vector index at this size).")
        elif index.meets_target:
            st.caption(f"Vector search: {ui.md(index.describe())}.")
        else:
            st.warning(f"Vector and hybrid search may miss passages that exact search finds: "
                       f"{ui.md(index.describe())}.", icon=":material/warning:")
        c1, c2 = st.columns([3, 1])
        doomed = c1.selectbox("Delete a source", [s["source"] for s in sources], index=None, format_func=shown,
                              placeholder="Choose a source to delete", key="kb_delete_choice")
        if c2.button("Delete source", disabled=doomed is None, icon=":material/delete:"):
            with ui.guard("delete"):
                n = store.delete_source(kb, doomed)
                store.index_kb(kb)
                ui.refresh()
                st.success(f"Deleted {n} chunks of {ui.md(doomed)}.")
                st.rerun()

        st.subheader("Search")
        with st.form("kb_search"):
            q = st.text_input("Query", placeholder="How long does the remember-me cookie last?", key="kb_query")
            k = st.slider("Results per mode", 1, 10, settings.top_k)
            searched = st.form_submit_button("Search", icon=":material/search:")
        if searched and q.strip():
            with ui.guard("search"):
                cols = st.columns(len(SEARCH_MODES))
                labels = {"vector": "Vector", "fts": "Full-text", "hybrid": "Hybrid (RRF)"}
                for col, mode in zip(cols, SEARCH_MODES):
                    col.markdown(f"**{labels[mode]}**")
                    hits = search(store, kb, q, ui.embedder(settings.embedding_model), k, mode)
                    if not hits:
                        col.caption("No results.")
                    for i, p in enumerate(hits, 1):
                        with col.container(border=True):
                            st.caption(f"#{i} · score {p.score:.3f} · {ui.md(p.document)}")
                            st.text(p.text[:600] + ("…" if len(p.text) > 600 else ""))
