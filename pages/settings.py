"""Settings: models and endpoints, judge check, embedding model, chunking, retrieval, storage."""
import json
import os

import streamlit as st

from core import jobs
from core.calibration import check_key, launch_check
from core.config import PREFIX, ModelConfig, data_locations, load_settings, redact_url, save_values, saved_values, stored_model
from core.llm import get_llm
from pages import ui

st.title("Settings")
settings = ui.settings()
saved = saved_values(settings.home)
st.caption(f"Saved to `{settings.home / 'settings.json'}`. Environment variables win over saved values; "
           "fields they set are locked here. API keys are read from the environment or "
           "`.streamlit/secrets.toml` by name and are never shown or stored.")
values = dict(saved)


@st.fragment(run_every=2)
def follow_check(key: str) -> None:
    """A judge check running in the background: its progress, its log, and a way to stop it."""
    job = ui.store().job(key)
    if not jobs.alive(job):
        ui.refresh()
        st.rerun(scope="app")  # the check has ended: redraw the page with its figures
    st.progress(job.done / job.total if job.total else 0.0,
                text=f"Checking the judge in the background: {job.done} of {job.total or '?'} items")
    st.caption(f"Worker log: `{job.log}`")
    if st.button("Stop the check", key="settings_check_stop", icon=":material/stop:"):
        jobs.cancel(ui.store(), job.kind, job.target)
        st.toast("Stopping after the item in flight…")


def field(name: str, label: str, current, kind="text", **kw):
    """One setting: its input, locked when the environment sets it; records the new value."""
    env_name = PREFIX + name
    locked = env_name in os.environ
    help_text = f"{env_name}" + (" (set by the environment)" if locked else "")
    key = f"settings_{name}"
    if kind == "select":
        value = st.selectbox(label, kw["options"], index=kw["options"].index(str(current)), disabled=locked,
                             help=help_text, key=key)
    elif kind == "number":
        value = st.number_input(label, value=current, disabled=locked, help=help_text, key=key,
                                **{k: v for k, v in kw.items() if k in ("min_value", "max_value", "step")})
    else:
        # a URL is shown without the credentials it may hold; left as shown, it keeps them
        shown = redact_url(str(current))
        value = st.text_input(label, value=shown, disabled=locked, help=help_text, key=key,
                              placeholder=kw.get("placeholder", ""))
        value = current if value == shown else value
    if not locked:
        values[env_name] = str(value)


def model_section(role: str, cfg: ModelConfig):
    title = {"ANSWER": "Answer model", "JUDGE": "Judge model"}[role]
    st.subheader(title)
    field(f"{role}_BACKEND", "Backend", cfg.backend, "select", options=["embedded", "openai"])
    c1, c2 = st.columns(2)
    with c1:
        field(f"{role}_MODEL", "Model (GGUF path for embedded; model name for an endpoint)", cfg.model,
              placeholder="empty = SmolLM2-135M-Instruct (embedded)")
        field(f"{role}_BASE_URL", "Endpoint base URL (OpenAI-compatible)", cfg.base_url,
              placeholder="http://127.0.0.1:8080/v1")
    with c2:
        # only the variables the operator declared: the browser must not pick any variable's value to send
        field(f"{role}_API_KEY_ENV", "Environment variable holding the API key", cfg.api_key_env, "select",
              options=list(settings.api_key_envs))
        field(f"{role}_TEMPERATURE", "Temperature", float(cfg.temperature), "number", min_value=0.0,
              max_value=2.0, step=0.1)
        field(f"{role}_MAX_TOKENS", "Max tokens", int(cfg.max_tokens), "number", min_value=16, max_value=8192)
    if st.button(f"Test connection: {title.lower()}", key=f"settings_test_{role}", icon=":material/lan:"):
        with ui.guard("test connection"), st.spinner("Asking the model…"):
            c = get_llm(cfg, settings.threads).complete([{"role": "user", "content": "Reply with: OK"}],
                                                        max_tokens=8)
            st.success(f"{ui.md(c.model)} answered in {c.latency_s:.2f} s: {ui.md(repr(c.text.strip()[:80]))}")
    st.caption("The test uses the saved settings; save first after a change. API-key variables offered are "
               f"those the operator declared in `{PREFIX}API_KEY_ENVS` or `.streamlit/secrets.toml`.")


model_section("ANSWER", settings.answer_model)
model_section("JUDGE", settings.judge_model)
field("FAITHFULNESS_JUDGE", "Faithfulness judge", settings.faithfulness_judge, "select",
      options=["auto", "likelihood", "ragas"])
st.caption("**likelihood**: verdicts from how much more likely the evidence makes each statement under an embedded "
           "(GGUF) judge, with a rule fitted on the calibration set; **ragas**: RAGAS's LLM prompts, for a capable "
           "endpoint judge; **auto**: likelihood for an embedded judge, ragas for an endpoint.")
faithfulness = ui.faithfulness_judge_or_none(settings)
ui.demo_judge_note("embedded:" if settings.judge_model.backend == "embedded" else "", faithfulness or "ragas")

st.subheader("Check the judge")
st.caption("Scores the calibration set (answers of known quality, written by us) with the saved judge and "
           "counts how often it ranks the better answer first. A metric is trusted only at 80% or more. "
           "The result is stored for this judge and shown beside its scores until the judge changes.")
judge_json = json.dumps(stored_model(settings.judge_model))  # a cache key: no credentials in it
ui.draw_calibration(ui.judge_trust(judge_json, settings.relevancy_strictness, faithfulness or "ragas"))
c1, c2 = st.columns([1, 2])
with c1:
    limit = st.number_input("Calibration items (0 = all)", min_value=0, value=0, step=1, key="settings_check_limit")
check = jobs.get(ui.store(), "judge_check",
                 check_key(settings.judge_model, settings.relevancy_strictness, faithfulness or "ragas"))
if jobs.alive(check):
    follow_check(check.key)
elif st.button("Check the judge", key="settings_check_judge", icon=":material/fact_check:"):
    with ui.guard("judge check"):  # in a background worker: leaving or refreshing the page does not stop it
        launch_check(ui.store(), settings, int(limit) or None)
        st.rerun()
elif check is not None and check.status == "failed":
    st.error(f"The last check stopped: {ui.md(check.error)}", icon=":material/error:")

st.subheader("Retrieval and chunking")
c1, c2 = st.columns(2)
with c1:
    field("EMBEDDING_MODEL", "Embedding model folder", settings.embedding_model,
          placeholder="empty = all-MiniLM-L6-v2 (packaged)")
    field("CHUNK_TOKENS", "Chunk size (encoder tokens)", settings.chunk_tokens, "number", min_value=32, max_value=240)
    field("CHUNK_OVERLAP", "Chunk overlap (tokens)", settings.chunk_overlap, "number", min_value=0, max_value=119)
with c2:
    field("TOP_K", "Top-k passages", settings.top_k, "number", min_value=1, max_value=50)
    field("SEARCH_MODE", "Search mode", settings.search_mode, "select", options=["vector", "fts", "hybrid"])
    field("CONCURRENCY", "Questions at once", settings.concurrency, "number", min_value=1, max_value=64)

st.subheader("Storage")
where = data_locations(settings)
rows = [{"what": "knowledge bases, question sets, runs, answers, scores, judge checks, jobs",
         "where": where["database"], "kept": "shared: object storage" if where["shared"] else "this machine"}]
if where["shared"]:
    rows += [{"what": "object-storage endpoint (AWS_ENDPOINT_URL)", "where": where["endpoint"] or "AWS default",
              "kept": "environment"},
             {"what": "region (AWS_REGION)", "where": where["region"] or "not set", "kept": "environment"},
             {"what": "keys (values never shown)", "where": where["credentials"],
              "kept": "environment or .streamlit/secrets.toml"}]
rows += [{"what": what, "where": str(path), "kept": "this machine"} for what, path in where["local"].items()]
st.dataframe(rows, hide_index=True, width="stretch")
st.caption(f"Workspace folder on this machine: `{settings.home}` (set RAGEVAL_HOME to move it). The database "
           "goes to object storage with an `s3://bucket/prefix` URI below; its endpoint, region and keys are "
           "read from AWS_* variables, never saved here.")
field("STORAGE_URI", "LanceDB URI", settings.storage_uri, placeholder=f"empty = {settings.home / 'lancedb'}")

if st.button("Save settings", type="primary", icon=":material/save:"):
    with ui.guard("save"):
        save_values(settings.home, {k: v for k, v in values.items() if v != ""})
        load_settings()  # fails loudly now rather than on the next page
        ui.refresh()
        st.success("Saved. New runs use these settings; running ones keep theirs.")
