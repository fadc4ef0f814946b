"""What only the operator decides: which API-key variables a model may read, which server folders the
pages may ingest. The browser (the Settings page, the saved settings file) cannot widen either."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT, load_settings, save_values, saved_values, secret_names
from core.errors import ConfigError, SourceError
from core.sources.folder import check_allowed

from tests.conftest import write_docs


@pytest.fixture(autouse=True)
def fresh_caches():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def test_a_model_may_name_only_a_declared_api_key_variable(tmp_path):
    env = {"RAGEVAL_HOME": str(tmp_path), "RAGEVAL_JUDGE_API_KEY_ENV": "AWS_SECRET_ACCESS_KEY"}
    with pytest.raises(ConfigError, match=r"setting RAGEVAL_JUDGE_API_KEY_ENV='AWS_SECRET_ACCESS_KEY' is not a "
                                          r"declared API-key variable \(declared: OPENAI_API_KEY.*RAGEVAL_API_KEY_ENVS"):
        load_settings(env, use_file=False)
    ok = load_settings({**env, "RAGEVAL_API_KEY_ENVS": "OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY"}, use_file=False)
    assert ok.judge_model.api_key_env == "AWS_SECRET_ACCESS_KEY"
    assert ok.api_key_envs[:2] == ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY")


def test_secrets_toml_declares_its_keys_by_name(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text('MY_LLM_KEY = "value"\nlower = "x"\nNUMBER = 3\n[section]\nINNER = "y"\n')
    assert secret_names(path) == ["MY_LLM_KEY"]
    assert secret_names(tmp_path / "missing.toml") == []


def test_operator_settings_are_never_read_from_or_saved_to_the_settings_file(tmp_path, monkeypatch):
    monkeypatch.delenv("RAGEVAL_API_KEY_ENVS", raising=False)
    (tmp_path / "settings.json").write_text(json.dumps({"RAGEVAL_API_KEY_ENVS": "AWS_SECRET_ACCESS_KEY",
                                                        "RAGEVAL_INGEST_ROOTS": "/", "RAGEVAL_TOP_K": "5"}))
    assert saved_values(tmp_path) == {"RAGEVAL_TOP_K": "5"}
    save_values(tmp_path, {"RAGEVAL_INGEST_ROOTS": "/", "RAGEVAL_TOP_K": "6"})
    assert json.loads((tmp_path / "settings.json").read_text()) == {"RAGEVAL_TOP_K": "6"}
    with pytest.raises(ConfigError, match="RAGEVAL_ANSWER_API_KEY_ENV='AWS_SECRET_ACCESS_KEY' is not a declared"):
        save_values(tmp_path, {"RAGEVAL_ANSWER_API_KEY_ENV": "AWS_SECRET_ACCESS_KEY"})


def test_server_folders_are_allowed_only_inside_the_configured_roots(tmp_path):
    allowed = write_docs(tmp_path / "allowed" / "docs")
    other = write_docs(tmp_path / "other")
    (tmp_path / "allowed" / "escape").symlink_to(other)
    with pytest.raises(SourceError, match=f"{allowed}: reading folders on the server is off; the operator allows "
                                          "it by setting RAGEVAL_INGEST_ROOTS"):
        check_allowed(str(allowed), ())
    roots = load_settings({"RAGEVAL_INGEST_ROOTS": f"{tmp_path / 'allowed'},/nonexistent"}, use_file=False).ingest_roots
    assert check_allowed(str(allowed), roots) == allowed.resolve()
    for path in (other, tmp_path / "allowed" / "escape", tmp_path / "allowed" / ".." / "other"):
        with pytest.raises(SourceError, match=f"{path}: not inside a folder RAGEVAL_INGEST_ROOTS allows"):
            check_allowed(str(path), roots)


def app(page: str) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.switch_page(page)
    return at.run()


def test_settings_page_offers_only_the_declared_api_key_variables(store, monkeypatch):
    monkeypatch.setenv("RAGEVAL_API_KEY_ENVS", "OPENAI_API_KEY,TEAM_LLM_KEY")
    at = app("pages/settings.py")
    assert not at.exception and not at.error
    for role in ("ANSWER", "JUDGE"):
        box = at.selectbox(key=f"settings_{role}_API_KEY_ENV")
        assert box.options[:2] == ["OPENAI_API_KEY", "TEAM_LLM_KEY"] and box.value == "OPENAI_API_KEY"
    assert not [t for t in at.text_input if "API_KEY" in (t.key or "")]


def test_settings_page_shows_an_endpoint_url_without_its_key(store, monkeypatch):
    monkeypatch.setenv("RAGEVAL_JUDGE_BACKEND", "openai")
    monkeypatch.setenv("RAGEVAL_JUDGE_MODEL", "m")
    monkeypatch.setenv("RAGEVAL_JUDGE_BASE_URL", "https://u:SEKRIT123@api.example/v1?api-key=SEKRIT123")
    at = app("pages/settings.py")
    assert at.text_input(key="settings_JUDGE_BASE_URL").value == "https://***@api.example/v1?api-key=***"


def plain(element) -> str:
    return element.value.replace("\\", "")  # pages escape markdown in messages


def kb_ingest_folder(at: AppTest, folder: str) -> AppTest:
    at.text_input(key="kb_new").set_value("fresh")
    next(t for t in at.text_input if t.label.startswith("…or a folder")).set_value(folder)
    next(b for b in at.button if b.label == "Ingest").click()
    return at.run()


def test_knowledge_base_page_refuses_a_folder_outside_the_ingest_roots(store, tmp_path, monkeypatch):
    docs = write_docs(tmp_path / "docs")
    at = kb_ingest_folder(app("pages/knowledge_base.py"), str(docs))
    assert any("RAGEVAL_INGEST_ROOTS" in plain(e) and "reading folders on the server is off" in plain(e)
               for e in at.error), [e.value for e in at.error]
    assert "fresh" not in store.kb_names()

    monkeypatch.setenv("RAGEVAL_INGEST_ROOTS", str(tmp_path / "elsewhere"))
    at = kb_ingest_folder(app("pages/knowledge_base.py"), str(docs))
    assert any(f"{docs}: not inside a folder RAGEVAL_INGEST_ROOTS allows" in plain(e) for e in at.error), [
        e.value for e in at.error]

    monkeypatch.setenv("RAGEVAL_INGEST_ROOTS", str(tmp_path))
    at = kb_ingest_folder(app("pages/knowledge_base.py"), str(docs))
    assert not at.error, [e.value for e in at.error]
    assert "fresh" in store.kb_names()


def test_the_cli_reads_any_folder_its_shell_user_names(store, tmp_path, monkeypatch):
    """The roots bind the pages; the CLI's user can read those files anyway (README, Sources)."""
    from core import cli

    monkeypatch.delenv("RAGEVAL_INGEST_ROOTS", raising=False)
    assert cli.main(["ingest", str(write_docs(tmp_path / "anywhere")), "--kb", "cli"]) == 0
    assert "cli" in store.kb_names()


def test_model_and_endpoint_text_on_the_ask_page_cannot_fetch_anything(settings, store, embedder, docs):
    """What a model or an endpoint wrote is shown escaped (or as plain text): an image it writes in
    Markdown is never fetched by the browser of whoever views the page."""
    import re

    from core.ingest import ingest
    from core.models import Answer, Passage, Score
    from core.playground import Asked

    ingest([str(docs)], "kb", store, embedder, settings)
    pixel = "![p](http://tracker.example/p.png)"
    passage = Passage("kb::d::0", f"text {pixel}", "src", f"doc{pixel}.md", f"sec {pixel}", 0.5)
    answers = {"llm_only": Answer("ask", "q", "llm_only", "Q?", "", model=f"openai:m@{pixel}",
                                  error=f"endpoint said: {pixel}", retryable=True),
               "rag": Answer("ask", "q", "rag", "Q?", f"An answer {pixel}", (passage,), model="fake")}
    scores = {"llm_only": {}, "rag": {"faithfulness": Score("ask", "q", "rag", "faithfulness", None,
                                                            reason=f"judge said {pixel}", judge="fake")}}
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/ask.py")
    at.session_state["ask_result"] = Asked((passage,), answers, scores)
    at.run()
    assert not at.exception
    shown = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success")
             for e in getattr(at, kind)]
    assert sum("tracker" in s for s in shown) >= 4  # the error, the model, the reason, the passage's name
    assert not [s for s in shown if re.search(r"(?<!\\)!(?<!\\)\[|(?<!\\)\]\(", s)], shown
