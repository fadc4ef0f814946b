"""Findings, the report and the exports, on a run answered and judged by scripted models
(what is under test is the arithmetic and the file, not the models)."""
import hashlib
import io
import json
import random
import re

import pandas as pd
import pytest

from core.cli import main
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.models import Question
from core.runs import create_run
from core.executor import Executor
from core.variance import rejudge

QUESTIONS = ["How long does the remember cookie last?", "How do I connect to SQLite?",
             "What does the user_loader callback do?", "How do I commit a transaction?",
             "How do I start gunicorn with 4 workers?", "What is an in-memory SQLite database?",
             "How do I roll back a transaction?", "<script>alert('x')</script> What does login_user take?"]


def answer_reply(messages, schema):
    return "It lasts 365 days." if "Documentation passages" in messages[-1]["content"] else "=HYPERLINK(\"x\")"


def judge_reply(messages, schema, rng=None):
    prompt = messages[-1]["content"]
    title = schema["title"]
    if title == "StatementGeneratorOutput":
        kind = "rag" if "365 days" in prompt else "plain"
        h = hashlib.sha256(prompt.encode()).hexdigest()[:6]
        return {"statements": [f"{kind} claim {i} {h}" for i in range(4)]}
    if title == "NLIStatementOutput":
        out = []
        for i, line in enumerate(re.findall(r"(?:rag|plain) claim \d \w{6}", prompt)):
            bias = 0.85 if line.startswith("rag") else 0.35
            draw = rng.random() if rng else int(hashlib.sha256(line.encode()).hexdigest(), 16) % 100 / 100
            out.append({"statement": line, "reason": "r", "verdict": int(draw < bias)})
        return {"statements": out}
    return {"question": "How long does the remember cookie last?", "noncommittal": 0}


@pytest.fixture
def contrasted_run(settings, store, embedder, docs):
    ingest([str(docs)], "docs", store, embedder, settings)
    store.save_question_set("eight", [Question(f"q{i}", q, category="flask" if i % 2 else "sqlite")
                                      for i, q in enumerate(QUESTIONS)])
    run = create_run(store, settings, "docs", "eight")
    Executor(store, settings, embedder, run.id, FakeLLM(answer_reply), FakeLLM(judge_reply)).execute()
    return run.id


def cli(capsys, *args):
    code = main(list(args))
    return code, capsys.readouterr().out.strip().splitlines()


def test_show_json_carries_the_paired_comparison(contrasted_run, capsys):
    code, out = cli(capsys, "show", contrasted_run, "--json")
    shown = json.loads(out[-1])
    comp = shown["comparison"]
    assert set(comp) == {"faithfulness", "answer_relevancy"}
    f = comp["faithfulness"]
    assert {"mean_diff", "ci_low", "ci_high", "p_value", "p_holm", "wins", "ties", "losses", "n_pairs",
            "n_excluded"} <= set(f)
    # the comparison is of the stored scores: recompute the mean difference from the items
    diffs = [i["rag"]["scores"]["faithfulness"]["value"] - i["llm_only"]["scores"]["faithfulness"]["value"]
             for i in shown["items"]]
    assert f["n_pairs"] == 8 and f["n_excluded"] == 0
    assert f["mean_diff"] == pytest.approx(sum(diffs) / 8)
    assert f["ci_low"] <= f["mean_diff"] <= f["ci_high"]
    assert f["wins"] + f["ties"] + f["losses"] == 8 and f["p_holm"] >= f["p_value"]
    assert shown["findings"]["faithfulness"]["sentence"].startswith("RAG ")


def test_report_is_one_self_contained_file(contrasted_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert cli(capsys, "report", contrasted_run, "--out", str(out))[0] == 0
    doc = out.read_text(encoding="utf-8")
    assert re.search(r"<script[^>]+src=", doc) is None and "<link" not in doc  # nothing fetched
    # differences, means, 2 deltas, categories, the why breakdown, boxes, scatter
    assert doc.count('class="plotly-graph-div"') == 8
    assert "Why RAG changed the scores" in doc and "RAG raised at least one score by 0.1" in doc
    assert "Question set</td><td>eight (version 1)" in doc and "Knowledge base</td><td>docs" in doc
    assert re.search(r"RAG (raised|lowered|made no clear difference to) faithfulness", doc)
    assert "Where retrieval helped most" in doc and "=HYPERLINK" in doc  # both answers side by side
    assert "<script>alert" not in doc and "&lt;script&gt;alert" in doc  # user text escaped
    assert "95% paired bootstrap confidence interval" in doc


def test_report_opens_offline_in_chromium_without_errors(contrasted_run, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    from tests.test_browser import FLAGS

    out = tmp_path / "report.html"
    cli(capsys, "report", contrasted_run, "--out", str(out))
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: r.url.startswith("file:") or requests.append(r.url))
        page.goto(out.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 8
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        browser.close()
    assert errors == [] and requests == []


def test_exports_read_back(contrasted_run, tmp_path, capsys):
    for fmt in ("csv", "parquet", "json"):
        path = tmp_path / f"items.{fmt}"
        assert cli(capsys, "report", contrasted_run, "--out", str(path))[0] == 0
    csv = pd.read_csv(tmp_path / "items.csv")
    parquet = pd.read_parquet(tmp_path / "items.parquet")
    doc = json.loads((tmp_path / "items.json").read_text())
    assert doc == json.loads(cli(capsys, "show", contrasted_run, "--json")[1][-1])  # one shape: show --json's
    assert len(csv) == len(parquet) == 2 * len(doc["items"]) == 16  # 8 questions x 2 modes
    assert set(csv["mode"]) == {"llm_only", "rag"}
    assert (csv[csv["mode"] == "llm_only"]["answer"] == "'=HYPERLINK(\"x\")").all()  # formula made inert
    assert (parquet[parquet["mode"] == "llm_only"]["answer"] == "=HYPERLINK(\"x\")").all()  # data kept as is
    from_json = {(i["question_id"], m): i[m]["scores"]["faithfulness"]["value"] for i in doc["items"]
                 for m in ("llm_only", "rag")}
    assert parquet["faithfulness"].tolist() == pytest.approx(
        [from_json[(q, m)] for q, m in zip(parquet["question_id"], parquet["mode"])])
    assert doc["comparison"]["faithfulness"]["n_pairs"] == 8 and doc["calibration"]["faithfulness"]
    assert cli(capsys, "report", contrasted_run, "--out", str(tmp_path / "x.xlsx"))[0] == 2


def test_reviews_export_with_the_results_and_reach_the_report(contrasted_run, store, tmp_path, capsys):
    from core.reviews import review

    r = review(store, contrasted_run, "q0", "rag", "faithfulness", reviewer="=ana", verdict="right", note="<b>ok</b>")
    for fmt in ("csv", "parquet", "html"):
        assert cli(capsys, "report", contrasted_run, "--out", str(tmp_path / f"items.{fmt}"))[0] == 0
    csv, parquet = pd.read_csv(tmp_path / "items.csv"), pd.read_parquet(tmp_path / "items.parquet")
    for table in (csv, parquet):
        row = table[(table["question_id"] == "q0") & (table["mode"] == "rag")].iloc[0]
        assert row["faithfulness_human"] == pytest.approx(r.judge_value)  # marked right: the judge's value
        [given] = json.loads(row["faithfulness_reviews"])
        assert (given["reviewer"], given["verdict"], given["note"]) == ("=ana", "right", "<b>ok</b>")
        assert not any(isinstance(v, str) and v for v in table["answer_relevancy_reviews"])  # none: "" (CSV: empty)
    doc = (tmp_path / "items.html").read_text(encoding="utf-8")
    assert "The judge against people" in doc and "People agreed with the judge on 1 of 1 reviewed faithfulness" in doc
    assert "<b>ok</b>" not in doc


def test_rejudge_measures_the_judges_noise(contrasted_run, settings, store, embedder, capsys):
    rng = random.Random(3)
    judge = FakeLLM(lambda m, s: judge_reply(m, s, rng))
    n = rejudge(store, settings, embedder, contrasted_run, repeats=2, temperature=0.7, judge_llm=judge)
    assert n == 8 * 2 * 2 * 2  # questions x modes x metrics x repeats
    assert rejudge(store, settings, embedder, contrasted_run, repeats=2, judge_llm=judge) == 0  # all stored
    rows = store.repeats(contrasted_run)
    assert {r["temperature"] for r in rows} == {0.7}
    shown = json.loads(cli(capsys, "show", contrasted_run, "--json")[1][-1])
    noise = shown["findings"]["faithfulness"]["judge_noise"]
    assert noise["answers"] == 16 and noise["within_sd"] > 0  # the random verdicts differ between repeats
    assert "Judging each answer 2 more times" in shown["findings"]["faithfulness"]["noise_sentence"]
    # relevancy generated the same question every time: no noise at all
    assert shown["findings"]["answer_relevancy"]["judge_noise"]["within_sd"] == 0
    # deleting the run deletes its repeat judgings too
    assert cli(capsys, "runs", "delete", contrasted_run)[0] == 0
    assert store.repeats(contrasted_run) == []


def test_judge_calibration_reaches_show_report_and_results(contrasted_run, settings, store, embedder, tmp_path,
                                                           capsys):
    from streamlit.testing.v1 import AppTest

    from core.calibration import check_judge
    from core.config import PROJECT_ROOT, ModelConfig
    from core.evaluate import Scorer
    from tests.test_calibration import ITEMS, scripted_judge

    out = tmp_path / "before.html"
    cli(capsys, "report", contrasted_run, "--out", str(out))
    assert "Faithfulness: not known to be trustworthy (this judge was never checked). This judge" in out.read_text()

    run = store.run(contrasted_run)
    cfg = ModelConfig(**run.config["judge_model"])
    check_judge(store, lambda: Scorer(FakeLLM(scripted_judge), cfg, embedder, cache=None, strictness=1), cfg,
                strictness=run.config["relevancy_strictness"], items=ITEMS)
    shown = json.loads(cli(capsys, "show", contrasted_run, "--json")[1][-1])
    faith = shown["calibration"]["faithfulness"]
    assert faith["checked"] and faith["trusted"] is False and faith["n"] == 6
    out = tmp_path / "after.html"
    cli(capsys, "report", contrasted_run, "--out", str(out))
    detail = faith["sentence"].removeprefix("Faithfulness: ")
    assert f"Faithfulness: not trustworthy for this judge. {detail[0].upper()}{detail[1:]}" in out.read_text()

    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/results.py")
    at.query_params["run"] = contrasted_run
    at.run()
    assert not at.exception
    warned = [w.value for w in at.warning if "not trustworthy for this judge" in w.value]
    assert len(warned) == 1 and warned[0].startswith("Faithfulness: not trustworthy for this judge. The judge")
    assert "Answer relevancy: not trustworthy for this judge." in warned[0]
