"""The Ray engine of an ingest: chunks embedded by a pool of Ray workers and written into the
knowledge base's Lance table with Lance's Ray integration (lance-ray).

    python -m core ingest ./docs --kb big --engine ray [--address HOST:PORT] [--workers N]

Only the heavy step moves. Reading, chunking and planning (which documents are new, changed or
unchanged by their content hash, which left their source) run in this process with the local
path's code, and deletes and indexing follow here too, so the table is the one the local engine
makes: the same ids, texts and hashes, vectors from the same encoder (every worker checks the
hash of its weights against this process's), and an unchanged re-ingest embeds nothing and does
not start Ray at all.

- New documents: a Ray Dataset of chunk rows -> `map_batches` on a pool of `_Encoder` actors
  (the encoder loaded once per worker, `embed_chunks` as locally) -> `lance_ray.write_lance`
  in append mode into the table's dataset. Workers write the fragments; one commit appends them
  all, so readers see none of them or all.
- Changed documents are swapped in: their old chunks out and the new in, in one commit
  (`Store.replace_documents`, a merge_insert). lance-ray's sink commits only appends and
  overwrites, so their embedded rows stream back here in order and are swapped in every
  `swap_every` rows, whole documents at a time, as the local engine does.

Without `--address` (or RAY_ADDRESS) a local Ray is started for the ingest and stopped after
it; an already initialised Ray (a test's, a notebook's) is used as it is. A cluster's nodes need
the project's Python environment (requirements.txt); this package is shipped to them
(`py_modules`), and so are the AWS_* variables an s3:// knowledge base needs.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import warnings
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path

import pyarrow as pa

from core import errors
from core.config import OBJECT_STORE_ENV, PREFIX, Settings, is_object_storage
from core.embeddings import Embedder
from core.errors import ConfigError, RagEvalError
from core.ingest import Progress, embed_chunks
from core.models import Chunk
from core.store import Store

CHUNK_COLUMNS = ("source", "document", "section", "chunk_index", "text", "content_hash")
ROWS_PER_FRAGMENT = 16_384  # rows a write task gathers before it writes a fragment
# what a worker on another machine needs from this process's environment
FORWARDED_ENV = OBJECT_STORE_ENV + ("LANCE_LOG", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
CONNECT_TIMEOUT_S = 5.0
_RAISED = re.compile(r"core\.errors\.(\w+): (.+)")


class RayEngine:
    """Embeds and writes an ingest's chunks on Ray (see the module docstring)."""

    def __init__(self, address: str = "", workers: int | None = None):
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers {workers}: use 1 or more")
        self.address = address or os.environ.get("RAY_ADDRESS", "")
        self.workers = workers
        self.name = "ray"
        self.command = ("--engine", "ray", *(("--address", address) if address else ()),
                        *(("--workers", str(workers)) if workers else ()))
        if self.address:
            check_reachable(self.address)  # Ray itself retries an unreachable address for minutes

    def embed_and_write(self, todo: list[tuple[list[Chunk], bool]], kb: str, store: Store, embedder: Embedder,
                        settings: Settings, progress: Progress, batch_chunks: int, swap_every: int) -> int:
        new = [c for cs, replaces in todo if not replaces for c in cs]
        changed = [cs for cs, replaces in todo if replaces]
        total = len(new) + sum(len(cs) for cs in changed)
        with self._session() as (ray, workers):
            self.name = f"ray ({workers} worker{'s' if workers > 1 else ''})"
            counter = ray.remote(num_cpus=0)(_Count).remote()

            def embedded(chunks: list[Chunk], preserve_order: bool = False):
                return self._embedded(ray, chunks, settings, embedder, batch_chunks, workers, counter, preserve_order)

            def report() -> None:
                progress(ray.get(counter.value.remote(), timeout=30), total, "embedding")

            if new:
                dataset = store.kb_dataset(kb, embedder.dim)
                if not is_object_storage(dataset.uri):
                    ray.get([ray.remote(num_cpus=0)(check_shared).options(scheduling_strategy=node).remote(dataset.uri)
                             for node in _every_node(ray)])
                self._append(embedded(new), dataset, report)
            if changed:
                self._swap(embedded([c for cs in changed for c in cs], preserve_order=True), changed, kb, store,
                           embedder.dim, swap_every, report)
            report()
        return total

    @staticmethod
    def _embedded(ray, chunks, settings, embedder, batch_chunks, workers, counter, preserve_order):
        """A Ray Dataset of the chunks' rows in the knowledge base's schema, vectors included."""
        rows = pa.Table.from_pylist([{k: getattr(c, k) for k in CHUNK_COLUMNS} for c in chunks])
        blocks = [rows.slice(i, batch_chunks) for i in range(0, rows.num_rows, batch_chunks)]
        ds = ray.data.from_arrow(blocks)
        ds.context.enable_progress_bars = False  # progress goes through the ingest's callback
        ds.context.print_on_execution_start = False
        ds.context.execution_options.preserve_order = preserve_order
        return ds.map_batches(_Encoder, fn_constructor_args=(settings.embedding_model, embedder.identity, counter),
                              batch_size=batch_chunks, batch_format="pyarrow", num_cpus=1,
                              compute=ray.data.ActorPoolStrategy(size=min(workers, len(blocks))),
                              runtime_env=_runtime_env())

    @staticmethod
    def _append(ds, dataset, report) -> None:
        """Write the rows of new documents as fragments from the workers, committed as one append."""
        import lance_ray

        pool = ThreadPoolExecutor(1, thread_name_prefix="write-lance")  # this thread reports progress
        try:
            writing = pool.submit(lance_ray.write_lance, ds, dataset.uri, mode="append",
                                  min_rows_per_file=ROWS_PER_FRAGMENT,
                                  data_storage_version=dataset.data_storage_version,
                                  ray_remote_args={"runtime_env": _runtime_env()})
            while True:
                try:
                    return writing.result(timeout=1.0)
                except FutureTimeout:
                    report()
        finally:
            pool.shutdown(wait=False)  # on Ctrl-C, Ray's shutdown ends the write rather than waiting for it

    @staticmethod
    def _swap(ds, changed: list[list[Chunk]], kb: str, store: Store, dim: int, swap_every: int, report) -> None:
        """Swap changed documents in as their rows come back (in order), whole documents at a time."""
        ends = list(accumulate(len(cs) for cs in changed))  # row count after each document
        pending: list[pa.Table] = []
        received = flushed_rows = flushed_docs = 0
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            pending.append(batch)
            received += batch.num_rows
            whole = bisect_right(ends, received)  # documents all of whose rows have arrived
            if whole > flushed_docs and (ends[whole - 1] - flushed_rows >= swap_every or whole == len(changed)):
                rows = pa.concat_tables(pending)
                upto = ends[whole - 1] - flushed_rows
                documents: dict[str, list[str]] = {}
                for cs in changed[flushed_docs:whole]:
                    documents.setdefault(cs[0].source, []).append(cs[0].document)
                part = rows.slice(0, upto)
                if set(zip(part["source"].to_pylist(), part["document"].to_pylist())) != \
                        {(s, d) for s, docs in documents.items() for d in docs}:
                    raise RuntimeError("Ray returned the embedded rows out of order (preserve_order)")
                store.replace_documents(kb, documents, part, dim)
                pending = [rows.slice(upto)]
                flushed_rows, flushed_docs = ends[whole - 1], whole
            report()

    @contextmanager
    def _session(self):
        """Ray, started or joined for the ingest, with the number of workers to use; Ray's own
        failures come out as the project's errors."""
        import ray
        import ray.data  # configures its loggers when imported: before they are quietened below
        import ray.exceptions

        started = not ray.is_initialized()
        quiet = [(logging.getLogger(n), logging.getLogger(n).level) for n in ("ray", "ray.data")]
        try:
            if started:
                self._init(ray)
            for logger, _ in quiet:  # Ray's failures reach the user as one line (project_error)
                logger.setLevel(logging.CRITICAL)
            cpus = int(ray.cluster_resources().get("CPU", 0))
            workers = self.workers or cpus
            if not 1 <= workers <= cpus:
                raise ConfigError(f"--workers {workers}: the Ray cluster has {cpus} CPUs; each worker takes one")
            yield ray, workers
        except ray.exceptions.RayError as e:  # before RagEvalError: a task's error is an instance of both
            raise project_error(e) from None
        finally:
            for logger, level in quiet:
                logger.setLevel(level)
            if started and ray.is_initialized():
                ray.shutdown()

    def _init(self, ray) -> None:
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        where = f"--address {self.address}" if self.address else "a local Ray"
        with warnings.catch_warnings():
            # Ray starts its processes with fork + exec, which lance and lancedb warn about
            warnings.filterwarnings("ignore", message=".*fork.*")
            try:
                if self.address:  # the workers of a cluster import this package from what is shipped
                    ray.init(address=self.address, runtime_env={"py_modules": [str(Path(__file__).parent)]},
                             **options)
                else:
                    ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError, OSError) as e:
                raise ConfigError(f"{where}: Ray could not start or connect for the ingest: {_first_line(e)}; "
                                  "leave out --engine ray to ingest in this process") from None


def _runtime_env() -> dict:
    """This process's AWS_* (an s3:// knowledge base) and offline settings for the workers: a Ray
    started before they were set, or on other machines, does not have them."""
    return {"env_vars": {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}}


def _every_node(ray) -> list:
    """A scheduling strategy for each live node of the cluster."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return [NodeAffinitySchedulingStrategy(n["NodeID"], soft=False) for n in ray.nodes() if n["Alive"]]


def check_shared(dataset_uri: str) -> None:
    """Run on every node before workers write into a knowledge base in a local folder: refuse a
    folder that node does not have. A worker there would write its fragments to its own disk, and
    the commit would name files the table's machine lacks."""
    if not os.path.isdir(dataset_uri):
        raise ConfigError(f"the knowledge base's folder {dataset_uri} is not on Ray worker {socket.gethostname()}: "
                          f"put the database where every node reaches it ({PREFIX}STORAGE_URI=s3://..., or a folder "
                          "mounted at the same path on every node), or leave out --address")


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse at once a Ray address nothing listens on (Ray would retry it for minutes)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: use HOST:PORT (the head node's GCS port, 6379 by default), "
                          "ray://HOST:PORT for Ray Client, or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({e.strerror or e}); start one "
                          "with `ray start --head`, or leave out --address to start a local Ray for the ingest") \
            from None


class _Encoder:
    """One Ray worker's encoder: loaded once, checked against the ingest's, then used for every
    batch of chunk rows the worker is given."""

    def __init__(self, model: str, identity: dict, counter):
        import ray
        import torch

        from core.embeddings import get_embedder

        self.embedder = get_embedder(model)
        if self.embedder.identity != identity:
            raise ConfigError(f"the encoder on Ray worker {socket.gethostname()} is "
                              f"{_described(self.embedder.identity)}, the ingest's is {_described(identity)}: install "
                              f"the same embedding model on every node ({PREFIX}EMBEDDING_MODEL names the same path "
                              "on each)")
        # one torch thread per CPU Ray gave this worker, not one per core of the machine (the
        # encoder's `threads`, where it sets torch's for each batch, and torch's own)
        threads = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        self.embedder.threads = threads
        torch.set_num_threads(threads)
        self.counter = counter

    def __call__(self, batch: pa.Table) -> pa.Table:
        chunks = [Chunk(**row) for row in batch.to_pylist()]
        table = embed_chunks(chunks, self.embedder)
        self.counter.add.remote(len(chunks))
        return table


class _Count:
    """Chunks embedded so far, counted by the workers and read for progress."""

    def __init__(self):
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n

    def value(self) -> int:
        return self.n


def project_error(e: Exception) -> RagEvalError:
    """The project's error a worker raised, from the Ray failure that carries it, else one line of
    that failure. Ray keeps a worker's exception as text (an actor that died in its constructor
    keeps only its traceback), whose last line is `core.errors.ConfigError: message`."""
    for name, message in reversed(_RAISED.findall(str(e))):
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, RagEvalError):
            return kind(message)
    return RagEvalError(f"the Ray ingest failed: {_first_line(e)}")


def _described(identity: dict) -> str:
    return f"{identity['model']} ({identity['dim']}-d, weights {identity['sha256']})"


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
