"""The whole engine on the real embedded models (SmolLM2-135M + all-MiniLM-L6-v2),
driven through the CLI the way a user scripts it."""
import json

from core.cli import main
from core.config import load_settings
from core.llm import get_llm
from core.workspace import open_workspace


def cli(capsys, *args) -> tuple[int, list[str]]:
    code = main(list(args))
    out = capsys.readouterr().out.strip().splitlines()
    return code, out


def test_ingest_run_show_and_rescore_from_cache(settings, docs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAGEVAL_FAITHFULNESS_JUDGE", "auto")  # the default: the likelihood judge
    assert cli(capsys, "ingest", str(docs), "--kb", "demo")[0] == 0
    qfile = tmp_path / "three.csv"
    qfile.write_text("question,category\n"
                     "How long does the Flask-Login remember me cookie last?,flask\n"
                     "How do I connect to an SQLite database?,sqlite\n"
                     "What is the user_loader callback for?,flask\n")
    code, out = cli(capsys, "questions", "import", str(qfile), "--name", "three", "--json")
    assert code == 0 and json.loads(out[-1])["count"] == 3

    code, out = cli(capsys, "run", "--kb", "demo", "--questions", "three")
    assert code == 0
    run_id = out[-1]
    code, out = cli(capsys, "show", run_id, "--json")
    shown = json.loads(out[-1])
    assert shown["run_id"] == run_id and shown["run"]["status"] == "done"
    assert len(shown["items"]) == 3
    for item in shown["items"]:
        for mode in ("llm_only", "rag"):
            a = item[mode]
            assert a["answer"].strip(), (item["question"], mode, a["error"])
            assert a["completion_tokens"] > 0 and a["latency_s"] > 0
            for metric in ("faithfulness", "answer_relevancy"):
                s = a["scores"][metric]
                assert (s["value"] is not None and 0.0 <= s["value"] <= 1.0) or (s["value"] is None and s["reason"])
        assert item["llm_only"]["passages"] == []
        passages = item["rag"]["passages"]
        assert 1 <= len(passages) <= 4 and all(p["text"] and p["id"] and "score" in p for p in passages)
    for mode in ("llm_only", "rag"):
        for metric in ("faithfulness", "answer_relevancy"):
            m = shown["modes"][mode][metric]
            assert m["n_scored"] + m["n_unscored"] == 3 and m["n_missing"] == 0

    # Scoring the unchanged run again is answered wholly from the judge cache.
    model = get_llm(load_settings().judge_model, load_settings().threads)  # answers and judges alike
    calls = model.calls
    code, out = cli(capsys, "rescore", run_id)
    assert code == 0 and out[-1] == run_id
    assert model.calls == calls
    code, out = cli(capsys, "show", run_id, "--json")
    again = json.loads(out[-1])

    def judged(s):  # what the judge said, without the time it took (zero on a cache hit)
        return [{m: {k: v for k, v in i[mode]["scores"][m].items() if k != "latency_s"}
                 for m in i[mode]["scores"]} for i in s["items"] for mode in ("llm_only", "rag")]
    assert judged(again) == judged(shown)
    assert again["modes"] == shown["modes"]
    comparison = again["comparison"]["answer_relevancy"]
    assert comparison["n_pairs"] + comparison["n_excluded"] == 3

    # Judge variance on the real judge: fresh samples at temperature 0.7, none from the cache.
    calls = model.calls
    code, _ = cli(capsys, "rejudge", run_id, "--repeats", "2", "--metrics", "answer_relevancy")
    assert code == 0 and model.calls > calls
    answered = sum(1 for i in again["items"] for m in ("llm_only", "rag") if i[m]["answer"])
    rows = open_workspace(load_settings()).repeats(run_id)
    assert len(rows) == 2 * answered and {r["metric"] for r in rows} == {"answer_relevancy"}
    assert all(r["value"] is not None or r["reason"] for r in rows)  # a score or the reason it is missing
