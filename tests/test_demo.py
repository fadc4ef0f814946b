"""The demo knowledge base: `ingest --demo` and the page's button, on a demo list the test
writes (the real one downloads eleven sdists; bench/retrieval_quality.py builds that)."""
import pytest
from streamlit.testing.v1 import AppTest

from core import cli, sources
from core.config import PROJECT_ROOT
from core.sources import pypi
from tests.test_package_sources import FakePyPI, widget_sdist


@pytest.fixture
def demo_list(tmp_path, monkeypatch):
    path = tmp_path / "demo_sources.txt"
    path.write_text("# a comment line\npypi:flask-widget==1.2.0  # pinned\n\nstdlib:__future__\n")
    monkeypatch.setattr(sources, "DEMO_FILE", path)
    monkeypatch.setattr(pypi, "fetch", FakePyPI({("flask-widget", "1.2.0"): widget_sdist()}))
    return path


def test_shipped_demo_list_names_the_seed_libraries():
    specs = sources.demo_specs()
    assert [s.split("==")[0] for s in specs] == [
        "pypi:requests", "pypi:flask", "pypi:flask-login", "pypi:flask-testing", "pypi:flask-restful",
        "pypi:flask-bcrypt", "pypi:flask-migrate", "pypi:flask-security-too", "pypi:flask-sqlalchemy",
        "pypi:alembic", "pypi:gunicorn", "stdlib:sqlite3", "stdlib:__future__"]
    assert all("==" in s for s in specs if s.startswith("pypi:"))  # pinned: the same demo everywhere


def test_cli_ingest_demo_builds_the_demo_kb(settings, store, demo_list, capsys):
    assert sources.demo_specs() == ["pypi:flask-widget==1.2.0", "stdlib:__future__"]
    assert cli.main(["ingest", "--demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("demo: 5 documents (0 unchanged, 5 embedded, 0 deleted)"), out
    assert {s["source"] for s in store.kb_sources("demo")} == {"pypi:flask-widget", "stdlib:__future__"}
    assert cli.main(["ingest", "--demo", "--kb", "other"]) == 0
    assert "other" in store.kb_names()
    assert cli.main(["ingest"]) == 2
    assert "use --demo" in capsys.readouterr().err


def test_page_button_builds_the_demo_kb(settings, store, demo_list):
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180)
    at.switch_page("pages/knowledge_base.py")
    at.run()
    assert not at.exception and not at.error
    at.button(key="kb_demo").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="kb_choice").value == "demo"
    assert any(s.value.startswith("Ingested into demo: 5 documents") for s in at.success)
    assert set(at.dataframe[0].value["source"]) == {"pypi:flask-widget", "stdlib:__future__"}


def test_page_ingests_packages_named_in_the_form(settings, store, demo_list):
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180)
    at.switch_page("pages/knowledge_base.py")
    at.run()
    at.text_input(key="kb_new").input("libs")
    at.text_input(key="kb_package_specs").input("stdlib:__future__ pypi:nope")
    next(b for b in at.button if b.label == "Ingest packages").click()
    at.run()
    assert [e.value.replace("\\", "") for e in at.error] == ["pypi:nope: PyPI has no package named 'nope'"]
    assert "libs" not in store.kb_names()  # a bad spec stops the ingest before anything is written
    at.text_input(key="kb_package_specs").input("stdlib:__future__")
    next(b for b in at.button if b.label == "Ingest packages").click()
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="kb_choice").value == "libs"
    assert list(at.dataframe[0].value["source"]) == ["stdlib:__future__"]
