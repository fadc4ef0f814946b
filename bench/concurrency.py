"""Concurrency benchmark: a run against an OpenAI-compatible server that answers after a fixed delay.

    python bench/concurrency.py [--questions 100] [--delay 0.3] [--levels 1,4,8,16]

The server (tests/fault_server.py, a real HTTP server on 127.0.0.1, in a process of its own)
answers every call after `--delay` seconds and counts the calls it serves at once. Per RAGEVAL_CONCURRENCY level it prints
the run's wall time beside the ideal (calls × delay ÷ concurrency) and their ratio, and the most
calls the server ever had in flight. Then, with an instant server, the engine's own time per model
call (wall ÷ calls at concurrency 1: everything but the model), and a warm re-score (every judge
call answered from the cache) beside the cold run it repeats, as a speed-up.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class ServerProcess:
    """The fault server in a process of its own, so its work is not counted as the engine's
    (and does not compete with the engine for the interpreter lock)."""

    def __init__(self):
        spawn = multiprocessing.get_context("spawn")  # not a fork of a process that holds LanceDB's runtime
        self.conn, child = spawn.Pipe()
        self.proc = spawn.Process(target=_serve, args=(child,), daemon=True)
        self.proc.start()
        self.url = self.conn.recv()

    def reset(self, delay: float) -> None:
        self.conn.send(("reset", delay))
        self.conn.recv()

    def stats(self) -> tuple[int, int]:
        """Calls served since the last reset, and the most at once."""
        self.conn.send(("stats", None))
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(("close", None))
        self.proc.join(timeout=10)


def _serve(conn) -> None:
    from tests.fault_server import FaultServer

    server = FaultServer()
    conn.send(server.url)
    while True:
        try:
            command, arg = conn.recv()
        except EOFError:  # the bench ended without saying so
            command = "close"
        if command == "reset":
            server.delay_s = arg
            server.set("ok")
            conn.send(None)
        elif command == "stats":
            conn.send((server.total(), server.peak))
        else:
            server.close()
            return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=100, help="questions, each answered in both modes")
    ap.add_argument("--delay", type=float, default=0.3, help="seconds the server takes per call")
    ap.add_argument("--levels", default="1,4,8,16", help="RAGEVAL_CONCURRENCY values to run at")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="rageval-concurrency-"))
    os.environ["RAGEVAL_HOME"] = str(home / "home")
    from bench.faults import endpoint_workspace
    from core.executor import Executor
    from core.runs import create_run

    server = ServerProcess()
    for role in ("ANSWER", "JUDGE"):
        os.environ.update({f"RAGEVAL_{role}_BACKEND": "openai", f"RAGEVAL_{role}_MODEL": "m",
                           f"RAGEVAL_{role}_BASE_URL": server.url})
    os.environ["RAGEVAL_FAITHFULNESS_JUDGE"] = "ragas"  # an endpoint judge: RAGAS's prompts, 2 calls an answer
    base, store, embedder = endpoint_workspace(home, "bench", args.questions)

    def execute(case: str, concurrency: int, delay: float, run_id: str | None = None, rescore: bool = False):
        # each case has its own judge cache, so no cold run is answered from another's
        settings = dataclasses.replace(base, home=home / case, storage_uri=base.db_uri, concurrency=concurrency)
        run_id = run_id or create_run(store, settings, "kb", "bench").id
        server.reset(delay)
        t0 = time.perf_counter()
        Executor(store, settings, embedder, run_id).execute(rescore=rescore)
        wall = time.perf_counter() - t0
        return run_id, wall, *server.stats()

    execute("warmup", 4, 0.0)  # imports, first connections, table creation
    print(f"{args.questions} questions x 2 modes, faithfulness + answer relevancy, server delay {args.delay:g} s")
    print(f"{'concurrency':>11} {'calls':>6} {'wall s':>8} {'ideal s':>8} {'wall/ideal':>10} {'peak in flight':>15}")
    for level in (int(x) for x in args.levels.split(",")):
        _, wall, calls, peak = execute(f"c{level}", level, args.delay)
        ideal = calls * args.delay / level
        print(f"{level:>11} {calls:>6} {wall:8.2f} {ideal:8.2f} {wall / ideal:10.2f} {peak:>15}")

    run_id, cold, calls, _ = execute("instant", 1, 0.0)
    print(f"engine time per model call (instant server, concurrency 1): {cold / calls * 1000:.1f} ms "
          f"({calls} calls in {cold:.2f} s)")
    level = 4
    run_id, cold, calls, _ = execute("rescore", level, args.delay)
    _, warm, warm_calls, _ = execute("rescore", level, args.delay, run_id=run_id, rescore=True)
    print(f"warm re-score at concurrency {level}: {warm:.2f} s and {warm_calls} model calls, "
          f"cold run {cold:.2f} s ({calls} calls): {cold / warm:.1f}x faster")
    server.close()


if __name__ == "__main__":
    main()
