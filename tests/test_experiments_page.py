"""The Experiments page with AppTest: the form starts an experiment in the background, and a finished
one shows its leaderboard and chart (made with a scripted model on the real encoder and LanceDB)."""
import time

from core import experiments, jobs
from core.experiments import create_experiment, execute
from core.llm.fake import FakeLLM
from tests.test_experiments import kb  # noqa: F401 (a fixture)
from tests.test_pages import app, fresh_caches, render  # noqa: F401 (a fixture)
from tests.test_runs import judge_reply


def test_a_finished_experiment_shows_its_leaderboard_and_chart(settings, store, kb):  # noqa: F811
    exp = create_experiment(store, settings, "top-k", kb, "two", metrics=("faithfulness",), top_k=[2, 1])
    execute(store, settings, exp.id, answer_llm=FakeLLM(lambda m, s: "A cookie."), judge_llm=FakeLLM(judge_reply))
    at = render("pages/experiments.py")
    assert at.selectbox(key="experiments_pick").value == exp.id
    assert [p.proto.text for p in at.get("progress")] == ["done · 4 of 4 items"]
    (table,) = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert table["label"].tolist() == ["top-2", "top-1"] and table["status"].tolist() == ["done", "done"]
    assert len(at.get("plotly_chart")) == 1
    at.selectbox(key="experiments_baseline").select(1).run()  # the other configuration as the baseline
    (table,) = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert table["mean_diff"].isna().tolist() == [False, True]


def test_the_form_starts_an_experiment_in_the_background(settings, store, kb):  # noqa: F811
    at = render("pages/experiments.py")
    at.text_input(key="experiments_name").input("from the page")
    at.selectbox(key="experiments_qs").select("two")
    at.multiselect(key="experiments_top_k").select(1)
    at.number_input(key="experiments_limit").set_value(1)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error, [e.value for e in at.error]
    (exp,) = store.experiments()
    assert exp.name == "from the page" and [c["settings"]["top_k"] for c in exp.configs] == [settings.top_k, 1]
    assert exp.limit == 1 and exp.modes == ("rag",)
    assert jobs.get(store, "experiment", exp.id) is not None
    experiments.cancel(store, exp.id)  # the worker finds it cancelled (or stops before its next run)
    deadline = time.time() + 120
    while jobs.alive(jobs.get(store, "experiment", exp.id)) and time.time() < deadline:
        time.sleep(1)
    assert not jobs.alive(jobs.get(store, "experiment", exp.id))
