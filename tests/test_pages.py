"""Every page renders with AppTest, on an empty workspace and on one with a finished run."""
import re

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.models import Question
from core.runs import create_run
from core.executor import Executor

PAGES = ["app.py", "pages/home.py", "pages/knowledge_base.py", "pages/question_sets.py", "pages/run.py",
         "pages/ask.py", "pages/results.py", "pages/runs.py", "pages/experiments.py", "pages/report.py",
         "pages/settings.py"]


@pytest.fixture(autouse=True)
def fresh_caches():
    """Streamlit's caches live as long as the process; each test has its own workspace."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def judge_reply(messages, schema):
    return {"StatementGeneratorOutput": {"statements": ["Cookies last 365 days."]},
            "NLIStatementOutput": {"statements": [{"statement": "Cookies last 365 days.", "reason": "stated",
                                                   "verdict": 1}]},
            "AnswerRelevanceOutput": {"question": "How long do cookies last?", "noncommittal": 0}}[schema["title"]]


@pytest.fixture
def finished_run(settings, store, embedder, docs):
    ingest([str(docs)], "docs", store, embedder, settings)
    store.save_question_set("two", [Question("a", "How long does the remember cookie last?", category="flask"),
                                    Question("b", "How do I connect to SQLite?", category="sqlite")])
    run = create_run(store, settings, "docs", "two")
    Executor(store, settings, embedder, run.id, FakeLLM(lambda m, s: "It lasts 365 days."),
             FakeLLM(judge_reply)).execute()
    return run.id


def app(page: str) -> AppTest:
    """The app opened on one page, through app.py's navigation as a browser would."""
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    if page != "app.py":
        at.switch_page(page)
    return at


def render(page: str) -> AppTest:
    at = app(page).run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_workspace(page, store):
    render(page)


def test_empty_workspace_shows_the_first_time_path(store):
    at = render("pages/home.py")
    assert [m.label for m in at.metric] == ["Knowledge bases", "Question sets", "Runs"]
    assert [m.value for m in at.metric] == ["0", "1", "0"]  # the seed questions are there from the start
    assert "Get started" in [h.value for h in at.subheader]


def test_question_sets_page_shows_the_default_seed_set(store):
    at = render("pages/question_sets.py")
    assert at.selectbox(key="qs_pick").value == "default"
    sets_table, editor = at.dataframe  # the data editor renders as a dataframe in AppTest
    assert list(sets_table.value["name"]) == ["default"]
    assert len(editor.value) == 30 and editor.value["question"].iloc[0] == "How do I clone the Requests repository?"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_a_finished_run(page, finished_run):
    render(page)


def test_results_page_has_cards_charts_and_drill_down(finished_run):
    at = app("pages/results.py")
    at.query_params["run"] = finished_run
    at.run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert "Faithfulness · LLM + RAG" in labels and "Answer relevancy · LLM only" in labels
    values = {m.label: m.value for m in at.metric}
    assert values["Faithfulness · LLM + RAG"] == "1.00"
    assert len(at.get("plotly_chart")) >= 3
    assert at.selectbox(key="results_question").value == "a"
    texts = [t.value for t in at.text]
    assert "It lasts 365 days." in texts  # both answers side by side, as plain text
    verdicts = [d.value for d in at.dataframe if "verdict" in d.value.columns]
    assert len(verdicts) == 2  # the faithfulness verdicts of each mode's answer
    assert verdicts[0].to_dict("records") == [{"statement": "Cookies last 365 days.", "verdict": "supported",
                                               "reason": "stated"}]
    generated = [d.value for d in at.dataframe if "noncommittal" in d.value.columns]
    assert len(generated) == 2 and generated[0]["question"].tolist() == ["How long do cookies last?"] * 3
    assert any("demo-grade" in w.value for w in at.warning)  # the run's judge is labelled embedded


def test_run_page_shows_the_form_and_the_estimate(finished_run):
    at = render("pages/run.py")
    assert at.selectbox(key="run_pick").value == finished_run
    assert any("Estimated work: 60 answers (30 questions × 2 modes)" in c.value for c in at.caption)
    at.selectbox(key="run_qs").select("two").run()
    # faithfulness by RAGAS's prompts (the fixture's setting): 2 calls; relevancy at temperature 0: 1
    assert any("Estimated work: 4 answers (2 questions × 2 modes) and up to 12 judge model calls (RAGAS's prompts"
               in c.value for c in at.caption)
    assert [p.proto.text for p in at.get("progress")] == ["done · 4 of 4 items"]
    metrics = next(m for m in at.multiselect if m.label == "Metrics")
    assert metrics.value == ["faithfulness", "answer_relevancy"]  # the default two
    assert {"Context relevance", "Context recall", "Context precision", "Answer correctness"} <= set(metrics.options)
    metrics.select("context_relevance").run()
    # context relevance: two judge prompts once per question, on the RAG item
    assert any("and up to 16 judge model calls" in c.value for c in at.caption)


def test_settings_page_locks_what_the_environment_sets(store, monkeypatch):
    monkeypatch.setenv("RAGEVAL_TOP_K", "7")
    at = render("pages/settings.py")
    top_k = at.number_input(key="settings_TOP_K")
    assert top_k.value == 7 and top_k.disabled
    assert not at.number_input(key="settings_CHUNK_TOKENS").disabled


def test_results_page_when_a_metric_is_wholly_unscored(settings, store, embedder, docs):
    ingest([str(docs)], "docs", store, embedder, settings)
    store.save_question_set("one", [Question("a", "How long does the remember cookie last?")])
    run = create_run(store, settings, "docs", "one")

    def no_statements(messages, schema):
        if schema["title"] == "StatementGeneratorOutput":
            return {"statements": []}
        return judge_reply(messages, schema)

    Executor(store, settings, embedder, run.id, FakeLLM(lambda m, s: "365 days."), FakeLLM(no_statements)).execute()
    at = app("pages/results.py")
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Faithfulness · LLM + RAG"] == "—"
    at.radio(key="results_metric").set_value("faithfulness").run()
    assert not at.exception
    assert any("unscored — the judge found no statements in the answer" in md.value for md in at.markdown)


def test_user_text_is_made_inert_before_markdown():
    from pages.ui import md

    hostile = "![pixel](http://tracker.example/p.png) [link](javascript:x) **bold** $x$ :material/home:"
    escaped = md(hostile)
    assert re.search(r"(?<!\\)[!\[\]()*$:]", escaped) is None  # every markup character is escaped
    assert escaped.replace("\\", "") == hostile  # nothing is lost, only escaped


def test_knowledge_base_page_lists_sources_and_searches_three_ways(finished_run, docs):
    at = render("pages/knowledge_base.py")
    assert at.selectbox(key="kb_choice").value == "docs"
    sources = at.dataframe[0].value
    assert list(sources["source"]) == [str(docs)] and list(sources["documents"]) == [3]
    at.text_input(key="kb_query").input("How long does the remember me cookie last?")
    next(b for b in at.button if b.label == "Search").click()
    at.run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown if m.value in ("**Vector**", "**Full-text**", "**Hybrid (RRF)**")] == [
        "**Vector**", "**Full-text**", "**Hybrid (RRF)**"]
    firsts = [c.value for c in at.caption if c.value.startswith("#1 · score")]
    assert len(firsts) == 3 and all("flask\\_login\\.md" in c for c in firsts)


def test_a_choice_on_the_results_page_sticks_and_is_shareable(finished_run, settings, store, embedder):
    second = create_run(store, settings, "docs", "two", modes=("rag",), limit=1)
    Executor(store, settings, embedder, second.id, FakeLLM(lambda m, s: "Cookie."), FakeLLM(judge_reply)).execute()
    at = app("pages/results.py")
    at.query_params["run"] = finished_run
    at.run()
    assert at.selectbox(key="results_run_pick").value == finished_run
    at.selectbox(key="results_run_pick").select(second.id).run()
    at.run()  # a later rerun keeps the user's choice
    assert at.selectbox(key="results_run_pick").value == second.id
    assert at.query_params["run"] == second.id  # the URL follows the choice
    assert not at.exception


def test_results_page_states_the_findings(finished_run):
    at = app("pages/results.py")
    at.query_params["run"] = finished_run
    at.run()
    sentences = [m.value for m in at.markdown if "made no clear difference" in m.value]
    # both modes gave the same answer, so every pair is a tie: no change, interval [0, 0]
    assert len(sentences) == 2 and "\\+0\\.00 \\[\\+0\\.00, \\+0\\.00\\]" in sentences[0]
    assert any(e.label.startswith("Judge variance") for e in at.expander)


def test_runs_page_compares_two_runs_on_shared_questions(finished_run, settings, store, embedder):
    other = create_run(store, settings, "docs", "two", top_k=1)

    def harsh(messages, schema):  # this judge finds the statement unsupported
        reply = judge_reply(messages, schema)
        if schema["title"] == "NLIStatementOutput":
            reply["statements"][0]["verdict"] = 0
        return reply
    Executor(store, settings, embedder, other.id, FakeLLM(lambda m, s: "It lasts 365 days."), FakeLLM(harsh)).execute()
    at = app("pages/runs.py")
    at.query_params["a"], at.query_params["b"] = finished_run, other.id
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="runs_a").value == finished_run and at.selectbox(key="runs_b").value == other.id
    assert any("top-k 4 → 1" in c.value for c in at.caption), [c.value for c in at.caption]
    sentence = next(m.value for m in at.markdown if "faithfulness compared with run A" in m.value)
    assert sentence.startswith("**Run B lowered faithfulness compared with run A by 1\\.00")
    assert len(at.get("plotly_chart")) == 1

    at.toggle(key="runs_gate").set_value(True).run()  # the regression gate, as `python -m core gate` decides
    assert not at.exception and not at.error
    checks = [m.value for m in at.markdown if "faithfulness\\:" in m.value or "answer\\_relevancy\\:" in m.value]
    assert len(checks) == 2 and "FAIL faithfulness" in checks[0] and "PASS answer\\_relevancy" in checks[1]
    assert any(c.value.startswith("The gate fails: `python -m core gate " + other.id) for c in at.caption)
    at.number_input(key="runs_gate_max_drop").set_value(1.0).run()
    assert any(c.value.startswith("The gate passes") and "--max-drop 1`" in c.value for c in at.caption)


def test_report_page_offers_the_report_and_the_data(finished_run):
    at = render("pages/report.py")
    assert at.selectbox(key="report_run").value == finished_run
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["HTML report", "Results as CSV", "Results as PARQUET", "Results as JSON"]


def test_runs_page_deletes_a_run(finished_run, store):
    at = render("pages/runs.py")
    at.selectbox(key="runs_delete_pick").select(finished_run)
    at.button(key="runs_delete").click().run()
    assert not at.exception and not at.error
    assert store.runs() == [] and store.answers(finished_run) == []


def test_runs_page_opens_on_two_different_runs(finished_run, settings, store, embedder):
    newer = create_run(store, settings, "docs", "two", top_k=1)
    Executor(store, settings, embedder, newer.id, FakeLLM(lambda m, s: "It lasts 365 days."),
             FakeLLM(judge_reply)).execute()
    at = render("pages/runs.py")  # no run named in the URL
    newest, before = [r.id for r in store.runs()]  # created in the same second, the order is the store's
    assert at.selectbox(key="runs_a").value == before and at.selectbox(key="runs_b").value == newest
    assert {before, newest} == {finished_run, newer.id}
    assert not any("Pick two different runs" in i.value for i in at.info)
    assert any("top-k 4 → 1" in c.value or "top-k 1 → 4" in c.value for c in at.caption)


def test_results_page_builds_only_the_open_tab(finished_run):
    at = app("pages/results.py")
    at.query_params["run"] = finished_run
    at.run()
    assert len(at.get("plotly_chart")) == 3  # the overview's: differences, means, distributions
    at.query_params["results_tab"] = "Per question"
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 2  # the changes and the dumbbell


def test_a_review_given_on_the_drill_down_is_stored_and_shown(finished_run, store):
    at = app("pages/results.py")
    at.query_params["run"] = finished_run
    at.run()
    assert any("No one has reviewed a score of this run yet" in c.value for c in at.caption)
    form = "results_review_a_rag_faithfulness"  # question a, its RAG answer's faithfulness (the judge: 1.00)
    at.text_input(key="results_reviewer").input("ana")
    at.radio(key=f"{form}_verdict").set_value("wrong")
    at.text_area(key=f"{form}_note").input("**the passage** says a year")
    at.button(key=f"{form}_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [r] = store.reviews(finished_run)
    assert (r.question_id, r.mode, r.metric, r.reviewer, r.verdict, r.judge_value, r.note) == (
        "a", "rag", "faithfulness", "ana", "wrong", 1.0, "**the passage** says a year")
    assert "Reviews (1)" in [e.label for e in at.expander]
    assert any(t.value.startswith("ana · ") and t.value.endswith("wrong (the judge's score was 1.00)\n"
                                                                   "**the passage** says a year") for t in at.text)
    assert any("People agreed with the judge on 0 of 1 reviewed faithfulness scores" in m.value for m in at.markdown)
    assert at.text_input(key="results_reviewer").value == "ana"  # remembered for the next review


def test_the_drill_down_says_why_rag_changed_the_scores(settings, store, embedder, docs):
    """RAG's answer is grounded where LLM only's is not: the question is "helped", said in words on
    the drill-down and counted in the breakdown; the passages' relevance ratings are shown too."""
    def answer(messages, schema):
        return "It lasts 365 days." if "Documentation passages" in messages[-1]["content"] else "No idea."

    def judge(messages, schema):
        prompt = messages[-1]["content"]
        return {"StatementGeneratorOutput": {"statements": ["It is unknown." if "No idea." in prompt
                                                            else "Cookies last 365 days."]},
                "NLIStatementOutput": {"statements": [{"statement": "s", "reason": "r",
                                                       "verdict": 0 if "It is unknown." in prompt else 1}]},
                "AnswerRelevanceOutput": {"question": "How long do cookies last?", "noncommittal": 0},
                "ContextRelevanceOutput": {"rating": 2}}[schema["title"]]

    ingest([str(docs)], "docs", store, embedder, settings)
    store.save_question_set("one", [Question("a", "How long does the remember cookie last?")])
    run = create_run(store, settings, "docs", "one", metrics=("faithfulness", "answer_relevancy", "context_relevance"))
    Executor(store, settings, embedder, run.id, FakeLLM(answer), FakeLLM(judge)).execute()
    at = app("pages/results.py")
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    texts = [t.value for t in at.text]
    assert any(t.startswith("Helped: faithfulness +1.00") and "context relevance 1.00" in t for t in texts), texts
    assert any("ratings of the passages (0-2): 2, 2" in c.value for c in at.caption)
    assert any("uncalibrated" in w.value for w in at.warning)  # context relevance is not on the calibration set
    assert not [d for d in at.dataframe if "rule" in d.value.columns]  # the breakdown is built in its own tab
    at.query_params["results_tab"] = "Why"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    breakdown = next(d.value for d in at.dataframe if "rule" in d.value.columns)
    assert breakdown.set_index("class").at["helped", "questions"] == 1
    assert breakdown.set_index("class").at["helped", "rule"].startswith("RAG raised at least one score by 0.1")
    assert len(at.get("plotly_chart")) == 1  # the breakdown's bar
