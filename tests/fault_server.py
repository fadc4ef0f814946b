"""An OpenAI-compatible chat server on 127.0.0.1 that fails on purpose, for tests and bench/faults.py.

Healthy, it answers deterministically: an answer call (no `response_format`) gets a short
answer naming the question; a judge call gets JSON valid for the schema it sends (RAGAS's
StatementGeneratorOutput, NLIStatementOutput, AnswerRelevanceOutput). A fault mode makes
it fail the answer calls, the judge calls or both, in one of the ways real servers fail.
Every response goes out in one write with TCP_NODELAY: headers and body in two segments
cost ~44 ms a call (Nagle + delayed ACK).
"""
from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("500", "429", "hang", "bad_json", "html", "no_choices", "empty", "reset")
TRANSIENT = tuple(f for f in FAULTS if f != "empty")  # empty content is a final failure, not a passing one
HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


class FaultServer:
    """`mode`: "ok", one of FAULTS, or "mix" (a seeded `rate` of calls fail in a random transient
    way); `side`: which calls fail: "answer", "judge" or "all". `calls` counts what was served,
    by side and by outcome ("ok" or the fault)."""

    def __init__(self, hang_s: float = 1.0, retry_after: str = "0"):
        self.mode, self.side, self.rate = "ok", "all", 0.3
        self.hang_s, self.retry_after = hang_s, retry_after
        self.fail_first = 0  # with a mode: only the first N matching calls fail, then it is healthy
        self.delay_s = 0.0  # every call waits this long first (a slow but healthy server)
        self.raw_body = b""  # what mode "raw" sends
        self.calls: Counter = Counter()
        self.times: list[float] = []
        self.in_flight = self.peak = 0  # calls being served now, and the most at once since `set`
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def set(self, mode: str = "ok", side: str = "all", seed: int = 0, rate: float = 0.3, fail_first: int = 0):
        with self._lock:
            self.mode, self.side, self.rate, self.fail_first = mode, side, rate, fail_first
            self._rng = random.Random(seed)
            self.calls = Counter()
            self.times = []
            self.peak = self.in_flight

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def healthy(self, side: str | None = None) -> int:
        """Calls answered correctly (of one side, or all)."""
        return sum(n for (s, outcome), n in self.calls.items() if outcome == "ok" and side in (None, s))

    def total(self, side: str | None = None) -> int:
        return sum(n for (s, _), n in self.calls.items() if side in (None, s))

    def _decide(self, side: str) -> str:
        with self._lock:
            self.times.append(time.monotonic())
            fault = "ok"
            if self.mode != "ok" and self.side in ("all", side):
                if self.mode == "mix":
                    fault = self._rng.choice(TRANSIENT) if self._rng.random() < self.rate else "ok"
                elif self.fail_first == 0 or self.total() < self.fail_first:
                    fault = self.mode
            self.calls[(side, fault)] += 1
            return fault

    def _serving(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.peak = max(self.peak, self.in_flight)


def _handler(server: FaultServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def finish(self):
            try:
                super().finish()
            except OSError:  # the connection was reset or the client gave up on a hang
                pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            side = "judge" if body.get("response_format") else "answer"
            fault = server._decide(side)
            server._serving(+1)
            try:
                self._respond(body, fault)
            finally:
                server._serving(-1)

        def _respond(self, body: dict, fault: str):
            time.sleep(server.delay_s)
            if fault == "reset":  # close without answering: SO_LINGER 0 sends a TCP reset
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault == "hang":
                time.sleep(server.hang_s)
                self.close_connection = True
                return
            if fault.isdigit() and fault != "429":  # 500; and 401, 400 for the tests of final refusals
                return self._send(int(fault), {"error": {"message": "the model crashed" if fault == "500"
                                                         else "request refused", "type": "error"}})
            if fault == "429":
                after = server.retry_after if server.retry_after != "date" else formatdate(time.time() + 2, usegmt=True)
                return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": after})
            if fault == "bad_json":
                return self._send(200, b'{"id": "x", "choices": [{"message": ', {"Content-Type": "application/json"})
            if fault == "html":
                return self._send(200, HTML, {"Content-Type": "text/html"})
            if fault == "raw":  # a body the test chose, sent as JSON
                return self._send(200, server.raw_body)
            if fault == "no_choices":
                return self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "m"})
            text = "" if fault == "empty" else _reply(body)
            self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

        def _send(self, status: int, payload, headers: dict | None = None):
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            head = {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}
            lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
            lines += [f"{k}: {v}" for k, v in head.items()]
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)  # one write, one segment

    return Handler


def _reply(body: dict) -> str:
    """A healthy answer: plain text for an answer call, schema-valid JSON for a judge call."""
    prompt = body["messages"][-1]["content"]
    rf = body.get("response_format")
    if not rf:
        question = prompt.split("Question: ")[-1].strip()
        source = "the passages say" if "Documentation passages" in prompt else "I believe"  # modes differ
        return f"The remember me cookie lasts 365 days, {source}, which answers: {question}"
    schema = rf.get("json_schema", {}).get("schema") or rf.get("schema") or {}
    title = schema.get("title", "")
    if title == "StatementGeneratorOutput":
        answer = _field(prompt, "answer") or "the answer"
        return json.dumps({"statements": [answer[:300]]})
    if title == "NLIStatementOutput":
        statements = re.findall(r'"statements":\s*\[\s*"((?:[^"\\]|\\.)*)"', prompt)
        return json.dumps({"statements": [{"statement": s, "reason": "the context says so", "verdict": 1}
                                          for s in statements[-1:] or ["the answer"]]})
    if title == "AnswerRelevanceOutput":
        return json.dumps({"question": "How long does the remember me cookie last?", "noncommittal": 0})
    raise ValueError(f"the fault server has no reply for schema {title!r}")


def _field(prompt: str, name: str) -> str:
    """The last `"name": "..."` value in a RAGAS prompt (its input is rendered as JSON at the end)."""
    found = re.findall(rf'"{name}":\s*"((?:[^"\\]|\\.)*)"', prompt)
    return json.loads(f'"{found[-1]}"') if found else ""
