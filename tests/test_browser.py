"""A user's whole path in a real browser: `streamlit run` on 127.0.0.1, Playwright driving
Debian's Chromium, the embedded models doing the work. Screenshots of every page are saved
under tests/artifacts/."""
import os
import shutil

import pytest

from core.config import PROJECT_ROOT
from tests.conftest import DOCS, local_server, write_docs

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-home")
    args = ["-m", "streamlit", "run", "app.py", "--server.port", "{port}", "--server.address", "127.0.0.1",
            "--server.headless", "true"]
    with local_server(args, home / "streamlit.log", env=dict(os.environ, RAGEVAL_HOME=str(home))) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def settle(page):
    """Wait until Streamlit has finished the script run the last action started."""
    page.wait_for_timeout(700)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)


def open_page(page, url: str):
    page.goto(url)
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60_000)
    settle(page)


def shot(page, name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def choose(page, label: str, option: str):
    """Pick an option of a Streamlit selectbox by its label."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).first.click()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    shot(page, "last-state")  # where the test ended, pass or fail
    page.close()


def test_a_new_user_goes_from_nothing_to_results(app_url, page, tmp_path):
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    open_page(page, app_url)
    page.get_by_text("Get started").wait_for()
    shot(page, "1-home-empty")

    # Knowledge base: upload two documents into a new knowledge base
    docs = write_docs(tmp_path / "docs", {k: DOCS[k] for k in ("flask_login.md", "sqlite.rst")})
    open_page(page, f"{app_url}/knowledge_base")
    page.get_by_label("New name", exact=True).fill("demo")
    page.get_by_label("New name", exact=True).press("Enter")
    settle(page)
    page.locator("input[type=file]").first.set_input_files([str(p) for p in sorted(docs.iterdir())])
    page.get_by_text("sqlite.rst").first.wait_for()
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("Ingested into demo").wait_for(timeout=120_000)
    shot(page, "2-knowledge-base")

    # Question sets: upload a 2-question CSV and save it
    csv = tmp_path / "two.csv"
    csv.write_text("question,category\nHow long does the remember me cookie last?,flask\n"
                   "How do I connect to an SQLite database?,sqlite\n")
    open_page(page, f"{app_url}/question_sets")
    page.locator("input[type=file]").first.set_input_files(str(csv))
    page.get_by_text("two.csv: 2 questions").wait_for()
    page.get_by_role("button", name="Save question set").click()
    page.get_by_text("Saved 'two' version 1").wait_for()
    shot(page, "3-question-sets")

    # Run: both modes on the embedded models, followed live
    open_page(page, f"{app_url}/run")
    choose(page, "Question set", "two (v1, 2 questions)")
    page.get_by_text("Estimated work: 4 answers").wait_for()
    page.get_by_role("button", name="Start run").click()
    page.get_by_text("of 4 items").first.wait_for(timeout=60_000)
    shot(page, "4-run-started")
    page.get_by_text("done · 4 of 4 items").wait_for(timeout=900_000)
    shot(page, "5-run-done")

    # Results: charts, both answers side by side, faithfulness verdicts
    page.get_by_role("button", name="Open results").click()
    page.get_by_role("heading", name="Question drill-down").wait_for(timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() >= 2  # bars and distributions on the first tab
    assert "run=" in page.url  # the view is a shareable link
    page.get_by_role("heading", name="LLM only").first.wait_for()
    page.get_by_role("heading", name="LLM + RAG").first.wait_for()
    assert page.get_by_text("Faithfulness", exact=False).count() > 0
    shot(page, "6-results")
    page.get_by_role("tab", name="Per question").click()
    page.wait_for_timeout(1000)
    shot(page, "7-results-per-question")

    for name, title in (("ask", "Ask"), ("settings", "Settings")):
        open_page(page, f"{app_url}/{name}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)  # drawn, not a loading skeleton
        shot(page, f"8-{name}")
    page.get_by_role("button", name="Check the judge").wait_for()
    assert not [e for e in console_errors if "Traceback" in e]
    assert page.locator("[data-testid='stException']").count() == 0
