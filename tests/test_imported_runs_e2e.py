"""An imported run scored end to end on the embedded models (SmolLM2-135M judge,
all-MiniLM-L6-v2), through the CLI, without one answer-model call."""
import json

from core import executor
from core.cli import main
from core.ingest import ingest


def test_an_imported_csv_scores_on_the_embedded_models(settings, store, embedder, docs, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.setenv("RAGEVAL_RELEVANCY_STRICTNESS", "1")  # one generated question per answer keeps it short
    monkeypatch.setenv("RAGEVAL_FAITHFULNESS_JUDGE", "auto")  # the default: the likelihood judge
    ingest([str(docs)], "docs", store, embedder, settings)
    f = tmp_path / "answers.csv"
    f.write_text('question,llm_only_answer,rag_answer,rag_contexts\n'
                 'How long does the remember me cookie last?,About a week.,The cookie lasts 365 days.,'
                 '"[""The cookie lasts 365 days by default, set by REMEMBER_COOKIE_DURATION.""]"\n'
                 'How do I connect to an SQLite database?,,Call sqlite3.connect with the database path.,\n')
    loaded = []
    real_get_llm = executor.get_llm
    monkeypatch.setattr(executor, "get_llm", lambda cfg, threads=2: loaded.append(cfg) or real_get_llm(cfg, threads))

    assert main(["runs", "import", str(f), "--kb", "docs"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(loaded) == 1 and loaded[0] == settings.judge_model  # the judge only: no answer model was loaded

    assert main(["show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run"]["status"] == "done" and shown["run"]["imported"] is True
    assert shown["progress"] == {"done": 4, "total": 4}
    q1, q2 = shown["items"]
    assert q1["rag"]["answer"] == "The cookie lasts 365 days." and q1["rag"]["model"] == "imported"
    assert q1["rag"]["completion_tokens"] is None and q1["rag"]["latency_s"] is None  # never generated here
    assert q2["llm_only"]["scores"]["faithfulness"] == {
        "value": None, "reason": "no answer to score (the imported file holds no LLM only answer to this question)",
        "details": {}, "judge": q2["llm_only"]["scores"]["faithfulness"]["judge"], "latency_s": 0.0,
        "retryable": False}
    scored = [(i["question_id"], m, k, a["scores"][k]) for i in (q1, q2) for m in ("llm_only", "rag")
              for a in [i[m]] for k in ("faithfulness", "answer_relevancy") if a["answer"]]
    assert len(scored) == 6
    for qid, mode, metric, s in scored:  # a 135M judge may fail to score; then the reason is there
        assert (s["value"] is not None and 0.0 <= s["value"] <= 1.0) or s["reason"], (qid, mode, metric, s)
    assert any(s["value"] is not None for *_, s in scored)
    # the likelihood judge: "About a week." is not what the evidence says, "The cookie lasts 365 days." is
    f_llm, f_rag = (q1[m]["scores"]["faithfulness"] for m in ("llm_only", "rag"))
    assert f_llm["details"]["judge"] == "likelihood" and "likelihood:v" in f_llm["judge"]
    assert f_rag["value"] > f_llm["value"], (f_rag, f_llm)
    assert [v["verdict"] for v in f_rag["details"]["verdicts"]] == [1]
    for mode in ("llm_only", "rag"):  # judged against the file's context (when the judge got that far)
        details = q1[mode]["scores"]["faithfulness"]["details"]
        assert details.get("evidence", ["answers.csv#Q1:1"]) == ["answers.csv#Q1:1"]
    details = q2["rag"]["scores"]["faithfulness"]["details"]  # no context given: retrieved from the kb
    assert all(e.startswith(str(docs)) for e in details.get("evidence", [])), details
