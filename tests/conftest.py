"""Shared fixtures: a workspace in tmp_path, the real encoder, and a small corpus."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT, load_settings
from core.embeddings import get_embedder
from core.workspace import open_workspace

DOCS = {
    "flask_login.md": """
        # Flask-Login

        Flask-Login provides user session management for Flask. It handles logging in,
        logging out, and remembering users' sessions over extended periods of time.

        ## Remember me

        The remember me feature stores a cookie on the user's computer, so when the session
        expires the user is logged in again. Pass `remember=True` to `login_user`. The cookie
        lasts 365 days by default, set by `REMEMBER_COOKIE_DURATION`.

        ## User loader

        You must provide a `user_loader` callback. It reloads the user object from the user
        ID stored in the session.
        """,
    "sqlite.rst": """
        sqlite3 interface
        =================

        Connecting
        ----------

        To connect to a database, call :func:`sqlite3.connect` with the path of the database
        file, for example ``sqlite3.connect("tutorial.db")``. The special name ``":memory:"``
        opens a database in RAM.

        .. toctree::
           :maxdepth: 2

           other

        Transactions
        ------------

        Call ``con.commit()`` to commit a transaction and ``con.rollback()`` to roll it back.
        """,
    "gunicorn.txt": """
        Gunicorn is a Python WSGI HTTP server for UNIX. It uses a pre-fork worker model.
        Start it with: gunicorn --workers 4 myapp:app
        """,
}


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGEVAL_HOME", str(tmp_path / "home"))
    # Orchestration tests script RAGAS's faithfulness prompts on a fake judge; the likelihood
    # judge (the default for the embedded model) reads log-probabilities a script does not
    # have, and is tested on the real model (test_likelihood.py and the end-to-end tests set "auto").
    monkeypatch.setenv("RAGEVAL_FAITHFULNESS_JUDGE", "ragas")
    return load_settings()


@pytest.fixture
def store(settings):
    return open_workspace(settings)


@pytest.fixture(scope="session")
def embedder():
    return get_embedder("")


@pytest.fixture
def docs(tmp_path) -> Path:
    return write_docs(tmp_path / "docs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_server(args: list[str], log: Path, env: dict | None = None, timeout: float = 120,
                 program: str = sys.executable):
    """A server process of ours on 127.0.0.1 (`program args`, `{port}` filled in); yields its port
    once it accepts connections. Its output goes to a file, not a pipe: a chatty start (llama.cpp)
    would fill a pipe and block."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([program, *[a.replace("{port}", str(port)) for a in args]],
                                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"{args[:2]} did not start:\n" + log.read_text()[-2000:]) from None
                time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
