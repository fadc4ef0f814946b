"""Vector, full-text and hybrid (reciprocal-rank fusion) search over a knowledge base.

Searches run on the knowledge base's Lance dataset in the store's one Lance session
(`Store.kb_searchable`). Vector search, alone and as the vector half of hybrid, uses the
search parameters the knowledge base's index build chose by measuring its recall (see
Store.index_kb) with this same query.
"""
from __future__ import annotations

import pyarrow as pa

from core.embeddings import Embedder
from core.errors import RagEvalError
from core.models import Passage
from core.store import Store, check_encoder, nearest

SEARCH_MODES = ("vector", "fts", "hybrid")
_COLUMNS = ["id", "text", "source", "document", "section"]


def search(store: Store, kb: str, query: str, embedder: Embedder, k: int = 4,
           mode: str = "hybrid", version: int | None = None) -> list[Passage]:
    """The top-k passages for `query` in the knowledge base (as it was at `version`, when
    given); scores are higher-is-better within one mode."""
    if mode not in SEARCH_MODES:
        raise RagEvalError(f"search mode {mode!r} is unknown: use one of {', '.join(SEARCH_MODES)}")
    if not query.strip():
        return []
    ds = store.kb_searchable(kb, version)
    check_encoder(store, kb, ds, embedder.identity)
    if ds.count_rows() == 0:
        return []
    if mode == "fts":
        hits = _fts(ds, query, k)
        return _passages(hits, hits["_score"].to_pylist())
    vector = embedder.encode([query])[0]
    if mode == "vector":
        return _vector(store, ds, vector, k)
    from lancedb.rerankers import RRFReranker

    # LanceDB's hybrid query, on the dataset: the vector and the full-text top-k, fused by rank
    found = _nearest(store, ds, vector, k, with_row_id=True)
    hits = RRFReranker().rerank_hybrid(query, found, _fts(ds, query, k, with_row_id=True)).slice(0, k)
    return _passages(hits, hits["_relevance_score"].to_pylist())


def search_vector(store: Store, kb: str, vector, k: int = 4) -> list[Passage]:
    """The top-k passages nearest to an embedding (cosine similarity as the score)."""
    return _vector(store, store.kb_searchable(kb), vector, k)


def _nearest(store: Store, ds, vector, k: int, with_row_id: bool = False) -> pa.Table:
    return ds.to_table(nearest=nearest(vector, k, store.vector_index(ds)), columns=_COLUMNS + ["_distance"],
                       with_row_id=with_row_id)


def _fts(ds, query: str, k: int, with_row_id: bool = False) -> pa.Table:
    return ds.to_table(full_text_query={"query": query, "columns": ["text"]}, columns=_COLUMNS + ["_score"],
                       limit=k, with_row_id=with_row_id)


def _vector(store: Store, ds, vector, k: int) -> list[Passage]:
    hits = _nearest(store, ds, vector, k)
    return _passages(hits, [1.0 - d for d in hits["_distance"].to_pylist()])


def _passages(hits: pa.Table, scores: list) -> list[Passage]:
    cols = [hits[c].to_pylist() for c in ("id", "text", "source", "document", "section")]
    return [Passage(*row, float(s)) for *row, s in zip(*cols, scores)]
