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
