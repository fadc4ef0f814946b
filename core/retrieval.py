"""Vector, full-text and hybrid (reciprocal-rank fusion) search over a knowledge base."""
from __future__ import annotations

from core.embeddings import Embedder
from core.errors import RagEvalError
from core.models import Passage
from core.store import Store

SEARCH_MODES = ("vector", "fts", "hybrid")
_COLUMNS = ["id", "text", "source", "document", "section"]


def search(store: Store, kb: str, query: str, embedder: Embedder, k: int = 4,
           mode: str = "hybrid") -> list[Passage]:
    """The top-k passages for `query`; scores are higher-is-better within one mode."""
    if mode not in SEARCH_MODES:
        raise RagEvalError(f"search mode {mode!r} is unknown: use one of {', '.join(SEARCH_MODES)}")
    if not query.strip():
        return []
    tbl = store.kb_table(kb)
    if tbl.count_rows() == 0:
        return []
    if mode == "vector":
        rows = (tbl.search(embedder.encode([query])[0], vector_column_name="vector").distance_type("cosine")
                .select(_COLUMNS + ["_distance"]).limit(k).to_list())
        return [_passage(r, 1.0 - r["_distance"]) for r in rows]
    if mode == "fts":
        rows = tbl.search(query, query_type="fts", fts_columns="text").select(_COLUMNS + ["_score"]).limit(k).to_list()
        return [_passage(r, r["_score"]) for r in rows]
    from lancedb.rerankers import RRFReranker

    rows = (tbl.search(query_type="hybrid", vector_column_name="vector", fts_columns="text")
            .vector(embedder.encode([query])[0]).text(query).distance_type("cosine")
            .rerank(RRFReranker()).select(_COLUMNS).limit(k).to_list())
    return [_passage(r, r["_relevance_score"]) for r in rows]


def _passage(row: dict, score: float) -> Passage:
    return Passage(row["id"], row["text"], row["source"], row["document"], row["section"], float(score))
