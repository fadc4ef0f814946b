"""The LanceDB database: every table, its schema, and every read and write.

Tables
    kb_<name>       one per knowledge base: chunks with their vectors and metadata
    question_sets   one row per saved version of a named set
    questions       the questions of every set version
    runs            one row per run, with its status and cancel flag
    answers         one row per (run, question, mode), written as each completes
    scores          one row per (run, question, mode, metric), written as each completes
    judge_repeats   extra judgings of a run's answers, to measure the judge's own noise
    reviews         people's reviews of a run's scores, one per (run, question, mode, metric,
                    reviewer); a re-score replaces scores, never reviews
    judge_checks    one row per calibration check of a judge, keyed by the judge's identity
    jobs            one row per long task and target (a run's execution, a re-judging): who
                    holds it, its heartbeat and cancel flag (core/jobs.py)
    experiments     one row per experiment: its grid and, per configuration, the run made for it
    gates           the latest regression-gate verdicts of a run against each baseline and mode

The database is a local folder or an object-storage URI (s3://bucket/prefix): nothing here
touches a file directly or takes a file lock, every read, write, lock row, tag and cleanup is a
LanceDB call, so the same code runs on both (tests/test_object_storage.py, on a real S3 server).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from functools import lru_cache

# lance's Rust deprecation chatter is not for users
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCEDB_LOG", "error")


def _defer_rest_client() -> None:
    """Import lancedb without running `lance_namespace_urllib3_client`'s package init until a
    name of it is used. That init imports its REST API classes, whose 366 pydantic `validate_call`
    decorations took 1.3 s of every command's start; the store never calls a REST namespace, and
    the models lancedb imports are submodules, loaded as usual. The first use of a name the init
    defines runs the real init, so nothing is missing, only later."""
    import importlib.util
    import sys

    name = "lance_namespace_urllib3_client"
    if name in sys.modules or (spec := importlib.util.find_spec(name)) is None:
        return
    module = importlib.util.module_from_spec(spec)

    def load(attr: str):
        del module.__getattr__
        spec.loader.exec_module(module)
        return getattr(module, attr)

    module.__getattr__ = load
    sys.modules[name] = module


_defer_rest_client()
import lancedb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from core.errors import ConfigError, NotFoundError, RagEvalError
from core.models import Answer, Experiment, Job, Passage, Question, QuestionSet, Review, Run, Score, VectorIndex

KB_PREFIX = "kb_"

# The vector index of a knowledge base is described (VectorIndex, as JSON) in the metadata of
# its vector column: one place, versioned with the table, so a checked-out version of a
# knowledge base comes with the parameters chosen for its own index.
ANN_KEY = "rageval:vector_index"
ENCODER_KEY = "rageval:encoder"  # the encoder that embedded the knowledge base (Embedder.identity)
# A knowledge base an ingest is still creating carries this mark (on its id column) from its
# first write until the ingest finishes: a killed ingest (kill -9, power loss) leaves a table
# no listing shows, and the next ingest into that name starts it again.
PARTIAL_KEY = "rageval:ingesting"
INDEX_MIN_ROWS = 50_000  # below this exact search takes a few ms at most, and is exact
RECALL_TARGET = 0.95
ROWS_PER_PARTITION = 4_000  # 250 IVF partitions at 1M rows, each its own HNSW graph
REBUILD_GROWTH = 2.0  # rebuild once the table has doubled since the index was built
RECHECK_GROWTH = 0.1  # re-measure recall once the table changed by a tenth since the last check
# Search parameters (nprobes, ef, refine_factor), cheapest first; an index takes the first
# step that reaches the recall target on its sample. nprobes is clamped to the partitions.
SEARCH_LADDER = (
    (4, 40, None), (6, 60, None), (8, 80, None), (10, 100, None), (14, 120, None), (20, 160, None),
    (28, 200, None), (40, 250, None), (40, 250, 4), (64, 300, 4), (96, 400, 8), (160, 500, 10),
)
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
    ("error", pa.string()), ("config", pa.string()),
])  # (workspaces made before jobs also hold cancel_requested and worker: read past, never written)
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
REVIEWS = pa.schema([
    ("run_id", pa.string()), ("question_id", pa.string()), ("mode", pa.string()), ("metric", pa.string()),
    ("reviewer", pa.string()), ("verdict", pa.string()), ("score", pa.float64()), ("judge_value", pa.float64()),
    ("note", pa.string()), ("created_at", pa.string()),
])
REVIEW_KEY = ["run_id", "question_id", "mode", "metric", "reviewer"]
EXPERIMENTS = pa.schema([
    ("id", pa.string()), ("name", pa.string()), ("created_at", pa.string()), ("kb", pa.string()),
    ("question_set", pa.string()), ("question_set_version", pa.int32()), ("modes", pa.string()),
    ("metrics", pa.string()), ("grid", pa.string()), ("configs", pa.string()), ("limit", pa.int32()),
    ("status", pa.string()), ("error", pa.string()),
])
GATES = pa.schema([
    ("candidate", pa.string()), ("baseline", pa.string()), ("mode", pa.string()), ("created_at", pa.string()),
    ("passed", pa.bool_()), ("result", pa.string()),
])
GATE_KEY = ["candidate", "baseline", "mode"]
INTERVALS = pa.schema([  # a bootstrap interval and a signed-rank test, by the key of the differences behind them
    ("key", pa.string()), ("low", pa.float64()), ("high", pa.float64()), ("created_at", pa.string()),
    ("p_value", pa.float64()), ("effect_size", pa.float64()),
])
LOCK_ROW = "lock:jobs"  # held while a job's row is made
QUESTION_SETS_LOCK = "lock:question-sets"  # held while a question-set version is allocated
LOCK_ROWS = (LOCK_ROW, QUESTION_SETS_LOCK)
JOBS = pa.schema([
    ("key", pa.string()), ("kind", pa.string()), ("target", pa.string()), ("command", pa.string()),
    ("status", pa.string()), ("token", pa.string()), ("worker", pa.string()), ("heartbeat", pa.float64()),
    ("cancel_requested", pa.bool_()), ("created_at", pa.string()), ("ended_at", pa.string()), ("log", pa.string()),
    ("error", pa.string()), ("done", pa.int64()), ("total", pa.int64()),
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


def chunk_schema(dim: int, partial: bool = False) -> pa.Schema:
    return pa.schema([
        pa.field("id", pa.string(), metadata={PARTIAL_KEY: now()} if partial else None), ("source", pa.string()), ("document", pa.string()), ("section", pa.string()),
        ("chunk_index", pa.int32()), ("text", pa.string()), ("content_hash", pa.string()),
        ("ingested_at", pa.string()), ("vector", pa.list_(pa.float32(), dim)),
    ])


def _chunk_data(data, dim: int):
    """Chunk rows as Arrow in the table's schema (list of dicts and Arrow tables alike)."""
    if isinstance(data, list):
        return pa.Table.from_pylist(data, schema=chunk_schema(dim))
    return data


def _documents_filter(documents: dict[str, list[str]]) -> str:
    return " OR ".join(f"(source = {quote(s)} AND document IN ({', '.join(quote(d) for d in docs)}))"
                       for s, docs in documents.items() if docs)


def check_encoder(store: "Store", kb: str, tbl, identity: dict) -> None:
    """Refuse to search or grow a knowledge base with an encoder (`identity`, as
    Embedder.identity gives it) other than the one that embedded it: its vectors would not be
    comparable, and at the same dimension nothing else would notice."""
    built = store.kb_encoder(tbl)
    if built is not None and built != identity:
        raise ConfigError(
            f"knowledge base '{kb}' was embedded with {built['model']} ({built['dim']}-d, weights {built['sha256']}), "
            f"but the encoder now is {identity['model']} ({identity['dim']}-d, weights {identity['sha256']}): "
            "set RAGEVAL_EMBEDDING_MODEL back to the knowledge base's encoder, or rebuild the knowledge base "
            "(delete it and ingest its sources again)")


def nearest(vector, k: int, index: VectorIndex | None) -> dict:
    """A Lance nearest-neighbour query for the `k` rows nearest to `vector` (cosine), with the
    search parameters the index's recall check chose (exact search without an index)."""
    query = {"column": "vector", "q": vector, "k": k, "metric": "cosine"}
    if index is not None:
        query["nprobes"] = index.nprobes
        if index.ef:
            query["ef"] = index.ef
        if index.refine_factor:
            query["refine_factor"] = index.refine_factor
    return query


def _vectors(column) -> np.ndarray:
    """A fixed-size-list Arrow column as an (n, dim) float32 matrix, rows normalised."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return _unit(column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1).astype(np.float32))


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def _exact_topk(tbl, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, row ids) of each query's exact cosine top-k, best first, by one numpy
    pass over the table's vectors in batches."""
    m = len(queries)
    best_s = np.full((m, k), -np.inf, dtype=np.float32)
    best_id = np.zeros((m, k), dtype=np.uint64)
    for batch in tbl.search().select(["vector"]).with_row_id(True).to_batches(65_536):
        if batch.num_rows == 0:
            continue
        sims = queries @ _vectors(batch.column("vector")).T
        ids = np.asarray(batch.column("_rowid").to_numpy(zero_copy_only=False), dtype=np.uint64)
        all_s = np.concatenate([best_s, sims], axis=1)
        all_id = np.concatenate([best_id, np.broadcast_to(ids, sims.shape)], axis=1)
        top = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
        best_s, best_id = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_id, top, 1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_id, order, 1)


def _recall_sample(tbl, sample: int, k: int, seed: int = 0) -> tuple[np.ndarray, list[set[int]]]:
    """Queries made from `sample` of the table's own vectors, with their exact top-k row ids.

    A stored vector as it is makes an easy query (its own IVF partition is the first one
    probed; measured: recall 0.99 where fresh queries got 0.95), so each is moved in a random
    direction by its distance to its nearest neighbour: a point as far from the stored ones
    as they are from each other, whose truth is then computed exactly."""
    n = tbl.count_rows()
    rng = np.random.default_rng(seed)
    offsets = sorted(rng.choice(n, size=min(sample, n), replace=False).tolist())
    stored = _vectors(tbl.take_offsets(offsets).select(["vector"]).to_arrow()["vector"])
    if n > 1:
        sims, _ = _exact_topk(tbl, stored, 2)  # [itself, its nearest neighbour]
        step = np.sqrt(np.clip(2.0 - 2.0 * sims[:, 1:2], 0.0, None))  # chord length on the unit sphere
        noise = rng.standard_normal(stored.shape).astype(np.float32)
        stored = _unit(stored + step * _unit(noise))
    _, ids = _exact_topk(tbl, stored, min(k, n))
    return stored, [set(int(r) for r in row) for row in ids]


def _recall(ds, queries, truth, k: int, nprobes: int, ef: int | None, refine_factor: int | None) -> float:
    """recall@k of searching the dataset `ds` with these parameters, as retrieval searches it."""
    index = VectorIndex("", 0, 0, 0, nprobes, ef, refine_factor, 0.0, 0, k, 0.0, "", 0.0)
    found = total = 0
    for q, t in zip(queries, truth):
        got = ds.to_table(nearest=nearest(q, k, index), columns=["_distance"], with_row_id=True)["_rowid"]
        found += len(set(got.to_pylist()) & t)
        total += len(t)
    return found / total if total else 1.0


class Intervals:
    """What was drawn from a run's paired differences (`core.stats.PairedCache`: the bootstrap
    interval, the signed-rank test), kept with the data: a run's findings are drawn once, by
    its worker when it finishes or by its first reader, and read by every page, report and
    `show` after. The key is the differences themselves, so nothing kept can outlive what it
    was drawn from; it holds no text of the run."""

    def __init__(self, store: "Store"):
        self.store = store

    def get(self, keys: list[str]) -> dict[str, tuple[float, float, float, float]]:
        if not keys:
            return {}
        # a row kept before the test was kept with its interval (p_value null) is drawn again
        where = f"key IN ({', '.join(quote(k) for k in keys)}) AND p_value IS NOT NULL"
        return {r["key"]: (r["low"], r["high"], r["p_value"], r["effect_size"])
                for r in self.store._rows("intervals", INTERVALS, where)}

    def put(self, drawn: dict[str, tuple[float, float, float, float]]) -> None:
        rows = [{"key": k, "low": low, "high": high, "p_value": p, "effect_size": r, "created_at": now()}
                for k, (low, high, p, r) in drawn.items()]
        if rows:  # two readers putting the same key at once add the same row twice: harmless
            self.store._retry(lambda: self.store._table("intervals", INTERVALS).add(rows))


class Store:
    """One LanceDB database (a local folder or an object-storage URI)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.db = lancedb.connect(uri)
        self._migrated: set[str] = set()
        self._kb_uris: dict[str, str] = {}  # knowledge base -> its Lance dataset's URI
        self._lance = None  # the Lance session searches open datasets in (kb_searchable)
        self.intervals = Intervals(self)

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
        """The knowledge bases, without any an unfinished ingest is still creating (or left behind)."""
        names = sorted(n[len(KB_PREFIX):] for n in self._names() if n.startswith(KB_PREFIX))
        return [n for n in names if not self.kb_partial(n)]

    def kb_partial(self, kb: str) -> bool:
        """Whether an ingest is creating this knowledge base and has not finished (or was killed)."""
        try:
            meta = self.db.open_table(KB_PREFIX + check_name("knowledge base", kb)).schema.field("id").metadata
        except (FileNotFoundError, ValueError):
            return False
        return PARTIAL_KEY.encode() in (meta or {})

    def finish_kb(self, kb: str) -> None:
        """The ingest creating this knowledge base has finished: it is listed from now on."""
        self.kb_table(kb).update_field_metadata({"path": "id", "metadata": {PARTIAL_KEY: None}})

    def kb_table(self, kb: str, dim: int | None = None):
        """The chunk table of a knowledge base; created when `dim` is given, else it must exist."""
        name = KB_PREFIX + check_name("knowledge base", kb)
        try:  # opened directly (every search opens it): listing the tables first costs as much again
            return self.db.open_table(name)
        except (FileNotFoundError, ValueError):
            pass
        if dim is None:
            known = ", ".join(self.kb_names()) or "none yet"
            raise NotFoundError(f"knowledge base '{kb}' does not exist (known: {known}); ingest into it first")
        return self.db.create_table(name, schema=chunk_schema(dim), exist_ok=True)

    def has_kb(self, kb: str) -> bool:
        return KB_PREFIX + check_name("knowledge base", kb) in self._names()

    def document_hashes(self, kb: str, source: str) -> dict[str, str]:
        if not self.has_kb(kb):
            return {}
        tbl = self.kb_table(kb)
        rows = tbl.search().where(f"source = {quote(source)}").select(["document", "content_hash"]) \
            .limit(None).to_arrow()
        return dict(zip(rows["document"].to_pylist(), rows["content_hash"].to_pylist()))

    def write_chunks(self, kb: str, data, dim: int, partial: bool = False) -> None:
        """Append chunk rows (a list of dicts, an Arrow table or an iterable of record batches)
        of documents the knowledge base does not hold yet; creates the knowledge base, with
        `partial` marked as still being created until `finish_kb`."""
        data = _chunk_data(data, dim)
        if self.has_kb(kb):
            self.kb_table(kb).add(data)
        else:  # created by its first write: a failed first ingest leaves no empty knowledge base
            self.db.create_table(KB_PREFIX + kb, data=data, schema=chunk_schema(dim, partial), exist_ok=True)

    def kb_dataset(self, kb: str, dim: int):
        """The Lance dataset under a knowledge base's table, for writers that commit to it
        themselves (the Ray engine's workers); a missing table is made first, empty and marked
        as still being created (`finish_kb`), as its first write would."""
        if not self.has_kb(kb):
            self.db.create_table(KB_PREFIX + kb, schema=chunk_schema(dim, partial=True), exist_ok=True)
        return self.kb_table(kb).to_lance()

    def replace_documents(self, kb: str, documents: dict[str, list[str]], rows, dim: int) -> None:
        """In one commit, the chunks of `documents` ({source: [document, ...]}) become `rows`:
        every document is either wholly old or wholly new, whatever fails around it."""
        if not documents:
            self.write_chunks(kb, rows, dim)
            return
        # merge_insert joins on id (updated / inserted), and deletes the old chunks of these
        # documents that the new version no longer has, all in one transaction. It scans the
        # table, so callers batch it; documents new to the table go through write_chunks.
        (self.kb_table(kb, dim).merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
         .when_not_matched_by_source_delete(_documents_filter(documents)).execute(_chunk_data(rows, dim)))

    def delete_documents(self, kb: str, documents: dict[str, list[str]]) -> None:
        """Delete the chunks of documents ({source: [document, ...]}); each document in one commit."""
        tbl = self.kb_table(kb)
        flat = [(s, d) for s, docs in documents.items() for d in docs]
        for i in range(0, len(flat), 500):
            part: dict[str, list[str]] = {}
            for s, d in flat[i:i + 500]:
                part.setdefault(s, []).append(d)
            tbl.delete(_documents_filter(part))

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

    def kb_searchable(self, kb: str, version: int | None = None):
        """The Lance dataset of a knowledge base as it was at `version` (as pinned by a run), or
        as it is now, for searching. Every one is opened in this store's one Lance session, so
        the indexes a search loads stay cached for the next search. Measured at 100k rows:
        the same vector search took 15 ms through LanceDB's table and 6.4 ms on the dataset,
        and a dataset opened in a session of its own loads the index again (140 ms)."""
        import lance

        if self._lance is None:
            self._lance = lance.Session()
        uri = self._kb_uris.get(kb)
        if uri is None:
            uri = self._kb_uris[kb] = self.kb_table(kb).to_lance().uri
        try:
            return lance.dataset(uri, version=None if version is None else int(version), session=self._lance)
        except (ValueError, OSError):
            self._kb_uris.pop(kb)
            self.kb_table(kb)  # a knowledge base deleted since: says so
            raise NotFoundError(f"version {version} of knowledge base '{kb}', which this run was made with, "
                                "no longer exists; start a new run on the knowledge base as it is") from None

    def pin_kb(self, kb: str, tag: str) -> int:
        """Tag the knowledge base's current version (a tagged version survives cleanup);
        returns the version."""
        tbl = self.kb_table(kb)
        version = tbl.version
        tbl.tags.create(tag, version)
        return version

    def unpin_kb(self, kb: str, tag: str) -> None:
        if self.has_kb(kb) and tag in self.kb_table(kb).tags.list():
            self.kb_table(kb).tags.delete(tag)

    def kb_encoder(self, kb_or_table) -> dict | None:
        """The identity of the encoder that embedded a knowledge base; None for one made
        before knowledge bases recorded it."""
        tbl = self.kb_table(kb_or_table) if isinstance(kb_or_table, str) else kb_or_table
        raw = (tbl.schema.field("vector").metadata or {}).get(ENCODER_KEY.encode())
        return json.loads(raw) if raw else None

    def set_kb_encoder(self, kb: str, identity: dict) -> None:
        self._set_vector_metadata(self.kb_table(kb), ENCODER_KEY, identity)

    @staticmethod
    def _set_vector_metadata(tbl, key: str, value: dict) -> None:
        """One entry of the vector column's metadata, keeping the others."""
        meta = {k.decode(): v.decode() for k, v in (tbl.schema.field("vector").metadata or {}).items()}
        meta[key] = json.dumps(value)
        tbl.update_field_metadata({"path": "vector", "metadata": meta})

    # -- the knowledge base's indexes ----------------------------------------------------
    def vector_index(self, kb_or_table) -> VectorIndex | None:
        """The vector index of a knowledge base and the search parameters chosen for it;
        None while the knowledge base is searched exactly (no index, or one built before
        parameters were recorded)."""
        tbl = self.kb_table(kb_or_table) if isinstance(kb_or_table, str) else kb_or_table
        meta = tbl.schema.field("vector").metadata or {}
        raw = meta.get(ANN_KEY.encode())
        return VectorIndex(**json.loads(raw)) if raw else None

    def index_kb(self, kb: str, *, min_rows: int = INDEX_MIN_ROWS, target: float = RECALL_TARGET,
                 sample: int = 200, k: int = 10, rows_per_partition: int = ROWS_PER_PARTITION) -> VectorIndex | None:
        """Keep a knowledge base's indexes right after a write.

        Full text: built once, then topped up. Vector: none below `min_rows` (exact search is
        fast enough there, and exact); past it an IVF-HNSW-SQ index whose search parameters
        are chosen by measuring recall@k against exact search on `sample` of the table's own
        vectors, raised step by step until it reaches `target`. Later writes top the index up
        (`optimize`) and re-measure once the table grew by a tenth; it is rebuilt once the
        table has doubled since the build. Returns the index record (None: exact search)."""
        from lancedb.index import FTS

        tbl = self.kb_table(kb)
        n = tbl.count_rows()
        if n == 0:
            return None
        columns = {tuple(i.columns): i.index_type for i in tbl.list_indices()}
        current = self.vector_index(tbl)
        rebuild = n >= min_rows and (current is None or ("vector",) not in columns
                                     or n >= current.rows * REBUILD_GROWTH)
        if ("text",) not in columns:
            tbl.create_index("text", config=FTS(with_position=False, stem=True, remove_stop_words=True,
                                                ascii_folding=True), replace=True)
        if rebuild:
            return self._build_vector_index(tbl, n, target, sample, k, max(1, round(n / rows_per_partition)))
        tbl.optimize()  # compaction, and new rows added to the existing indexes
        if current is not None and abs(n - current.checked_rows) >= RECHECK_GROWTH * current.checked_rows:
            return self._tune(tbl, n, current, target, sample, k)
        return current

    def _build_vector_index(self, tbl, n: int, target: float, sample: int, k: int, partitions: int) -> VectorIndex:
        from lancedb.index import HnswSq

        t0 = time.perf_counter()
        if any(i.columns == ["vector"] for i in tbl.list_indices()):
            # searches run exact until the new index is there; optimize would first spend
            # minutes adding the new rows to the index about to be replaced
            tbl.drop_index(next(i.name for i in tbl.list_indices() if i.columns == ["vector"]))
            tbl.update_field_metadata({"path": "vector", "metadata": {ANN_KEY: None}})
        tbl.optimize()  # compact what the writes left (the index is built on the compacted files)
        tbl.create_index("vector", config=HnswSq(distance_type="cosine", num_partitions=partitions), replace=True)
        # The first optimize after a build rewrites the whole index (measured: 2.5-3.5x the
        # build) and later ones add small deltas (~2 s for 1,000 rows at 50k); pay it here, in
        # the indexing step, rather than in the next small ingest.
        tbl.optimize()
        built = VectorIndex(kind="IVF_HNSW_SQ", partitions=partitions, rows=n, checked_rows=n, nprobes=0, ef=None,
                            refine_factor=None, recall=0.0, sample=0, k=k, target=target, built_at=now(),
                            build_seconds=time.perf_counter() - t0)
        return self._tune(tbl, n, built, target, sample, k, fresh=True)

    def _tune(self, tbl, n: int, index: VectorIndex, target: float, sample: int, k: int,
              fresh: bool = False) -> VectorIndex:
        """Measure recall with the index's parameters (from the cheapest step for a new index)
        and raise them until the target is met; record the result on the table."""
        queries, truth = _recall_sample(tbl, sample, k)
        ds = tbl.to_lance()
        steps = [(min(p, index.partitions), ef, rf) for p, ef, rf in SEARCH_LADDER]
        steps = list(dict.fromkeys(steps))  # small indexes clamp several steps to the same one
        here = (index.nprobes, index.ef, index.refine_factor)
        start = 0 if fresh or here not in steps else steps.index(here)
        best = None
        for nprobes, ef, rf in steps[start:]:
            recall = _recall(ds, queries, truth, k, nprobes, ef, rf)
            if best is None or recall > best[0]:
                best = (recall, nprobes, ef, rf)
            if recall >= target:
                break
        recall, nprobes, ef, rf = best
        index = dataclasses.replace(index, nprobes=nprobes, ef=ef, refine_factor=rf, recall=round(recall, 4),
                                    sample=len(queries), checked_rows=n, target=target)
        self._set_vector_metadata(tbl, ANN_KEY, dataclasses.asdict(index))
        return index

    def optimize(self, *names: str) -> None:
        """Compact the small fragments that per-item writes leave behind. The jobs table's old
        versions (a heartbeat makes one every few seconds) are removed after minutes, not days."""
        for name in names:
            if name not in self._names():
                continue
            if name == "jobs":
                try:  # best effort: another worker's heartbeat may collide with the compaction
                    self._jobs().optimize(cleanup_older_than=timedelta(minutes=10))
                except Exception:
                    pass
            else:
                self.db.open_table(name).optimize()

    # -- question sets -------------------------------------------------------------------
    def save_question_set(self, name: str, questions: list[Question], origin: str = "") -> QuestionSet:
        """Store the questions as a new version of the named set."""
        check_name("question set", name)
        if not questions:
            raise RagEvalError(f"question set '{name}' has no questions; nothing was stored")
        with self.exclusive(QUESTION_SETS_LOCK):  # two saves at once: two versions, never one
            versions = [r["version"] for r in self._rows("question_sets", QUESTION_SETS, f"name = {quote(name)}")]
            version = max(versions, default=0) + 1
            created = now()
            # questions first: a set row without its questions must never be visible
            self._table("questions", QUESTIONS).add([
                {"set_name": name, "version": version, "position": i, "id": q.id, "question": q.question,
                 "reference": q.reference, "category": q.category} for i, q in enumerate(questions)])
            self._table("question_sets", QUESTION_SETS).add(
                [{"name": name, "version": version, "created_at": created, "origin": origin,
                  "count": len(questions)}])
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
        self.add_answers([a], replace)

    def add_answers(self, answers: list[Answer], replace: bool = False) -> None:
        """Many answers in one commit: all of them land, or none. With `replace`, each in place of
        the one stored for its run, question and mode (a crash leaves the old row or the new,
        never both or neither)."""
        rows = []
        for a in answers:
            row = asdict(a)
            row["passages"], row["created_at"] = json.dumps([asdict(p) for p in a.passages]), now()
            rows.append(row)
        _write(self._table("answers", ANSWERS), ["run_id", "question_id", "mode"], rows, replace)

    def delete_run(self, run_id: str) -> None:
        """A run with its answers, scores, repeat judgings and reviews; the run row goes first so
        no half run is ever listed."""
        self.run(run_id)
        self._retry(lambda: self._table("runs", RUNS).delete(f"id = {quote(run_id)}"))
        for name, schema in (("answers", ANSWERS), ("scores", SCORES), ("judge_repeats", REPEATS),
                             ("reviews", REVIEWS)):
            self._table(name, schema).delete(f"run_id = {quote(run_id)}")
        self._table("gates", GATES).delete(f"candidate = {quote(run_id)} OR baseline = {quote(run_id)}")

    def answers(self, run_id: str) -> list[Answer]:
        out = []
        for r in self._rows("answers", ANSWERS, f"run_id = {quote(run_id)}"):
            r.pop("created_at")
            r["passages"] = tuple(Passage(**p) for p in json.loads(r["passages"] or "[]"))
            r["retryable"] = bool(r.get("retryable"))
            out.append(Answer(**r))
        return out

    def add_score(self, s: Score, replace: bool = False) -> None:
        self.add_scores([s], replace)

    def add_scores(self, scores: list[Score], replace: bool = False) -> None:
        """Many scores in one commit: all of them land, or none; with `replace`, each in place of
        the one stored for its run, question, mode and metric."""
        rows = []
        for sc in scores:
            row = asdict(sc)
            row["details"], row["created_at"] = json.dumps(sc.details), now()
            rows.append(row)
        _write(self._table("scores", SCORES), ["run_id", "question_id", "mode", "metric"], rows, replace)

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
        """Columns of one run's rows of "answers", "scores", "judge_repeats" or "reviews" as one
        Arrow table, filtered in the query (and to some questions when `question_ids` is given)."""
        schema = {"answers": ANSWERS, "scores": SCORES, "judge_repeats": REPEATS, "reviews": REVIEWS}[name]
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
        """Rows a run has in answers, scores and judge_repeats, judge checks stored, and the run's
        reviews table version (a review replaced in place keeps the count): with the run's status,
        enough to tell whether a cached read of its results is still current."""
        where = f"run_id = {quote(run_id)}"
        return (self._table("answers", ANSWERS).count_rows(where), self._table("scores", SCORES).count_rows(where),
                self._table("judge_repeats", REPEATS).count_rows(where),
                self._table("judge_checks", JUDGE_CHECKS).count_rows(),
                self._table("reviews", REVIEWS).version)

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

    # -- reviews (a person's verdict on a score; core/reviews.py) -----------------------------
    def put_review(self, r: Review) -> None:
        """Store a review in place of the one this reviewer gave the same score before, if any.
        Scores are deleted and rewritten by a re-score; reviews live in their own table, so
        they survive it."""
        tbl = self._table("reviews", REVIEWS)
        row = pa.Table.from_pylist([asdict(r)], schema=REVIEWS)  # typed: a None score is a null float
        self._retry(lambda: tbl.merge_insert(REVIEW_KEY).when_matched_update_all().when_not_matched_insert_all()
                    .execute(row))

    def reviews(self, run_id: str) -> list[Review]:
        """A run's reviews, oldest first."""
        rows = self._rows("reviews", REVIEWS, f"run_id = {quote(run_id)}")
        out = [Review(**{**r, "score": _number(r["score"]), "judge_value": _number(r["judge_value"])}) for r in rows]
        return sorted(out, key=lambda r: r.created_at)

    # -- experiments (core/experiments.py) -----------------------------------------------------
    def create_experiment(self, exp: Experiment) -> None:
        self._table("experiments", EXPERIMENTS).add([_experiment_row(exp)])

    def experiment(self, exp_id: str) -> Experiment:
        rows = self._rows("experiments", EXPERIMENTS, f"id = {quote(exp_id)}")
        if not rows:
            known = ", ".join(e.id for e in self.experiments()[:5]) or "none yet"
            raise NotFoundError(f"experiment '{exp_id}' does not exist (latest: {known})")
        return _experiment_from_row(rows[0])

    def experiments(self) -> list[Experiment]:
        """Every experiment, newest first."""
        return sorted((_experiment_from_row(r) for r in self._rows("experiments", EXPERIMENTS)),
                      key=lambda e: e.created_at, reverse=True)

    def update_experiment(self, exp_id: str, **values) -> None:
        """Set fields of an experiment (`configs` as the list of dicts the record holds)."""
        if "configs" in values:
            values["configs"] = json.dumps(list(values["configs"]))
        tbl = self._table("experiments", EXPERIMENTS)
        self._retry(lambda: tbl.update(where=f"id = {quote(exp_id)}", values=values))

    def delete_experiment(self, exp_id: str) -> None:
        self.experiment(exp_id)
        self._retry(lambda: self._table("experiments", EXPERIMENTS).delete(f"id = {quote(exp_id)}"))

    # -- gate verdicts (core/gate.py): the latest per candidate, baseline and mode ----------------
    def put_gate(self, candidate: str, baseline: str, mode: str, passed: bool, result: dict) -> None:
        """Store a gate's verdicts in place of the last ones for the same candidate, baseline and mode."""
        row = pa.Table.from_pylist([{"candidate": candidate, "baseline": baseline, "mode": mode, "created_at": now(),
                                     "passed": passed, "result": json.dumps(result)}], schema=GATES)
        tbl = self._table("gates", GATES)
        self._retry(lambda: tbl.merge_insert(GATE_KEY).when_matched_update_all().when_not_matched_insert_all()
                    .execute(row))

    def gates(self, candidate: str) -> list[dict]:
        """The stored gate verdicts of a run (as the candidate), newest first: each the gate's JSON
        with `created_at`."""
        rows = self._rows("gates", GATES, f"candidate = {quote(candidate)}")
        out = [{**json.loads(r["result"]), "created_at": r["created_at"]} for r in rows]
        return sorted(out, key=lambda g: g["created_at"], reverse=True)

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

    # -- jobs (core/jobs.py) ----------------------------------------------------------------
    # Lance re-checks an update's condition when two commits collide (of two conditional
    # updates of one row exactly one applies: tests/test_jobs.py), but two inserts of one new
    # key can both land. So every transition of a job is a conditional update of a row that
    # exists already: a job's row is made under LOCK_ROW, and LOCK_ROW itself comes with the
    # table, whose creation happens once.
    def job(self, key: str) -> Job | None:
        rows = self._jobs().search().where(f"key = {quote(key)}").limit(None).to_arrow().to_pylist()
        if not rows:
            return None
        r = rows[0]
        return Job(**{**r, "command": tuple(json.loads(r["command"]))})

    def _jobs(self):
        try:
            return self.db.open_table("jobs")
        except (FileNotFoundError, ValueError):
            pass
        try:  # of processes creating it at once one succeeds; the others open what it made
            return self.db.create_table("jobs", data=[_job_row(Job(k, "lock", k, (), status="idle"))
                                                      for k in LOCK_ROWS], schema=JOBS)
        except Exception:
            return self.db.open_table("jobs")

    def put_job_unless_active(self, job: Job, stale_before: float) -> None:
        """Write `job` over the stored one for its key unless that one is pending or running
        and was heard from after `stale_before`."""
        if not self._jobs().count_rows(f"key = {quote(job.key)}"):
            with self.exclusive(LOCK_ROW):
                if not self._jobs().count_rows(f"key = {quote(job.key)}"):
                    self._jobs().add([_job_row(Job(job.key, job.kind, job.target, (), status="idle"))])
        values = _job_row(job)
        del values["key"]
        self.update_job(job.key, f"status NOT IN ('pending', 'running') OR heartbeat < {float(stale_before)!r}",
                        **values)

    def claim_job(self, key: str, token: str, worker: str, at: float) -> None:
        """Mark the pending job issued with `token` as running in `worker`."""
        self.update_job(key, f"status = 'pending' AND token = {quote(token)}", status="running", worker=worker,
                        heartbeat=at)

    def delete_job(self, key: str) -> None:
        self._retry(lambda: self._jobs().delete(f"key = {quote(key)}"))

    @contextmanager
    def exclusive(self, key: str, wait_s: float = 60.0, stale_s: float = 30.0):
        """Hold one of the LOCK_ROWS while the block runs (a short critical section across
        processes); waits for another holder, and takes over one held past `stale_s` (its
        process died)."""
        token = secrets.token_hex(8)
        deadline = time.time() + wait_s
        while True:
            self.update_job(key, f"status <> 'running' OR heartbeat < {time.time() - stale_s!r}", status="running",
                            token=token, heartbeat=time.time())
            held = self.job(key)
            if held is not None and held.token == token:
                break
            if time.time() > deadline:
                raise RagEvalError(f"{key} is held by another process; try again")
            time.sleep(0.02 + secrets.randbelow(50) / 1000)
        try:
            yield
        finally:
            self.update_job(key, f"token = {quote(token)}", status="idle")

    def update_job(self, key: str, condition: str, **values) -> None:
        """Set `values` on the job `key` if it still meets `condition` (SQL over its columns)."""
        tbl = self._jobs()
        self._retry(lambda: tbl.update(where=f"key = {quote(key)} AND ({condition})", values=values))


def _job_row(job: Job) -> dict:
    return {**asdict(job), "command": json.dumps(list(job.command))}


def _write(tbl, keys: list[str], rows: list[dict], replace: bool) -> None:
    """Rows in one commit: appended, or with `replace` in place of those with the same keys."""
    if not rows:
        return
    if replace:
        tbl.merge_insert(keys).when_matched_update_all().when_not_matched_insert_all().execute(rows)
    else:
        tbl.add(rows)


def _number(value) -> float | None:
    """A nullable float column's value: None for null (Arrow) or NaN."""
    return None if value is None or value != value else float(value)


def _run_row(run: Run) -> dict:
    row = asdict(run)
    row["modes"], row["metrics"] = json.dumps(list(run.modes)), json.dumps(list(run.metrics))
    row["config"] = json.dumps(run.config)
    return row


_RUN_FIELDS = {f.name for f in dataclasses.fields(Run)}


def _experiment_row(exp: Experiment) -> dict:
    row = asdict(exp)
    for k in ("modes", "metrics", "configs"):
        row[k] = json.dumps(list(row[k]))
    row["grid"] = json.dumps(exp.grid)
    return row


def _experiment_from_row(r: dict) -> Experiment:
    r = dict(r)
    r["modes"], r["metrics"] = tuple(json.loads(r["modes"])), tuple(json.loads(r["metrics"]))
    r["grid"], r["configs"] = json.loads(r["grid"]), tuple(json.loads(r["configs"]))
    return Experiment(**r)


def _run_from_row(r: dict) -> Run:
    r = {k: v for k, v in r.items() if k in _RUN_FIELDS}
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
