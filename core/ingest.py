"""Documents → heading-aware chunks → embeddings → a knowledge-base table, incrementally.

A document whose content hash is unchanged is not re-embedded; a changed one is embedded
first and then swapped in, old chunks for new, in one commit, so a failure at any point
leaves every document either wholly old or wholly new; one that has left its source is
deleted, and so are all the chunks of a source that yields no documents any more. The
hash covers the chunking settings and the embedding model too, since either changes the
chunks. An ingest that fails into a knowledge base it was creating leaves none behind: on an
error it is dropped, and one killed outright leaves a table marked partial that no listing
shows and the next ingest into that name replaces.

The heavy step, embedding the chunks and writing them, runs in this process (`LocalEngine`) or
on a Ray cluster (core/ray_ingest.py); reading, chunking, planning, deletes and indexing run here
either way, so both make the same table.

Budgets hold before the work: a document over `max_document_chars` is skipped with its reason,
and an ingest that would embed more than `max_ingest_chunks` chunks is refused before
anything is embedded or written. A chunk is bounded in characters as well as tokens, so a
line with no spaces (one unknown token to the encoder) cannot become one enormous chunk.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from core import jobs, sources
from core.config import PREFIX, Settings
from core.embeddings import Embedder
from core.errors import SourceError
from core.models import Chunk, Document, Skipped, VectorIndex
from core.store import Store, check_encoder, check_name, chunk_schema, now

Progress = Callable[[int, int, str], None]  # (done, total, what)

_SENTENCE_END = {".", "!", "?", ":", ";"}
MAX_HEADING_CHARS = 300
MAX_TOKEN_CHARS = 16  # a longer token span (an unknown "word" of thousands of characters) counts as several


@dataclass
class IngestReport:
    """What an ingest did."""

    kb: str
    documents: int = 0
    unchanged: int = 0
    embedded_documents: int = 0
    deleted_documents: int = 0
    chunks_embedded: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    removed_sources: list[str] = field(default_factory=list)  # yield no documents any more: chunks removed
    index: VectorIndex | None = None  # the vector index after the ingest (None: exact search)
    seconds: float = 0.0
    engine: str = ""  # what embedded and wrote the chunks ("local", "ray (2 workers)"); "" when nothing was


def chunk_document(doc: Document, embedder: Embedder, max_tokens: int, overlap: int) -> list[Chunk]:
    """Split each section into windows of at most `max_tokens` of the encoder's own tokens
    (heading line included), cutting at paragraph or sentence ends where it can."""
    digest = document_hash(doc, embedder, max_tokens, overlap)
    chunks: list[Chunk] = []
    for section in doc.sections:
        heading = " > ".join(section.path)[:MAX_HEADING_CHARS]
        prefix = f"{heading}\n\n" if heading else ""
        budget = max(16, max_tokens - embedder.count_tokens(prefix))
        for piece in split_tokens(section.text, embedder.tokenizer, budget, overlap):
            chunks.append(Chunk(doc.source, doc.name, heading, len(chunks), prefix + piece, digest))
    return chunks


def split_tokens(text: str, tokenizer, budget: int, overlap: int) -> list[str]:
    """Windows of `text` of at most `budget` tokens, overlapping by about `overlap` tokens."""
    offsets = _bounded(tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                 verbose=False)["offset_mapping"])
    n = len(offsets)
    if n <= budget and len(text) <= budget * MAX_TOKEN_CHARS:
        return [text.strip()] if text.strip() else []
    # token indices where a cut reads well: after a line break or a sentence end
    good = set()
    for i in range(1, n):
        gap = text[offsets[i - 1][1]:offsets[i][0]]
        if "\n" in gap or (gap and text[offsets[i - 1][0]:offsets[i - 1][1]] in _SENTENCE_END):
            good.add(i)
    pieces, start = [], 0
    while start < n:  # a window of `budget` bounded tokens spans at most budget x MAX_TOKEN_CHARS characters
        end = start + 1
        limit = offsets[start][0] + budget * MAX_TOKEN_CHARS  # and white space between tokens counts too
        while end < n and end - start < budget and offsets[end][1] <= limit:
            end += 1
        end = min(end, n)
        if end < n:
            cut = next((i for i in range(end, start + (end - start) // 2, -1) if i in good), None)
            end = cut or end
        pieces.append(text[offsets[start][0]:offsets[end - 1][1]].strip())
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        # start the overlap at a good break too, so a chunk does not open mid-word
        start = next((i for i in range(nxt, end) if i in good), nxt)
    return [p for p in pieces if p]


def _bounded(offsets) -> list[tuple[int, int]]:
    """Token spans with any span longer than MAX_TOKEN_CHARS split into pieces of that length."""
    out = []
    for a, b in offsets:
        out += [(i, min(i + MAX_TOKEN_CHARS, b)) for i in range(a, b, MAX_TOKEN_CHARS)] if b - a > MAX_TOKEN_CHARS \
            else [(a, b)]
    return out


def document_hash(doc: Document, embedder: Embedder, max_tokens: int, overlap: int) -> str:
    h = hashlib.sha256(f"{embedder.path}|{max_tokens}|{overlap}\n".encode())
    for s in doc.sections:
        h.update(("\x1f".join(s.path) + "\x1e" + s.text + "\x1d").encode())
    return h.hexdigest()[:32]


class Engine(Protocol):
    """Where the heavy step of an ingest runs: embedding the chunks of new and changed documents
    and writing them into the knowledge base (`embed_and_write`). The default is this process
    (`local`); core/ray_ingest.py runs it on a Ray cluster. Planning, deletes and indexing stay
    here, so both engines make the same table."""

    name: str  # shown in the report, e.g. "local" or "ray (2 workers)"
    command: tuple[str, ...]  # its CLI flags, recorded with the ingest's job

    def embed_and_write(self, todo: list[tuple[list[Chunk], bool]], kb: str, store: Store, embedder: Embedder,
                        settings: Settings, progress: Progress, batch_chunks: int, swap_every: int) -> int: ...


def ingest(specs: Iterable[str], kb: str, store: Store, embedder: Embedder, settings: Settings,
           progress: Progress | None = None, batch_chunks: int = 256, engine: Engine | None = None) -> IngestReport:
    """Ingest every source spec into knowledge base `kb`; see the module docstring. Runs as
    the job `ingest:<kb>`: a second ingest into the same knowledge base meanwhile is refused.
    `engine` embeds and writes the chunks (default: in this process)."""
    specs = list(specs)
    progress = progress or (lambda done, total, what: None)
    engine = engine or LOCAL
    command = ("ingest", *specs, "--kb", kb, *engine.command)
    with jobs.start(store, "ingest", check_name("knowledge base", kb), command) as claim:
        report = _ingest_all(specs, kb, store, embedder, settings, claim.follow(progress), batch_chunks, engine)
        claim.finish("done")
    return report


def _ingest_all(specs: list[str], kb: str, store: Store, embedder: Embedder, settings: Settings,
                progress: Progress, batch_chunks: int, engine: Engine) -> IngestReport:
    t0 = time.perf_counter()
    report = IngestReport(kb)
    plan: list[dict[str, list[Document]]] = []  # per spec: {source: its documents}
    for spec in specs:  # read everything first: a bad spec stops before anything is written
        progress(0, 0, f"reading {spec}")
        found: dict[str, list[Document]] = {}
        for item in sources.read(spec):
            found.setdefault(item.source, [])
            item = within_budget(item, settings.max_document_chars)
            if isinstance(item, Skipped):
                report.skipped.append(item)
            else:
                found[item.source].append(item)
        plan.append(found or {_spec_source(spec): []})

    if store.kb_partial(kb):
        store.delete_kb(kb)  # the leftover of an ingest that was killed while creating it: start again
    created = not store.has_kb(kb)
    if not created:
        check_encoder(store, kb, store.kb_table(kb), embedder.identity)
    try:
        _ingest(plan, kb, store, embedder, settings, progress, batch_chunks, report, engine)
    except BaseException:
        if created and store.has_kb(kb):
            store.delete_kb(kb)  # all or nothing for a knowledge base this ingest was creating
        raise
    if not store.has_kb(kb):
        store.kb_table(kb, embedder.dim)  # nothing new to write still leaves the (empty) knowledge base
    elif created:
        store.finish_kb(kb)  # listed from now on; a kill before this leaves nothing anyone sees
    if store.kb_encoder(kb) is None:
        store.set_kb_encoder(kb, embedder.identity)
    report.seconds = time.perf_counter() - t0
    return report


def within_budget(item: Document | Skipped, max_chars: int) -> Document | Skipped:
    """The document, or Skipped with the reason when it is over the per-document budget."""
    if isinstance(item, Document):
        n = sum(len(s.text) for s in item.sections)
        if n > max_chars:
            return Skipped(item.source, item.name, f"{n:,} characters, more than {PREFIX}MAX_DOCUMENT_CHARS="
                                                   f"{max_chars:,}; raise it to ingest this document")
    return item


def check_chunk_budget(todo, max_chunks: int) -> None:
    """Refuse, before anything is embedded, an ingest that would embed more chunks than allowed."""
    total = sum(len(c) for c, _ in todo)
    if total > max_chunks:
        raise SourceError(f"this ingest would embed {total:,} chunks of {len(todo):,} documents, more than "
                          f"{PREFIX}MAX_INGEST_CHUNKS={max_chunks:,}; raise it, or ingest fewer sources at once. "
                          "Nothing was ingested")


def _spec_source(spec: str) -> str:
    """The source name of a spec that yielded nothing at all: folders and archives name their
    source by their resolved path (the other kinds always yield something or raise)."""
    path = Path(spec)
    return str(path.resolve()) if path.exists() else spec


def _ingest(plan, kb, store, embedder, settings, progress, batch_chunks, report, engine) -> None:
    todo, gone = _changes(plan, kb, store, embedder, settings, report)
    check_chunk_budget(todo, settings.max_ingest_chunks)
    total = sum(len(c) for c, _ in todo)
    progress(0, total, "embedding")
    # Swapping changed documents in (merge_insert) scans the whole table, ~1.3 ms per 1,000
    # rows measured; new documents are plain appends. So swaps are gathered until they are
    # a few percent of the embedding time between them: 250 chunks embed in ~6 s here.
    rows = store.kb_table(kb).count_rows() if store.has_kb(kb) else 0
    swap_every = max(batch_chunks, rows // 400)
    done = engine.embed_and_write(todo, kb, store, embedder, settings, progress, batch_chunks, swap_every) \
        if todo else 0
    if gone:
        store.delete_documents(kb, gone)
    report.embedded_documents = len(todo)
    report.chunks_embedded = done
    report.engine = engine.name if todo else ""
    if todo or gone:
        progress(done, total, "indexing")
        report.index = store.index_kb(kb)
    elif store.has_kb(kb):
        report.index = store.vector_index(kb)


def _changes(plan, kb, store, embedder, settings, report) -> tuple[list[tuple[list[Chunk], bool]],
                                                                  dict[str, list[str]]]:
    """What the ingest has to do: the chunks of every new or changed document, each with whether
    it replaces chunks stored before, and the documents to delete ({source: [document, ...]})."""
    todo: list[tuple[list[Chunk], bool]] = []  # (chunks of a changed or new document, replaces old chunks)
    gone: dict[str, list[str]] = {}
    for found in plan:
        for source, docs in found.items():
            known, empty = store.document_hashes(kb, source), set()
            report.documents += len(docs)
            for d in docs:
                if known.get(d.name) == document_hash(d, embedder, settings.chunk_tokens, settings.chunk_overlap):
                    report.unchanged += 1
                elif chunks := chunk_document(d, embedder, settings.chunk_tokens, settings.chunk_overlap):
                    todo.append((chunks, d.name in known))
                else:
                    empty.add(d.name)
            # documents that left their source, or that no longer make any chunk
            left = sorted((set(known) - {d.name for d in docs}) | (empty & set(known)))
            if left:
                gone.setdefault(source, []).extend(left)
                report.deleted_documents += len(left)
            if known and not docs:
                report.removed_sources.append(source)
    return todo, gone


class LocalEngine:
    """Embeds and writes in this process, a batch at a time: new documents appended as they are
    embedded, changed ones swapped in every `swap_every` chunks."""

    name = "local"
    command = ()

    def embed_and_write(self, todo, kb, store, embedder, settings, progress, batch_chunks, swap_every) -> int:
        total = sum(len(c) for c, _ in todo)
        pending: list[pa.Table] = []
        pending_docs: dict[str, list[str]] = {}
        done = 0
        batch: list[tuple[list[Chunk], bool]] = []
        for i, entry in enumerate(todo):
            batch.append(entry)
            if sum(len(c) for c, _ in batch) < batch_chunks and i < len(todo) - 1:
                continue
            new, changed = [c for c, r in batch if not r], [c for c, r in batch if r]
            table = embed_chunks([c for cs in new + changed for c in cs], embedder)
            n_new = sum(len(cs) for cs in new)
            if n_new:
                store.write_chunks(kb, table.slice(0, n_new), embedder.dim, partial=True)  # if it creates the kb
            for cs in changed:
                if cs:
                    pending_docs.setdefault(cs[0].source, []).append(cs[0].document)
            pending.append(table.slice(n_new))
            done += table.num_rows
            batch = []
            if sum(t.num_rows for t in pending) >= swap_every or i == len(todo) - 1:
                if pending_docs:
                    store.replace_documents(kb, pending_docs, pa.concat_tables(pending), embedder.dim)
                pending, pending_docs = [], {}
            progress(done, total, "embedding")
        return done


LOCAL = LocalEngine()


def embed_chunks(chunks: list[Chunk], embedder: Embedder) -> pa.Table:
    """Chunks with their vectors as an Arrow table in the knowledge base's schema."""
    vectors = embedder.encode([c.text for c in chunks]) if chunks else []
    n, stamp = len(chunks), now()
    flat = pa.array(vectors.ravel() if n else [], pa.float32())
    return pa.Table.from_arrays([
        pa.array([c.id for c in chunks], pa.string()), pa.array([c.source for c in chunks], pa.string()),
        pa.array([c.document for c in chunks], pa.string()), pa.array([c.section for c in chunks], pa.string()),
        pa.array([c.chunk_index for c in chunks], pa.int32()), pa.array([c.text for c in chunks], pa.string()),
        pa.array([c.content_hash for c in chunks], pa.string()), pa.array([stamp] * n, pa.string()),
        pa.FixedSizeListArray.from_arrays(flat, embedder.dim),
    ], schema=chunk_schema(embedder.dim))
