"""The Question sets page on versions, export and delete, and the Results page on an imported run."""
from core.imports import import_run
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.questions import parse_bytes
from core.executor import Executor
from pages.ui import md
from tests.test_pages import app, fresh_caches, judge_reply, render  # noqa: F401 (fixture)
from tests.test_imported_runs import ANSWERS_CSV, no_answers


def test_versions_can_be_opened_saved_and_a_used_set_is_not_deleted(settings, store, embedder, docs):
    ingest([str(docs)], "docs", store, embedder, settings)
    parsed = parse_bytes(ANSWERS_CSV, "mine.csv")
    store.save_question_set("mine", parsed.questions[:1], origin="first.csv")
    run = import_run(store, settings, parsed, "mine.csv", "docs", set_name="mine")  # version 2
    at = render("pages/question_sets.py")
    at.selectbox(key="qs_pick").select("mine").run()
    assert at.selectbox(key="qs_version_mine").options == ["v2 · 2 questions · " + store.question_set_versions(
        "mine")[0]["created_at"], "v1 · 1 questions · " + store.question_set_versions("mine")[1]["created_at"]]
    at.selectbox(key="qs_version_mine").set_value(1).run()
    assert not at.exception
    assert len(at.dataframe[1].value) == 1  # the editor shows version 1
    at.selectbox(key="qs_export_format").select("jsonl").run()
    assert at.get("download_button")[0].proto.label == "Download .jsonl"
    at.button(key="qs_delete").click().run()
    assert [e.value for e in at.error] == [md(f"question set 'mine' is used by 1 run(s) ({run.id}); "
                                              "delete those runs first")]
    assert "mine" in {s["name"] for s in store.question_sets()}


def test_results_page_draws_an_imported_run(settings, store, embedder, docs):
    ingest([str(docs)], "docs", store, embedder, settings)
    run = import_run(store, settings, parse_bytes(ANSWERS_CSV, "mine.csv"), "mine.csv", "docs")
    Executor(store, settings, embedder, run.id, FakeLLM(no_answers), FakeLLM(judge_reply)).execute()
    at = app("pages/results.py")
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) >= 3
    assert "365 days." in [t.value for t in at.text]
    assert any("Imported answer" in c.value for c in at.caption)
    assert any("from the imported file" in c.value for c in at.caption)  # the given contexts, never searched


def test_an_uploaded_bad_file_shows_one_message_and_stores_nothing(store):
    at = render("pages/question_sets.py")
    at.file_uploader(key="qs_upload").upload("bad rows.csv", b"question\nfine?\nring \x07 ring\n", "text/csv").run()
    assert [e.value for e in at.error] == [md("bad rows.csv, row 3: the question holds control characters")]
    assert [s["name"] for s in store.question_sets()] == ["default"]


def test_an_uploaded_file_with_answers_imports_as_a_run(settings, store, embedder, docs, monkeypatch):
    import core.runs

    ingest([str(docs)], "docs", store, embedder, settings)
    started = []
    monkeypatch.setattr(core.runs, "launch", lambda settings, store, run_id: started.append(run_id))
    at = render("pages/question_sets.py")
    at.file_uploader(key="qs_upload").upload("my answers.csv", ANSWERS_CSV, "text/csv").run()
    assert md("my answers.csv") + ": 2 questions, 2 with answers already" in [s.value for s in at.success]
    assert len(at.dataframe[0].value) == 2  # the preview
    at.selectbox(key="qs_import_kb").select("docs")
    at.button(key="qs_import_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = store.runs()[0]
    assert started == [run.id] and run.imported and run.kb == "docs"
    assert (run.question_set, run.question_set_version) == ("my-answers", 1)
    assert {(a.question_id, a.mode, a.text) for a in store.answers(run.id) if a.text} == {
        ("c1", "llm_only", "A year I think."), ("c1", "rag", "365 days."), ("c2", "rag", "Call sqlite3.connect.")}


def test_home_scores_the_seed_evaluation_in_one_click(settings, store, embedder, docs, monkeypatch):
    import core.runs

    ingest([str(docs)], "docs", store, embedder, settings)
    started = []
    monkeypatch.setattr(core.runs, "launch", lambda settings, store, run_id: started.append(run_id))
    at = render("app.py")
    labels = at.selectbox(key="home_seed_kb").options
    assert labels[0].startswith("demo — build it now") and "docs" in labels  # the demo is offered, not built yet
    at.selectbox(key="home_seed_kb").select("docs")
    at.button(key="FormSubmitter:home_seed-Score the seed evaluation").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = store.runs()[0]
    assert started == [run.id] and run.imported and run.kb == "docs"
    assert run.question_set == "seed-evaluation" and run.config["faithfulness_judge"] == "ragas"  # the fixture's
    assert len([a for a in store.answers(run.id) if a.text]) == 60  # 30 questions × 2 modes, none generated
