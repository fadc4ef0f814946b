"""The store on S3-compatible object storage: a real S3 server (moto's, on 127.0.0.1, started
here) holds everything the store holds, while caches and logs stay under RAGEVAL_HOME.

The whole CLI path runs against it (ingest, a run on the scripted endpoint, SIGKILL mid-run and
resume, show, report), two processes write runs at once, and processes race for one job. The
endpoint, region and keys reach LanceDB only as AWS_* environment variables: afterwards no
object in the bucket holds the secret key."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid

import pytest
from moto.server import ThreadedMotoServer

from core import jobs
from core.cli import main
from core.config import PROJECT_ROOT, ConfigError, data_locations, load_settings, secrets_to_env
from core.models import Question
from tests.conftest import write_docs
from tests.fault_server import FaultServer
from tests.test_jobs import RACE

SECRET = "s3cr3t-" + uuid.uuid4().hex  # a dummy key whose every byte we can look for afterwards
ACCESS_KEY = "AKIA" + uuid.uuid4().hex[:16].upper()
QUESTIONS = [Question(f"q{i}", f"Question {i}: how long does the remember me cookie last?") for i in range(1, 4)]


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 in this process, on a free port of 127.0.0.1; its request log silenced."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, tmp_path, monkeypatch):
    """A fresh bucket, the AWS_* variables LanceDB reads, RAGEVAL_STORAGE_URI on it, a local home,
    and the scripted endpoint as answer and judge model. Yields (env, settings, store, server, bucket)."""
    import boto3

    bucket = "rageval-" + uuid.uuid4().hex[:12]
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET)
    client.create_bucket(Bucket=bucket)
    server = FaultServer()
    env = {"AWS_ENDPOINT_URL": s3_server, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
           "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
           "RAGEVAL_STORAGE_URI": f"s3://{bucket}/team", "RAGEVAL_HOME": str(tmp_path / "home"),
           "RAGEVAL_RELEVANCY_STRICTNESS": "1", "RAGEVAL_FAITHFULNESS_JUDGE": "ragas", "RAGEVAL_JOB_STALE_S": "3"}
    for role in ("ANSWER", "JUDGE"):
        env.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "m",
                    f"RAGEVAL_{role}_BASE_URL": server.url})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(jobs, "STALE_S", 3.0)
    from core.workspace import open_workspace

    settings = load_settings()
    yield dict(os.environ), settings, open_workspace(settings), server, (client, bucket)
    server.close()


def cli(capsys, *args) -> list[str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out.strip().splitlines()


def core(env: dict, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", *args], cwd=str(PROJECT_ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bucket_objects(client, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def local_files(home) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def written(store, run_id: str, after: str = "") -> tuple[str, str]:
    """When a run's answers and scores (those written after `after`) were written: (first, last)."""
    stamps = [t for name in ("answers", "scores")
              for t in store.run_columns(name, run_id, ["created_at"])["created_at"].to_pylist() if t > after]
    return min(stamps), max(stamps)


def exactly_once(store, run_id: str, questions: int) -> None:
    """Every answer and score of the run is stored once (two modes, two metrics a question)."""
    answers = [(a.question_id, a.mode) for a in store.answers(run_id) if a.text and not a.error]
    scores = [(s.question_id, s.mode, s.metric) for s in store.scores(run_id) if s.value is not None]
    assert len(answers) == len(set(answers)) == 2 * questions and len(scores) == len(set(scores)) == 4 * questions
    assert store.run(run_id).status == "done" and jobs.get(store, "run", run_id).status == "done"


def test_the_whole_cli_path_on_object_storage_a_kill_a_resume_beside_a_second_writer(s3, embedder, tmp_path,
                                                                                      capsys):
    """ingest → run (SIGKILLed mid-run) → resume, while another process writes a second run → show →
    report, all on the bucket; afterwards only caches and logs are under RAGEVAL_HOME and no object
    holds a key."""
    env, settings, store, server, (client, bucket) = s3
    assert settings.on_object_storage and store.uri == f"s3://{bucket}/team"
    cli(capsys, "ingest", str(write_docs(tmp_path / "docs")), "--kb", "kb")
    qfile = tmp_path / "three.csv"
    qfile.write_text("id,question\n" + "".join(f"{q.id},{q.question}\n" for q in QUESTIONS), encoding="utf-8")
    cli(capsys, "questions", "import", str(qfile), "--name", "three", "--json")

    # two processes at once: one to be killed mid-run, and a longer run that writes throughout
    server.delay_s = 0.1  # every model call takes a while: a run can be killed in the middle
    worker = core(env, "run", "--kb", "kb", "--questions", "three")
    writer = core(env, "run", "--kb", "kb", "--questions", "default", "--limit", "12")
    first = None
    while first is None and worker.poll() is None:
        first = next((r.id for r in store.runs() if r.question_set == "three" and len(store.answers(r.id)) >= 2),
                     None)
        time.sleep(0.1)
    worker.kill()  # SIGKILL: no cleanup
    worker.communicate()
    assert first and 2 <= len(store.answers(first)) < 6
    killed_at = written(store, first)[1]
    while jobs.state(jobs.get(store, "run", first)) != "interrupted":  # its heartbeat goes stale
        time.sleep(0.2)
    while writer.poll() is None and not any(store.answers(r.id) for r in store.runs() if r.question_set == "default"):
        time.sleep(0.2)  # the second run is writing (it has 24 items to go through: seconds more)
    assert writer.poll() is None, "the second run ended before the resume: nothing ran at the same time"
    assert cli(capsys, "resume", first)[-1] == first  # here, while the other process still writes its run
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err[-2000:]
    second = out.strip().splitlines()[-1]
    assert {r.id for r in store.runs()} == {first, second}
    exactly_once(store, first, 3)
    exactly_once(store, second, 12)
    resumed, other = written(store, first, after=killed_at), written(store, second)
    assert resumed[0] <= other[1] and other[0] <= resumed[1], (resumed, other)  # the two wrote at the same time
    assert 30 <= server.total("answer") <= 31  # each answer once; at most the one in flight at the kill twice

    shown = json.loads(cli(capsys, "show", first, "--json")[-1])
    assert shown["run"]["status"] == "done" and shown["run"]["kb"] == "kb" and len(shown["items"]) == 3
    assert all(item["rag"]["passages"] for item in shown["items"])  # retrieval read the knowledge base on S3
    report = tmp_path / "report.html"
    cli(capsys, "report", first, "--out", str(report))
    assert first in report.read_text(encoding="utf-8")

    home = settings.home
    assert all(f.startswith(("cache/", "logs/")) for f in local_files(home)), local_files(home)
    objects = bucket_objects(client, bucket)
    assert all(k.startswith("team/") and k.split("/")[1].endswith(".lance") for k in objects)  # tables only
    tables = {k.split("/")[1] for k in objects}
    assert {"kb_kb.lance", "runs.lance", "answers.lance", "scores.lance", "jobs.lance", "questions.lance",
            "question_sets.lance"} <= tables
    assert any("/_refs/tags/run-" in k for k in objects)  # the runs pinned their knowledge-base version on S3
    leaked = [k for k, body in objects.items() if SECRET.encode() in body or ACCESS_KEY.encode() in body]
    assert leaked == []


def test_of_processes_racing_for_one_job_on_object_storage_exactly_one_wins(s3, tmp_path):
    """The jobs' conditional updates hold on S3 (lance commits with conditional PUTs there)."""
    env, _, store, _, _ = s3
    start_at, done_dir = time.time() + 6.0, tmp_path / "done"  # all four are imported and waiting by then
    done_dir.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", RACE, store.uri, str(start_at), str(done_dir), "3"],
                              cwd=str(PROJECT_ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    lines = [o.strip() for o, _ in outs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    won = [line for line in lines if line.startswith("won")]
    assert len(won) == 1, lines
    assert all(line.startswith("refused") and "race t is running" in line for line in lines if line not in won)
    job = store.job("race:t")
    assert job.status == "done" and job.token == won[0].split()[1]


def test_the_settings_page_shows_where_data_lives_without_keys(s3):
    from streamlit.testing.v1 import AppTest

    env, settings, _, _, (_, bucket) = s3
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "settings.py"), default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    where = dict(zip(table["what"], zip(table["where"], table["kept"])))
    assert where["knowledge bases, question sets, runs, answers, scores, judge checks, jobs"] == (
        f"s3://{bucket}/team", "shared: object storage")
    assert where["object-storage endpoint (AWS_ENDPOINT_URL)"][0] == env["AWS_ENDPOINT_URL"]
    assert where["judge cache"] == (str(settings.home / "cache" / "judge"), "this machine")
    assert where["keys (values never shown)"][0] == "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"
    assert SECRET not in repr(at) and SECRET not in table.to_csv()


def test_storage_settings_refuse_credentials_in_the_uri_and_unknown_schemes(tmp_path):
    base = {"RAGEVAL_HOME": str(tmp_path)}
    for uri, says in (("s3://AKIA:k3yv4lue@bucket/p", "credentials do not belong in the URI"),
                      ("s3://bucket/p?X-Amz-Signature=sig0123", "credentials do not belong in the URI"),
                      ("http://bucket/p", "use a local folder or an object-storage URI"),
                      ("s3:///p", "name the bucket")):
        with pytest.raises(ConfigError, match=says) as e:
            load_settings({**base, "RAGEVAL_STORAGE_URI": uri}, use_file=False)
        assert "k3yv4lue" not in str(e.value) and "sig0123" not in str(e.value)
    local = load_settings({**base, "RAGEVAL_STORAGE_URI": str(tmp_path / "db")}, use_file=False)
    assert not local.on_object_storage and data_locations(local, {})["endpoint"] == ""
    assert load_settings({**base, "RAGEVAL_STORAGE_URI": "gs://bucket/p"}, use_file=False).on_object_storage


def test_object_storage_keys_may_come_from_the_secrets_file_and_the_environment_wins(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('AWS_ACCESS_KEY_ID = "from-file"\nAWS_SECRET_ACCESS_KEY = "file-secret"\n'
                       'OPENAI_API_KEY = "not-ours"\n', encoding="utf-8")
    env = {"AWS_ACCESS_KEY_ID": "from-env"}
    secrets_to_env(env=env, path=secrets)
    assert env == {"AWS_ACCESS_KEY_ID": "from-env", "AWS_SECRET_ACCESS_KEY": "file-secret"}


def test_a_bucket_that_does_not_exist_or_an_endpoint_that_is_down_is_one_line_naming_the_setting(
        s3_server, tmp_path, monkeypatch):
    from core.workspace import open_workspace

    for k, v in {"AWS_ENDPOINT_URL": s3_server, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
                 "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET}.items():
        monkeypatch.setenv(k, v)
    settings = load_settings({"RAGEVAL_HOME": str(tmp_path), "RAGEVAL_STORAGE_URI": "s3://no-such-bucket-here/p"},
                             use_file=False)
    with pytest.raises(ConfigError, match=r"RAGEVAL_STORAGE_URI=s3://no-such-bucket-here/p: the database cannot be "
                                          r"opened \(the bucket does not exist; endpoint http://127") as e:
        open_workspace(settings)
    assert SECRET not in str(e.value) and ACCESS_KEY not in str(e.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    settings = load_settings({"RAGEVAL_HOME": str(tmp_path), "RAGEVAL_STORAGE_URI": "s3://other-bucket/p"},
                             use_file=False)
    with pytest.raises(ConfigError, match="the endpoint cannot be reached; endpoint http://127.0.0.1:1"):
        open_workspace(settings)
