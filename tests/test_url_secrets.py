"""Credentials written into an endpoint URL go to the endpoint and nowhere else: a key planted in the
base URL of a real local server is scanned for in every file of the workspace (LanceDB files as
bytes), in every export and in the CLI's output, after run, resume, show, report, rejudge and judge
check; resume finds the real URL again from the live settings."""
import base64
from pathlib import Path

import pytest

from core import cli
from core.config import ModelConfig, live_model, load_settings, redact_url, stored_model
from core.errors import ConfigError
from core.models import Question
from core.store import get_store

from tests.fault_server import FaultServer

KEY = "SEKRIT123"


@pytest.fixture
def server():
    srv = FaultServer()
    seen = []
    handler = srv._httpd.RequestHandlerClass

    class Recording(handler):  # what reached the server: the path (with its query) and the auth header
        def do_POST(self):
            seen.append((self.path, self.headers.get("Authorization", "")))
            return super().do_POST()

    srv._httpd.RequestHandlerClass = Recording
    srv.seen = seen
    yield srv
    srv.close()


def planted(url: str) -> str:
    host = url.removeprefix("http://")
    return f"http://user:{KEY}@{host}?api-key={KEY}"


def test_redact_url_removes_user_info_and_secret_query_values():
    assert redact_url(f"https://user:{KEY}@127.0.0.1:9/v1?api-key={KEY}") == "https://***@127.0.0.1:9/v1?api-key=***"
    assert redact_url("https://h/v1?key=a&api_key=b&token=c&access_token=d&secret=e&password=f&sig=g&model=m") == (
        "https://h/v1?key=***&api_key=***&token=***&access_token=***&secret=***&password=***&sig=***&model=m")
    assert redact_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
    assert redact_url("https://h/v1?a=%7E") == "https://h/v1?a=%7E"  # untouched when nothing is secret
    assert redact_url(redact_url(f"https://u:{KEY}@h/v1")) == "https://***@h/v1"


def test_a_stored_redacted_url_resumes_with_the_live_one_or_says_what_to_set(tmp_path):
    real = f"https://u:{KEY}@api.example/v1?key={KEY}"
    env = {"RAGEVAL_HOME": str(tmp_path), "RAGEVAL_JUDGE_BACKEND": "openai", "RAGEVAL_JUDGE_MODEL": "m",
           "RAGEVAL_JUDGE_BASE_URL": real}
    settings = load_settings(env, use_file=False)
    stored = ModelConfig(**stored_model(settings.judge_model))
    assert stored.base_url == "https://***@api.example/v1?key=***"
    assert live_model(stored, settings).base_url == real
    elsewhere = load_settings({**env, "RAGEVAL_JUDGE_BASE_URL": "https://other.example/v1"}, use_file=False)
    with pytest.raises(ConfigError, match=r"set RAGEVAL_ANSWER_BASE_URL or RAGEVAL_JUDGE_BASE_URL to the full URL"):
        live_model(stored, elsewhere)


def test_a_key_in_the_base_url_reaches_the_endpoint_and_nothing_else(server, tmp_path, monkeypatch, capsys, docs):
    home = tmp_path / "home"
    url = planted(server.url)
    env = {"RAGEVAL_HOME": str(home), "RAGEVAL_RELEVANCY_STRICTNESS": "1", "RAGEVAL_FAITHFULNESS_JUDGE": "ragas"}
    for role in ("ANSWER", "JUDGE"):
        env.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "m", f"RAGEVAL_{role}_BASE_URL": url,
                    f"RAGEVAL_{role}_TIMEOUT": "5", f"RAGEVAL_{role}_RETRIES": "1", f"RAGEVAL_{role}_BACKOFF": "0.01",
                    f"RAGEVAL_{role}_BACKOFF_MAX": "0.05"})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = []

    def call(*args, code=0):
        assert cli.main(list(args)) == code, capsys.readouterr()
        captured = capsys.readouterr()
        out.append(captured.out + captured.err)
        return captured

    call("ingest", str(docs), "--kb", "kb")
    settings = load_settings()
    get_store(settings.db_uri).save_question_set("two", [Question("a", "How long does the remember cookie last?"),
                                                         Question("b", "How do I connect to SQLite?")])
    server.set("500", "judge")  # the judge fails: the run ends incomplete and resume must reach it again
    run_id = call("run", "--kb", "kb", "--questions", "two", code=3).err.strip().splitlines()[0].split()[-1]
    server.set("ok")
    call("resume", run_id)
    run = get_store(settings.db_uri).run(run_id)
    assert run.status == "done"
    redacted = redact_url(url)
    assert run.config["answer_model"]["base_url"] == run.config["judge_model"]["base_url"] == redacted
    assert run.answer_model == f"openai:m@{redacted}"

    exports = [tmp_path / f"out.{ext}" for ext in ("html", "csv", "parquet", "json")]
    call("show", run_id)
    call("show", run_id, "--json")
    for path in exports:
        call("report", run_id, "--out", str(path))
    call("rejudge", run_id, "--repeats", "2", "--temperature", "0.7")
    call("judge", "check", "--limit", "1")
    call("judge", "check", "--limit", "1", "--json")
    call("runs")
    call("runs", "--json")

    # the endpoint got the key on every call, the run's resume included: the real URL was used
    basic = base64.b64encode(f"user:{KEY}".encode()).decode()
    assert len(server.seen) > 10
    assert all(f"api-key={KEY}" in path and basic in auth for path, auth in server.seen), server.seen[:3]

    leaks = [p for p in [*home.rglob("*"), *exports] if p.is_file() and KEY.encode() in p.read_bytes()]
    assert not leaks, leaks
    assert not [o for o in out if KEY in o]
    assert redacted in "".join(out)  # the endpoint is still named, without its key
    assert not [p for p in home.rglob("*") if KEY in str(p)]


def test_the_settings_page_will_not_save_a_url_with_a_key(tmp_path):
    from core.config import save_values

    with pytest.raises(ConfigError, match="setting RAGEVAL_JUDGE_BASE_URL: a URL with a key in it is not saved"):
        save_values(tmp_path, {"RAGEVAL_JUDGE_BASE_URL": f"https://h/v1?token={KEY}"})
    assert not list(Path(tmp_path).iterdir())
