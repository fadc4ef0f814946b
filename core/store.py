"""The LanceDB database: every table, its schema, and every read and write.

Tables
    kb_<name>       one per knowledge base: chunks with their vectors and metadata
    question_sets   one row per saved version of a named set
    questions       the questions of every set version
    runs            one row per run, with its status and cancel flag
    answers         one row per (run, question, mode), written as each completes
    scores          one row per (run, question, mode, metric), written as each completes
    judge_repeats   extra judgings of a run's answers, to measure the judge's own noise
    judge_checks    one row per calibration check of a judge, keyed by the judge's identity
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict
from datetime import datetime, timezone
from functools import lru_cache

# lance's Rust deprecation chatter is not for users
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCEDB_LOG", "error")

import lancedb  # noqa: E402
import pyarrow as pa  # noqa: E402

from core.errors import NotFoundError, RagEvalError
from core.models import Answer, Passage, Question, QuestionSet, Run, Score

KB_PREFIX = "kb_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

QUESTION_SETS = pa.schema([
    ("name", pa.string()), ("version", pa.int32()), ("created_at", pa.string()),
    ("origin", pa.string()), ("count", pa.int32()),
])
QUESTIONS = pa.schema([
    ("set_name", pa.string()), ("version", pa.int32()), ("position", pa.int32()), ("id", pa.string()),
    ("question", pa.string()), ("reference", pa.string()), ("category", pa.string()),
])
RUNS = pa.schema([
    ("id", pa.string()), ("created_at", pa.string()), ("kb", pa.string()), ("question_set", pa.string()),
    ("question_set_version", pa.int32()), ("modes", pa.string()), ("metrics", pa.string()),
    ("answer_model", pa.string()), ("judge_model", pa.string()), ("top_k", pa.int32()),
    ("search_mode", pa.string()), ("limit", pa.int32()), ("status", pa.string()), ("imported", pa.bool_()),
    ("error", pa.string()), ("cancel_requested", pa.bool_()), ("worker", pa.string()), ("config", pa.string()),
])
ANSWERS = pa.schema([
    ("run_id", pa.string()), ("question_id", pa.string()), ("mode", pa.string()), ("question", pa.string()),
    ("text", pa.string()), ("passages", pa.string()), ("model", pa.string()), ("latency_s", pa.float64()),
    ("prompt_tokens", pa.int32()), ("completion_tokens", pa.int32()), ("error", pa.string()),
    ("created_at", pa.string()), ("retryable", pa.bool_()),
])
SCORES = pa.schema([
    ("run_id", pa.string()), ("question_id", pa.string()), ("mode", pa.string()), ("metric", pa.string()),
    ("value", pa.float64()), ("reason", pa.string()), ("details", pa.string()), ("judge", pa.string()),
    ("latency_s", pa.float64()), ("created_at", pa.string()), ("retryable", pa.bool_()),
])
REPEATS = pa.schema([
    ("run_id", pa.string()), ("question_id", pa.string()), ("mode", pa.string()), ("metric", pa.string()),
    ("repeat", pa.int32()), ("temperature", pa.float64()), ("value", pa.float64()), ("reason", pa.string()),
    ("judge", pa.string()), ("created_at", pa.string()),
])


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RagEvalError(f"{kind} name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', "
                           "starting with a letter or digit")
    return name


def quote(value: str) -> str:
    """A string literal for a LanceDB filter."""
    return "'" + str(value).replace("'", "''") + "'"


def chunk_schema(dim: int) -> pa.Schema:
    return pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("document", pa.string()), ("section", pa.string()),
        ("chunk_index", pa.int32()), ("text", pa.string()), ("content_hash", pa.string()),
        ("ingested_at", pa.string()), ("vector", pa.list_(pa.float32(), dim)),
    ])


class Store:
    """One LanceDB database (a local folder or an object-storage URI)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.db = lancedb.connect(uri)
        self._migrated: set[str] = set()

    # -- tables --------------------------------------------------------------------------
    def _names(self) -> set[str]:
        return set(self.db.list_tables().tables)

    def _table(self, name: str, schema: pa.Schema):
        try:
            tbl = self.db.open_table(name)
        except (FileNotFoundError, ValueError):
            return self.db.create_table(name, schema=schema, exist_ok=True)
        if name not in self._migrated:
            self._migrate(name, tbl, schema)
            self._migrated.add(name)
        return tbl

    def _migrate(self, name: str, tbl, schema: pa.Schema) -> None:
        """Add the columns a newer version brought to a table an older version made (e.g.
        `retryable`), so an old workspace opens and reads as before: false for a flag,
        null otherwise."""
        missing = [f for f in schema if f.name not in tbl.schema.names]
        if not missing:
            return
        flags = {f.name: "false" for f in missing if f.type == pa.bool_()}
        others = [f for f in missing if f.type != pa.bool_()]
        try:
            if flags:
                self._retry(lambda: tbl.add_columns(flags))
            if others:
                self._retry(lambda: tbl.add_columns(others))
        except Exception:  # another process may have added them first
            tbl = self.db.open_table(name)
            if any(f.name not in tbl.schema.names for f in missing):
                raise

    def _rows(self, name: str, schema: pa.Schema, where: str | None = None) -> list[dict]:
        q = self._table(name, schema).search()
        if where:
            q = q.where(where)
        return q.limit(None).to_arrow().to_pylist()

    @staticmethod
    def _retry(fn):
        # Two processes updating the same table (a worker writing status, a page asking to
        # cancel) can collide in a commit; a short retry is all that is needed.
        for attempt in range(5):
            try:
                return fn()
            except Exception as e:  # lance raises plain RuntimeError/OSError on commit conflicts
                if "conflict" not in str(e).lower() or attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))

    # -- knowledge bases -----------------------------------------------------------------
    def kb_names(self) -> list[str]:
        return sorted(n[len(KB_PREFIX):] for n in self._names() if n.startswith(KB_PREFIX))

    def kb_table(self, kb: str, dim: int | None = None):
        """The chunk table of a knowledge base; created when `dim` is given, else it must exist."""
        name = KB_PREFIX + check_name("knowledge base", kb)
        if name in self._names():
            return self.db.open_table(name)
        if dim is None:
            known = ", ".join(self.kb_names()) or "none yet"
            raise NotFoundError(f"knowledge base '{kb}' does not exist (known: {known}); ingest into it first")
        return self.db.create_table(name, schema=chunk_schema(dim), exist_ok=True)

    def document_hashes(self, kb: str, source: str) -> dict[str, str]:
        tbl = self.kb_table(kb)
        rows = tbl.search().where(f"source = {quote(source)}").select(["document", "content_hash"]) \
            .limit(None).to_arrow().to_pylist()
        return {r["document"]: r["content_hash"] for r in rows}

    def replace_documents(self, kb: str, source: str, documents: list[str], rows: list[dict], dim: int) -> None:
        """Delete the chunks of these documents, then add their new chunks."""
        tbl = self.kb_table(kb, dim)
        if documents:
            self._delete_documents(tbl, source, documents)
        if rows:
            tbl.add(rows)

    def delete_documents(self, kb: str, source: str, documents: list[str]) -> None:
        self._delete_documents(self.kb_table(kb), source, documents)

    @staticmethod
    def _delete_documents(tbl, source: str, documents: list[str]) -> None:
        for i in range(0, len(documents), 500):
            names = ", ".join(quote(d) for d in documents[i:i + 500])
            tbl.delete(f"source = {quote(source)} AND document IN ({names})")

    def delete_source(self, kb: str, source: str) -> int:
        tbl = self.kb_table(kb)
        n = tbl.count_rows(f"source = {quote(source)}")
        if n == 0:
            raise NotFoundError(f"knowledge base '{kb}' has no source '{source}'")
        tbl.delete(f"source = {quote(source)}")
        return n

    def delete_kb(self, kb: str) -> None:
        self.kb_table(kb)  # raises when missing
        self.db.drop_table(KB_PREFIX + kb)

    def kb_sources(self, kb: str) -> list[dict]:
        """Each source of a knowledge base with its document and chunk counts."""
        df = self.kb_table(kb).search().select(["source", "document", "ingested_at"]).limit(None).to_pandas()
        if df.empty:
            return []
        g = df.groupby("source").agg(documents=("document", "nunique"), chunks=("document", "size"),
                                     ingested_at=("ingested_at", "max")).reset_index()
        return g.to_dict("records")

    def index_kb(self, kb: str) -> None:
        """(Re)build the full-text index, and a vector index once brute force gets slow."""
        from lancedb.index import FTS, IvfPq

        tbl = self.kb_table(kb)
        n = tbl.count_rows()
        if n == 0:
            return
        tbl.create_index("text", config=FTS(with_position=False, stem=True, remove_stop_words=True,
                                            ascii_folding=True), replace=True)
        if n >= 50_000:  # below this, exact search is fast enough and more accurate
            tbl.create_index("vector", config=IvfPq(distance_type="cosine", num_partitions=max(1, n // 1500)),
                             replace=True)

    def optimize(self, *names: str) -> None:
        """Compact the small fragments that per-item writes leave behind."""
        for name in names:
            if name in self._names():
                self.db.open_table(name).optimize()

    # -- question sets -------------------------------------------------------------------
    def save_question_set(self, name: str, questions: list[Question], origin: str = "") -> QuestionSet:
        """Store the questions as a new version of the named set."""
        check_name("question set", name)
        if not questions:
            raise RagEvalError(f"question set '{name}' has no questions; nothing was stored")
        versions = [r["version"] for r in self._rows("question_sets", QUESTION_SETS, f"name = {quote(name)}")]
        version = max(versions, default=0) + 1
        created = now()
        # questions first: a set row without its questions must never be visible
        self._table("questions", QUESTIONS).add([
            {"set_name": name, "version": version, "position": i, "id": q.id, "question": q.question,
             "reference": q.reference, "category": q.category} for i, q in enumerate(questions)])
        self._table("question_sets", QUESTION_SETS).add(
            [{"name": name, "version": version, "created_at": created, "origin": origin, "count": len(questions)}])
        return QuestionSet(name, version, tuple(questions), created, origin)

    def question_sets(self) -> list[dict]:
        """The latest version of every set: name, version, count, created_at, origin."""
        latest: dict[str, dict] = {}
        for r in self._rows("question_sets", QUESTION_SETS):
            if r["name"] not in latest or r["version"] > latest[r["name"]]["version"]:
                latest[r["name"]] = r
        return sorted(latest.values(), key=lambda r: r["name"])

    def question_set_versions(self, name: str) -> list[dict]:
        """Every saved version of a set, newest first: version, count, created_at, origin."""
        rows = self._rows("question_sets", QUESTION_SETS, f"name = {quote(name)}")
        if not rows:
            raise NotFoundError(f"question set '{name}' does not exist")
        return sorted(rows, key=lambda r: r["version"], reverse=True)

    def delete_question_set(self, name: str) -> int:
        """Delete every version of a set; refused while runs use it. Returns the versions deleted."""
        n = len(self.question_set_versions(name))
        using = [r.id for r in self.runs() if r.question_set == name]
        if using:
            shown = ", ".join(using[:5]) + (f" and {len(using) - 5} more" if len(using) > 5 else "")
            raise RagEvalError(f"question set '{name}' is used by {len(using)} run(s) ({shown}); "
                               "delete those runs first")
        # the set rows first: questions without a set row are never read
        self._table("question_sets", QUESTION_SETS).delete(f"name = {quote(name)}")
        self._table("questions", QUESTIONS).delete(f"set_name = {quote(name)}")
        return n

    def question_set(self, name: str, version: int | None = None) -> QuestionSet:
        sets = self._rows("question_sets", QUESTION_SETS, f"name = {quote(name)}")
        if version is not None:
            sets = [s for s in sets if s["version"] == version]
        if not sets:
            known = ", ".join(s["name"] for s in self.question_sets()) or "none yet"
            v = f" version {version}" if version is not None else ""
            raise NotFoundError(f"question set '{name}'{v} does not exist (known: {known})")
        s = max(sets, key=lambda r: r["version"])
        rows = self._rows("questions", QUESTIONS, f"set_name = {quote(name)} AND version = {s['version']}")
        rows.sort(key=lambda r: r["position"])
        qs = tuple(Question(r["id"], r["question"], r["reference"] or "", r["category"] or "") for r in rows)
        return QuestionSet(name, s["version"], qs, s["created_at"], s["origin"] or "")

    # -- runs ----------------------------------------------------------------------------
    def create_run(self, run: Run) -> None:
        self._table("runs", RUNS).add([_run_row(run)])

    def run(self, run_id: str) -> Run:
        rows = self._rows("runs", RUNS, f"id = {quote(run_id)}")
        if not rows:
            raise NotFoundError(f"run '{run_id}' does not exist")
        return _run_from_row(rows[0])

    def runs(self) -> list[Run]:
        """Every run, newest first."""
        return sorted((_run_from_row(r) for r in self._rows("runs", RUNS)), key=lambda r: r.created_at,
                      reverse=True)

    def update_run(self, run_id: str, **values) -> None:
        tbl = self._table("runs", RUNS)
        self._retry(lambda: tbl.update(where=f"id = {quote(run_id)}", values=values))

    def add_answer(self, a: Answer, replace: bool = False) -> None:
        """Store an answer; with `replace`, in place of the one stored for its run, question and
        mode (one commit: a crash leaves the old row or the new, never both or neither)."""
        row = asdict(a)
        row["passages"] = json.dumps([asdict(p) for p in a.passages])
        row["text"], row["created_at"] = a.text, now()
        tbl = self._table("answers", ANSWERS)
        if replace:
            _upsert(tbl, ["run_id", "question_id", "mode"], row)
        else:
            tbl.add([row])

    def add_answers(self, answers: list[Answer]) -> None:
        """Many answers in one write (an imported run's): all of them land, or none."""
        rows = []
        for a in answers:
            row = asdict(a)
            row["passages"], row["created_at"] = json.dumps([asdict(p) for p in a.passages]), now()
            rows.append(row)
        if rows:
            self._table("answers", ANSWERS).add(rows)

    def delete_run(self, run_id: str) -> None:
        """A run with its answers, scores and repeat judgings; the run row goes first so no half
        run is ever listed."""
        self.run(run_id)
        self._retry(lambda: self._table("runs", RUNS).delete(f"id = {quote(run_id)}"))
        for name, schema in (("answers", ANSWERS), ("scores", SCORES), ("judge_repeats", REPEATS)):
            self._table(name, schema).delete(f"run_id = {quote(run_id)}")

    def answers(self, run_id: str) -> list[Answer]:
        out = []
        for r in self._rows("answers", ANSWERS, f"run_id = {quote(run_id)}"):
            r.pop("created_at")
            r["passages"] = tuple(Passage(**p) for p in json.loads(r["passages"] or "[]"))
            r["retryable"] = bool(r.get("retryable"))
            out.append(Answer(**r))
        return out

    def add_score(self, s: Score, replace: bool = False) -> None:
        """Store a score; with `replace`, in place of the one stored for its run, question, mode
        and metric."""
        row = asdict(s)
        row["details"], row["created_at"] = json.dumps(s.details), now()
        tbl = self._table("scores", SCORES)
        if replace:
            _upsert(tbl, ["run_id", "question_id", "mode", "metric"], row)
        else:
            tbl.add([row])

    def add_scores(self, scores: list[Score]) -> None:
        """Many scores in one write: all of them land, or none."""
        rows = []
        for s in scores:
            row = asdict(s)
            row["details"], row["created_at"] = json.dumps(s.details), now()
            rows.append(row)
        if rows:
            self._table("scores", SCORES).add(rows)

    def scores(self, run_id: str) -> list[Score]:
        out = []
        for r in self._rows("scores", SCORES, f"run_id = {quote(run_id)}"):
            r.pop("created_at")
            r["details"] = json.loads(r["details"] or "{}")
            r["retryable"] = bool(r.get("retryable"))
            out.append(Score(**r))
        return out

    # -- columnar reads of a run (pages, reports and exports read these, not per-row objects) --
    def run_columns(self, name: str, run_id: str, columns: list[str] | dict[str, str] | None = None,
                    question_ids: list[str] | None = None) -> pa.Table:
        """Columns of one run's rows of "answers", "scores" or "judge_repeats" as one Arrow
        table, filtered in the query (and to some questions when `question_ids` is given)."""
        schema = {"answers": ANSWERS, "scores": SCORES, "judge_repeats": REPEATS}[name]
        where = f"run_id = {quote(run_id)}"
        if question_ids is not None:
            where += f" AND question_id IN ({', '.join(quote(q) for q in question_ids) or quote('')})"
        q = self._table(name, schema).search().where(where)
        if columns is not None:
            q = q.select(columns)
        return q.limit(None).to_arrow()

    def question_columns(self, set_name: str, version: int) -> pa.Table:
        """The questions of one set version, in their order: id, question, reference, category."""
        where = f"set_name = {quote(set_name)} AND version = {int(version)}"
        t = self._table("questions", QUESTIONS).search().where(where) \
            .select(["position", "id", "question", "reference", "category"]).limit(None).to_arrow()
        return t.sort_by("position")

    def run_counts(self, run_id: str) -> tuple[int, ...]:
        """Rows a run has in answers, scores and judge_repeats, and judge checks stored: with the
        run's status, enough to tell whether a cached read of its results is still current."""
        where = f"run_id = {quote(run_id)}"
        return (self._table("answers", ANSWERS).count_rows(where), self._table("scores", SCORES).count_rows(where),
                self._table("judge_repeats", REPEATS).count_rows(where),
                self._table("judge_checks", JUDGE_CHECKS).count_rows())

    def delete_scores(self, run_id: str) -> None:
        self._table("scores", SCORES).delete(f"run_id = {quote(run_id)}")

    def add_repeat(self, s: Score, repeat: int, temperature: float) -> None:
        self._table("judge_repeats", REPEATS).add([{
            "run_id": s.run_id, "question_id": s.question_id, "mode": s.mode, "metric": s.metric,
            "repeat": repeat, "temperature": temperature, "value": s.value, "reason": s.reason,
            "judge": s.judge, "created_at": now()}])

    def repeats(self, run_id: str) -> list[dict]:
        """The extra judgings of a run's answers: question_id, mode, metric, repeat, value, reason, ..."""
        return self._rows("judge_repeats", REPEATS, f"run_id = {quote(run_id)}")


    # -- judge checks (appended: the calibration of a judge, keyed by its identity) -------
    def add_judge_check(self, check) -> None:
        row = asdict(check)
        row["identity"], row["scores"] = json.dumps(check.identity, sort_keys=True), json.dumps(list(check.scores))
        self._table("judge_checks", JUDGE_CHECKS).add([row])

    def judge_checks(self, judge_key: str | None = None, label: str | None = None) -> list:
        """Stored judge checks, newest first; filtered by identity key or by label."""
        from core.models import JudgeCheck

        where = (f"judge_key = {quote(judge_key)}" if judge_key is not None
                 else f"label = {quote(label)}" if label is not None else None)
        rows = self._rows("judge_checks", JUDGE_CHECKS, where)
        out = [JudgeCheck(**{**r, "identity": json.loads(r["identity"]), "scores": tuple(json.loads(r["scores"]))})
               for r in rows]
        return sorted(out, key=lambda c: c.created_at, reverse=True)


def _upsert(tbl, keys: list[str], row: dict) -> None:
    tbl.merge_insert(keys).when_matched_update_all().when_not_matched_insert_all().execute([row])


def _run_row(run: Run) -> dict:
    row = asdict(run)
    row["modes"], row["metrics"] = json.dumps(list(run.modes)), json.dumps(list(run.metrics))
    row["config"] = json.dumps(run.config)
    return row


def _run_from_row(r: dict) -> Run:
    r = dict(r)
    r["modes"], r["metrics"] = tuple(json.loads(r["modes"])), tuple(json.loads(r["metrics"]))
    r["config"] = json.loads(r["config"] or "{}")
    return Run(**r)


@lru_cache(maxsize=8)
def get_store(uri: str) -> Store:
    """The process-wide connection to one database."""
    return Store(uri)


JUDGE_CHECKS = pa.schema([
    ("judge_key", pa.string()), ("identity", pa.string()), ("label", pa.string()), ("created_at", pa.string()),
    ("items", pa.int32()), ("seconds", pa.float64()), ("scores", pa.string()),
])
