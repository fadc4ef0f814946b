"""Vector, full-text and hybrid (reciprocal-rank fusion) search over a knowledge base.

Vector search (alone and as the vector half of hybrid) uses the search parameters the
knowledge base's index build chose by measuring its recall (see Store.index_kb).
"""
from __future__ import annotations

import pyarrow as pa

from core.embeddings import Embedder
from core.errors import RagEvalError
from core.models import Passage
from core.store import Store, check_encoder, search_params

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
    tbl = store.kb_at(kb, version)
    check_encoder(store, kb, tbl, embedder.identity)
    if tbl.count_rows() == 0:
        return []
    if mode == "vector":
        return _vector(store, tbl, embedder.encode([query])[0], k)
    if mode == "fts":
        hits = tbl.search(query, query_type="fts", fts_columns="text").select(_COLUMNS + ["_score"]).limit(k)
        hits = hits.to_arrow()
        return _passages(hits, hits["_score"].to_pylist())
    from lancedb.rerankers import RRFReranker

    q = (tbl.search(query_type="hybrid", vector_column_name="vector", fts_columns="text")
         .vector(embedder.encode([query])[0]).text(query).distance_type("cosine"))
    hits = search_params(q, store.vector_index(tbl)).rerank(RRFReranker()).select(_COLUMNS).limit(k).to_arrow()
    return _passages(hits, hits["_relevance_score"].to_pylist())


def search_vector(store: Store, kb: str, vector, k: int = 4) -> list[Passage]:
    """The top-k passages nearest to an embedding (cosine similarity as the score)."""
    return _vector(store, store.kb_table(kb), vector, k)


def _vector(store: Store, tbl, vector, k: int) -> list[Passage]:
    q = tbl.search(vector, vector_column_name="vector").distance_type("cosine")
    hits = search_params(q, store.vector_index(tbl)).select(_COLUMNS + ["_distance"]).limit(k).to_arrow()
    return _passages(hits, [1.0 - d for d in hits["_distance"].to_pylist()])


def _passages(hits: pa.Table, scores: list) -> list[Passage]:
    cols = [hits[c].to_pylist() for c in ("id", "text", "source", "document", "section")]
    return [Passage(*row, float(s)) for *row, s in zip(*cols, scores)]
