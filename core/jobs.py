"""Jobs: every long task (a run's execution, a re-judging, ...) as one row in the store.

A job is keyed by what it works on (`run:<run id>`, `rejudge:<run id>`): one current job per
task and target. Whoever wants the work done *submits* the job (a pending row) or *starts* it
(a running row, for a command executing in the foreground); a worker *claims* a pending job.
Every one of these is a conditional write (a merge or update whose condition is re-checked
against the latest version of the table when two writers collide), then a read-back of the
claim's token: of two processes racing for one job exactly one holds it, the other is refused
with a message.

The worker that holds a job beats a heartbeat into its row every few seconds from a
background thread, and reads the cancel flag back at the same time. A job whose heartbeat
is older than STALE_S is dead, on any host and whatever became of its process: no PID
probing. Cancel is honoured from pending on: a pending job is cancelled in place (its
worker, when it starts, finds nothing to claim); a running one is asked to stop after the
items in flight.

    submit / launch  ->  pending  --claim-->  running  --finish-->  done | incomplete | failed | cancelled
                             `--cancel-->  cancelled        (heartbeat older than STALE_S: interrupted)
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from core.errors import RagEvalError
from core.models import Job
from core.store import Store, now, quote

HEARTBEAT_S = 5.0  # how often a worker says it lives
CANCEL_POLL_S = 0.25  # how often, at most, a worker reads its cancel flag from the store
# a job not heard from for this long is dead (a worker's start-up included)
STALE_S = float(os.environ.get("RAGEVAL_JOB_STALE_S") or 45.0)
ACTIVE = ("pending", "running")


class JobBusy(RagEvalError):
    """The job is already pending or running in a live worker."""


def key(kind: str, target: str) -> str:
    return f"{kind}:{target}"


def alive(job: Job | None, at: float | None = None) -> bool:
    """Whether a job is waiting for its worker or being worked on by a live one."""
    return job is not None and job.status in ACTIVE and (at or time.time()) - job.heartbeat < STALE_S


def state(job: Job | None) -> str:
    """The job's status as a person should read it: a pending or running job nobody works
    on any more is 'interrupted'."""
    if job is None:
        return "none"
    return "interrupted" if job.status in ACTIVE and not alive(job) else job.status


def get(store: Store, kind: str, target: str) -> Job | None:
    return store.job(key(kind, target))


def describe(job: Job) -> str:
    """One line naming who holds a job, for refusals."""
    age = max(0, int(time.time() - job.heartbeat))
    who = f"process {job.worker}" if job.worker else "a worker that is starting"
    return f"{job.kind} {job.target} is {job.status} ({who}, last heard from {age} s ago)"


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _new(kind: str, target: str, command: tuple[str, ...], status: str, log: str = "") -> Job:
    t = time.time()
    return Job(key(kind, target), kind, target, tuple(command), status=status, token=secrets.token_hex(8),
               worker=_worker() if status == "running" else "", heartbeat=t, created_at=now(), log=log)


def _put(store: Store, job: Job) -> Job:
    """Write `job` in place of the current one unless that one is alive; refused otherwise."""
    store.put_job_unless_active(job, stale_before=time.time() - STALE_S)
    held = store.job(job.key)
    if held is None or held.token != job.token:
        raise JobBusy(f"{describe(held)}; cancel it first or wait for it to finish" if held else
                      f"{job.key} could not be queued")
    return held


def submit(store: Store, kind: str, target: str, command: tuple[str, ...], log: str = "") -> Job:
    """Queue a job for a worker to claim; refused (JobBusy) while one is pending or running."""
    return _put(store, _new(kind, target, command, "pending", log))


def start(store: Store, kind: str, target: str, command: tuple[str, ...]) -> "Claim":
    """Hold a job in this process at once (a foreground command); refused while another lives."""
    return Claim(store, _put(store, _new(kind, target, command, "running")))


def claim(store: Store, job_key: str, token: str) -> "Claim":
    """Take the pending job that `token` was issued for; refused when it was cancelled,
    claimed by another worker or replaced in the meantime."""
    store.claim_job(job_key, token, _worker(), time.time())
    job = store.job(job_key)
    if job is None or job.token != token or job.status != "running" or job.worker != _worker():
        what = "no longer exists" if job is None else (
            "was cancelled before it started" if job.status == "cancelled" and job.token == token else
            f"is held by another worker ({describe(job)})")
        raise JobBusy(f"job {job_key} {what}")
    return Claim(store, job)


def cancel(store: Store, kind: str, target: str) -> Job | None:
    """Cancel a pending job in place, or ask a running one to stop after the items in flight.
    Returns the job as it is now (None when there is none)."""
    k = key(kind, target)
    store.update_job(k, "status = 'pending'", status="cancelled", ended_at=now())
    store.update_job(k, "status = 'running'", cancel_requested=True)
    return store.job(k)


def shown_status(store: Store, kind: str, target: str, status: str) -> str:
    """A run's or an experiment's stored `status` as a person should read it: 'interrupted' when
    it is marked running (or was launched) but no live worker executes its job any more."""
    if status not in ACTIVE:
        return status
    job = get(store, kind, target)
    if job is None:
        return "interrupted" if status == "running" else "pending"
    return "interrupted" if state(job) in ("interrupted", "failed", "done", "incomplete") else \
        "cancelled" if job.status == "cancelled" else status


def launch(store: Store, home: Path, kind: str, target: str, command: tuple[str, ...], cwd: Path) -> Job:
    """Submit a job and start its worker, `python -m core work KEY TOKEN`, in its own process
    detached from the caller: closing the page or terminal that launched it does not stop it.
    Refused (JobBusy) while the same job is pending or running, so a double click, a second
    tab or a refresh never starts a second worker."""
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{kind}-{target}.log"
    job = submit(store, kind, target, command, str(log))
    env = dict(os.environ, RAGEVAL_HOME=str(home))
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "core", "work", job.key, job.token], cwd=str(cwd), env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    # reap the child when it exits, so it never lingers as a zombie of a long-lived server
    threading.Thread(target=proc.wait, name=f"reap-{job.key}", daemon=True).start()
    return job


class Claim:
    """A job held by this process: beats its heartbeat, carries its progress, sees its cancel
    flag, and records how it ended. Use as a context manager; an exception ends it failed."""

    def __init__(self, store: Store, job: Job):
        self.store, self.job = store, job
        self._progress = (0, 0)
        self._next_poll = 0.0  # when cancelled() next reads the store
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.key}", daemon=True)
        self._thread.start()

    def cancelled(self) -> bool:
        """True once someone asked this job to stop, or another worker took it over. A worker
        asks between items; the store is read at most every CANCEL_POLL_S (a read of the jobs
        table costs milliseconds, as much as the engine's whole work for a model call), so a
        cancel takes effect within that."""
        if not (self._cancel.is_set() or self._lost.is_set()) and time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + CANCEL_POLL_S
            self._check(self.store.job(self.job.key))
        return self._cancel.is_set() or self._lost.is_set()

    def _check(self, job: Job | None) -> None:
        if job is None or job.token != self.job.token:
            self._lost.set()
        elif job.cancel_requested:
            self._cancel.set()

    def progress(self, done: int, total: int) -> None:
        self._progress = (done, total)

    def follow(self, progress=None):
        """A (done, total, what) progress callback that also carries the progress into the job."""
        def followed(done: int, total: int, what: str) -> None:
            self.progress(done, total)
            if progress is not None:
                progress(done, total, what)
        return followed

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.beat()

    def beat(self) -> None:
        done, total = self._progress
        try:
            self.store.update_job(self.job.key, f"token = {quote(self.job.token)}", heartbeat=time.time(),
                                  done=done, total=total)
            job = self.store.job(self.job.key)
        except Exception:  # a store hiccup: the next beat tries again, well inside STALE_S
            return
        self._check(job)

    def finish(self, status: str, error: str = "") -> None:
        """Record how the job ended; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S * 2)
        done, total = self._progress
        self.store.update_job(self.job.key, f"token = {quote(self.job.token)}", status=status, error=error[:2000],
                              ended_at=now(), heartbeat=time.time(), done=done, total=total)
        self.job = replace(self.job, status=status, error=error)
        self.store.optimize("jobs")

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.finish("cancelled" if isinstance(exc, KeyboardInterrupt) else "failed",
                        str(exc) or type(exc).__name__)
        else:
            self.finish(self.job.status if self.job.status not in ACTIVE else "done")
