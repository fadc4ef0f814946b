"""An experiment on the real embedded models (SmolLM2-135M answers, the likelihood judge, MiniLM),
driven through the CLI: two top-k values over two questions, then its leaderboard."""
import json

import pytest

from core.config import load_settings
from core.workspace import open_workspace
from tests.test_engine_e2e import cli


def test_a_small_grid_on_the_embedded_models(settings, docs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAGEVAL_FAITHFULNESS_JUDGE", "auto")  # the default: the likelihood judge
    monkeypatch.setenv("RAGEVAL_ANSWER_MAX_TOKENS", "48")  # short answers keep the test short
    assert cli(capsys, "ingest", str(docs), "--kb", "docs")[0] == 0
    qfile = tmp_path / "two.csv"
    qfile.write_text("question\nHow long does the Flask-Login remember me cookie last?\n"
                     "How do I connect to an SQLite database?\n")
    assert cli(capsys, "questions", "import", str(qfile), "--name", "two")[0] == 0

    code, out = cli(capsys, "experiment", "run", "--name", "top-k", "--kb", "docs", "--questions", "two",
                    "--top-k", "2,1", "--metrics", "faithfulness")
    assert code == 0
    exp_id = out[-1]
    code, out = cli(capsys, "experiment", "show", exp_id, "--json")
    doc = json.loads(out[-1])
    assert doc["status"] == "done" and doc["baseline"] == 1 and doc["mode"] == "rag"
    assert [(c["label"], c["status"]) for c in doc["configs"]] == [("top-2", "done"), ("top-1", "done")]
    base, other = doc["leaderboard"]
    assert base["baseline"] and base["mean_diff"] is None and base["n_scored"] == 2
    if other["n_pairs"] == other["n_scored"] == 2:  # both questions scored in both runs: a paired mean is
        assert other["mean_diff"] == pytest.approx(other["mean"] - base["mean"])  # the difference of the means
    store = open_workspace(load_settings())
    for c in doc["configs"]:
        run = store.run(c["run_id"])
        assert run.config["experiment"] == exp_id and run.top_k == int(c["label"][-1])
        answers = store.answers(run.id)
        assert len(answers) == 2 and all(a.text.strip() and a.model.startswith("embedded:") for a in answers)
        assert all(len(a.passages) == run.top_k for a in answers)
        scores = store.scores(run.id)
        assert len(scores) == 2 and all(s.judge and (s.value is not None or s.reason) for s in scores)
    code, out = cli(capsys, "experiment", "show", exp_id)
    assert code == 0 and out[0].startswith(f"experiment {exp_id} 'top-k' [done]: 2 configurations")
    code, out = cli(capsys, "experiment", "list", "--json")
    assert [(e["id"], e["status"], e["configs"]) for e in json.loads(out[-1])] == [(exp_id, "done", 2)]
