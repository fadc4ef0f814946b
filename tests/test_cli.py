"""`python -m core` as a separate process: JSON outputs and one-line errors."""
import json
import os
import subprocess
import sys

from core.config import PROJECT_ROOT


def core(home, *args):
    env = dict(os.environ, RAGEVAL_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=300)


def test_questions_import_and_list(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"question": "What is Flask?"}\n{"query": "What is Gunicorn?", "id": "g1"}\n')
    p = core(tmp_path / "home", "questions", "import", str(f), "--name", "mine", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["count"] == 2
    p = core(tmp_path / "home", "questions", "list", "--json")
    sets = {s["name"]: s for s in json.loads(p.stdout)}
    assert sets["mine"]["count"] == 2 and sets["default"]["count"] == 30


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text\nhello\n")
    for args, message in [
        (("questions", "import", str(bad), "--name", "x"), "error: bad.csv: no question column"),
        (("run", "--kb", "nowhere"), "error: knowledge base 'nowhere' does not exist"),
        (("show", "no-such-run"), "error: run 'no-such-run' does not exist"),
        (("ingest", str(tmp_path / "missing"), "--kb", "k"), "no such file or folder"),
    ]:
        p = core(tmp_path / "home", *args)
        assert p.returncode == 2, (args, p.stderr)
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], p.stderr
        assert "Traceback" not in p.stderr
    p = core(tmp_path / "home", "questions", "list", "--json")
    assert [s["name"] for s in json.loads(p.stdout)] == ["default"]  # nothing of the bad file was stored


def test_review_a_score_and_see_it_in_show(settings, store, monkeypatch):
    from core.models import MODES, Question, Run, Score
    from core.store import now

    saved = store.save_question_set("two", [Question("q0", "Q0?"), Question("q1", "Q1?")])
    store.create_run(Run("r1", now(), "kb", "two", saved.version, MODES, ("faithfulness",), "endpoint:m",
                         "endpoint:j", 4, "hybrid", status="done"))
    store.add_scores([Score("r1", "q0", "llm_only", "faithfulness", 0.2), Score("r1", "q0", "rag", "faithfulness", 0.9),
                      Score("r1", "q1", "llm_only", "faithfulness", None, "no statements"),
                      Score("r1", "q1", "rag", "faithfulness", 0.6)])
    p = core(settings.home, "review", "r1", "q0", "rag", "faithfulness", "--verdict", "wrong", "--note", "a year",
             "--reviewer", "ana")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ana's review of q0 rag faithfulness (judge: 0.90) stored: wrong"
    p = core(settings.home, "review", "r1", "q1", "llm_only", "faithfulness", "--verdict", "right", "--reviewer", "ana")
    assert p.returncode == 2 and p.stderr.strip().endswith("cannot be right or wrong: give your own score instead")
    monkeypatch.setenv("RAGEVAL_REVIEWER", "cli-user")
    p = core(settings.home, "review", "r1", "q1", "llm_only", "faithfulness", "--score", "0.3")
    assert p.returncode == 0 and "cli-user's review" in p.stdout, p.stderr
    p = core(settings.home, "show", "r1", "--json")
    doc = json.loads(p.stdout)
    assert [(r["reviewer"], r["verdict"], r["score"]) for r in doc["reviews"]] == [("ana", "wrong", None),
                                                                                  ("cli-user", "", 0.3)]
    agreement = doc["human_review"]["faithfulness"]["agreement"]
    assert (agreement["n"], agreement["agree"], agreement["n_unscored"]) == (1, 0, 1)
    assert doc["human_review"]["faithfulness"]["needed"] == 20


def test_the_store_opens_without_lances_rest_client_which_still_loads_on_first_use(tmp_path):
    # The REST client's package init (1.3 s of pydantic decorations) runs only when one of its
    # names is used; the store's own work never needs it.
    script = """
import sys
from core.config import load_settings
from core.workspace import open_workspace
store = open_workspace(load_settings())
store.runs()
assert not any(m.startswith("lance_namespace_urllib3_client.api") for m in sys.modules), "REST API imported"
import lance_namespace_urllib3_client as client
assert client.ApiClient.__name__ == "ApiClient" and "lance_namespace_urllib3_client.api" in sys.modules
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300,
                       env=dict(os.environ, RAGEVAL_HOME=str(tmp_path / "home")))
    assert p.returncode == 0, p.stderr
