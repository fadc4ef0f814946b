"""Documents → heading-aware chunks → embeddings → a knowledge-base table, incrementally.

A document whose content hash is unchanged is not re-embedded; a changed one has its
old chunks replaced; one that has left its source is deleted. The hash covers the
chunking settings and the embedding model too, since either changes the chunks.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core import sources
from core.config import Settings
from core.embeddings import Embedder
from core.models import Chunk, Document, Skipped
from core.store import Store, now

Progress = Callable[[int, int, str], None]  # (done, total, what)

_SENTENCE_END = {".", "!", "?", ":", ";"}


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
    seconds: float = 0.0


def chunk_document(doc: Document, embedder: Embedder, max_tokens: int, overlap: int) -> list[Chunk]:
    """Split each section into windows of at most `max_tokens` of the encoder's own tokens
    (heading line included), cutting at paragraph or sentence ends where it can."""
    digest = document_hash(doc, embedder, max_tokens, overlap)
    chunks: list[Chunk] = []
    for section in doc.sections:
        heading = " > ".join(section.path)
        prefix = f"{heading}\n\n" if heading else ""
        budget = max(16, max_tokens - embedder.count_tokens(prefix))
        for piece in split_tokens(section.text, embedder.tokenizer, budget, overlap):
            chunks.append(Chunk(doc.source, doc.name, heading, len(chunks), prefix + piece, digest))
    return chunks


def split_tokens(text: str, tokenizer, budget: int, overlap: int) -> list[str]:
    """Windows of `text` of at most `budget` tokens, overlapping by about `overlap` tokens."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)["offset_mapping"]
    n = len(offsets)
    if n <= budget:
        return [text.strip()] if text.strip() else []
    # token indices where a cut reads well: after a line break or a sentence end
    good = set()
    for i in range(1, n):
        gap = text[offsets[i - 1][1]:offsets[i][0]]
        if "\n" in gap or (gap and text[offsets[i - 1][0]:offsets[i - 1][1]] in _SENTENCE_END):
            good.add(i)
    pieces, start = [], 0
    while start < n:
        end = min(start + budget, n)
        if end < n:
            cut = next((i for i in range(end, start + budget // 2, -1) if i in good), None)
            end = cut or end
        pieces.append(text[offsets[start][0]:offsets[end - 1][1]].strip())
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        # start the overlap at a good break too, so a chunk does not open mid-word
        start = next((i for i in range(nxt, end) if i in good), nxt)
    return [p for p in pieces if p]


def document_hash(doc: Document, embedder: Embedder, max_tokens: int, overlap: int) -> str:
    h = hashlib.sha256(f"{embedder.path}|{max_tokens}|{overlap}\n".encode())
    for s in doc.sections:
        h.update(("\x1f".join(s.path) + "\x1e" + s.text + "\x1d").encode())
    return h.hexdigest()[:32]


def ingest(specs: Iterable[str], kb: str, store: Store, embedder: Embedder, settings: Settings,
           progress: Progress | None = None, batch_chunks: int = 256) -> IngestReport:
    """Ingest every source spec into knowledge base `kb`; see the module docstring."""
    t0 = time.perf_counter()
    report = IngestReport(kb)
    progress = progress or (lambda done, total, what: None)
    plan: list[tuple[str, list[Document]]] = []
    for spec in specs:  # read everything first: a bad spec stops before anything is written
        progress(0, 0, f"reading {spec}")
        docs: list[Document] = []
        for item in sources.read(spec):
            if isinstance(item, Skipped):
                report.skipped.append(item)
            else:
                docs.append(item)
        plan.append((spec, docs))

    store.kb_table(kb, embedder.dim)  # create the knowledge base even if nothing is new
    todo: list[tuple[str, list[Chunk], str]] = []  # (source, chunks, document) of changed documents
    for _, docs in plan:
        by_source: dict[str, list[Document]] = {}
        for d in docs:
            by_source.setdefault(d.source, []).append(d)
        for source, sdocs in by_source.items():
            known = store.document_hashes(kb, source)
            report.documents += len(sdocs)
            for d in sdocs:
                if known.get(d.name) == document_hash(d, embedder, settings.chunk_tokens, settings.chunk_overlap):
                    report.unchanged += 1
                else:
                    todo.append((source, chunk_document(d, embedder, settings.chunk_tokens,
                                                        settings.chunk_overlap), d.name))
            gone = sorted(set(known) - {d.name for d in sdocs})
            if gone:
                store.delete_documents(kb, source, gone)
                report.deleted_documents += len(gone)

    total = sum(len(c) for _, c, _ in todo)
    done = 0
    progress(0, total, "embedding")
    batch: list[tuple[str, list[Chunk], str]] = []
    for entry in todo:
        batch.append(entry)
        if sum(len(c) for _, c, _ in batch) >= batch_chunks:
            done = _write_batch(batch, kb, store, embedder, done, total, progress)
            batch = []
    if batch:
        done = _write_batch(batch, kb, store, embedder, done, total, progress)
    report.embedded_documents = len(todo)
    report.chunks_embedded = done
    if todo or report.deleted_documents:
        progress(done, total, "indexing")
        store.index_kb(kb)
        store.optimize("kb_" + kb)
    report.seconds = time.perf_counter() - t0
    return report


def _write_batch(batch, kb, store, embedder, done, total, progress) -> int:
    chunks = [c for _, cs, _ in batch for c in cs]
    vectors = embedder.encode([c.text for c in chunks]) if chunks else []
    stamp = now()
    rows = [{"id": c.id, "source": c.source, "document": c.document, "section": c.section,
             "chunk_index": c.chunk_index, "text": c.text, "content_hash": c.content_hash,
             "ingested_at": stamp, "vector": v.tolist()} for c, v in zip(chunks, vectors)]
    by_source: dict[str, tuple[list[str], list[dict]]] = {}
    for source, _, name in batch:
        by_source.setdefault(source, ([], []))[0].append(name)
    for row in rows:
        by_source[row["source"]][1].append(row)
    for source, (names, srows) in by_source.items():
        store.replace_documents(kb, source, names, srows, embedder.dim)
    done += len(chunks)
    progress(done, total, "embedding")
    return done
