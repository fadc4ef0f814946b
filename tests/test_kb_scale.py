"""The knowledge base at scale: a vector index whose search parameters come from its own
recall check, topped up after writes; ingest that swaps documents in whole or not at all."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from core import cli
from core.ingest import chunk_document, ingest
from core.retrieval import search, search_vector
from core.sources import read
from core.store import ANN_KEY, chunk_schema
from tests.conftest import write_docs

DIM = 384


class Corpus:
    """Clustered unit vectors written as Arrow, one document a row, with exact search by numpy."""

    def __init__(self, clusters: int = 2000, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.centers = self.rng.standard_normal((clusters, DIM)).astype(np.float32)
        self.vectors = np.zeros((0, DIM), np.float32)

    def points(self, n: int) -> np.ndarray:
        v = self.centers[self.rng.integers(0, len(self.centers), n)] / np.sqrt(DIM)
        v = v + self.rng.standard_normal((n, DIM)).astype(np.float32) * 0.05
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def write(self, store, kb: str, n: int) -> None:
        start, v = len(self.vectors), self.points(n)
        self.vectors = np.concatenate([self.vectors, v])
        ids = [f"syn::doc{i}.md::0" for i in range(start, start + n)]
        store.write_chunks(kb, pa.table({
            "id": ids, "source": ["syn"] * n, "document": [f"doc{i}.md" for i in range(start, start + n)],
            "section": [""] * n, "chunk_index": pa.array([0] * n, pa.int32()),
            "text": [f"row {i}" for i in range(start, start + n)], "content_hash": ["h"] * n,
            "ingested_at": ["t"] * n, "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), DIM),
        }, schema=chunk_schema(DIM)), DIM)

    def recall(self, store, kb: str, queries: np.ndarray, k: int = 10) -> float:
        found = 0
        for q in queries:
            exact = {f"syn::doc{i}.md::0" for i in np.argsort(-(self.vectors @ q))[:k]}
            found += len({p.id for p in search_vector(store, kb, q, k)} & exact)
        return found / (k * len(queries))


def test_index_is_tuned_by_its_recall_check_and_search_applies_it(store, embedder):
    corpus = Corpus()
    corpus.write(store, "big", 4000)
    assert store.index_kb("big", min_rows=5000) is None  # below the threshold: exact search, no index
    assert store.vector_index("big") is None
    assert not any(i.columns == ["vector"] for i in store.kb_table("big").list_indices())

    index = store.index_kb("big", min_rows=3000, sample=100, rows_per_partition=250)
    assert (index.kind, index.partitions, index.rows, index.sample) == ("IVF_HNSW_SQ", 16, 4000, 100)
    assert index.recall >= index.target == 0.95 and index.meets_target
    assert store.vector_index("big") == index  # stored with the table
    types = {tuple(i.columns): i.index_type for i in store.kb_table("big").list_indices()}
    assert types[("vector",)] == "IvfHnswSq" and ("text",) in types

    # search reads the stored parameters: with them recall holds on fresh queries; with one
    # probe of sixteen partitions written in their place, the same searches lose passages
    queries = corpus.points(40)
    tuned = corpus.recall(store, "big", queries)
    assert tuned >= 0.85
    hybrid = search(store, "big", "row 1717", embedder, k=5, mode="hybrid")  # its vector half takes them too
    assert len(hybrid) == 5 and "row 1717" in [p.text for p in hybrid]
    crippled = dataclasses.replace(index, nprobes=1, ef=10, refine_factor=None)
    store.kb_table("big").update_field_metadata(
        {"path": "vector", "metadata": {ANN_KEY: json.dumps(dataclasses.asdict(crippled))}})
    assert store.vector_index("big").nprobes == 1
    assert corpus.recall(store, "big", queries) < tuned - 0.2


def test_index_below_target_says_so(store, settings, capsys):
    Corpus().write(store, "hard", 3000)
    index = store.index_kb("hard", min_rows=1000, sample=50, rows_per_partition=250, target=1.01)
    assert not index.meets_target and index.recall < 1.01
    assert "BELOW the 1.01 target" in index.describe()
    assert cli.main(["kb"]) == 0
    out = capsys.readouterr()
    assert "vector search: IVF_HNSW_SQ index" in out.out and "BELOW" in out.out
    assert "misses passages exact search finds" in out.err


def test_index_is_topped_up_then_rebuilt_when_the_table_doubles(store):
    corpus = Corpus()
    corpus.write(store, "grow", 3000)
    built = store.index_kb("grow", min_rows=2000, sample=60, rows_per_partition=250)
    assert built.rows == 3000

    corpus.write(store, "grow", 400)  # grew 13%: topped up and re-measured, not rebuilt
    topped = store.index_kb("grow", min_rows=2000, sample=60, rows_per_partition=250)
    assert (topped.rows, topped.built_at, topped.partitions) == (3000, built.built_at, built.partitions)
    assert topped.checked_rows == 3400 and topped.meets_target
    stats = store.kb_table("grow").index_stats("vector_idx")
    assert (stats.num_indexed_rows, stats.num_unindexed_rows) == (3400, 0)

    corpus.write(store, "grow", 100)  # a small write: topped up, recall not re-measured
    small = store.index_kb("grow", min_rows=2000, sample=60, rows_per_partition=250)
    assert small.checked_rows == 3400
    assert store.kb_table("grow").index_stats("vector_idx").num_unindexed_rows == 0

    corpus.write(store, "grow", 2600)  # 6,100 >= 2 x 3,000: rebuilt with partitions for its size
    rebuilt = store.index_kb("grow", min_rows=2000, sample=60, rows_per_partition=250)
    assert (rebuilt.rows, rebuilt.partitions) == (6100, 24)
    assert corpus.recall(store, "grow", corpus.points(20)) >= 0.85


def test_ingest_keeps_full_text_search_current_without_rebuilding(settings, store, embedder, tmp_path):
    docs = write_docs(tmp_path / "docs")
    ingest([str(docs)], "kb", store, embedder, settings)
    (docs / "new.md").write_text("# Zebras\n\nZebras graze on the savanna in large herds.\n")
    ingest([str(docs)], "kb", store, embedder, settings)
    for mode in ("fts", "hybrid"):
        assert search(store, "kb", "zebras savanna herds", embedder, k=2, mode=mode)[0].document == "new.md"


class FailingEmbedder:
    """The real encoder, failing on its n-th encode call: raising (a crash while embedding) or
    returning NaN vectors that the store then refuses (a crash while writing)."""

    def __init__(self, embedder, fail_on: int, how: str = "raise"):
        self._embedder, self._fail_on, self._how, self.calls = embedder, fail_on, how, 0

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, **kw):
        self.calls += 1
        vectors = self._embedder.encode(texts, **kw)
        if self.calls == self._fail_on:
            if self._how == "raise":
                raise RuntimeError("encoder crashed")
            vectors[:] = np.nan
        return vectors


def _chunks(store, kb):
    rows = store.kb_table(kb).to_arrow().select(["document", "id", "text"]).to_pylist()
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        out.setdefault(r["document"], {})[r["id"]] = r["text"]
    return out


@pytest.mark.parametrize("how", ["raise", "nan"])
def test_a_failure_while_updating_documents_leaves_each_whole(settings, store, embedder, tmp_path, how):
    long = " ".join(f"The long guide keeps detail number {i} for the reader." for i in range(80))
    docs = write_docs(tmp_path / "docs", {"a_short.md": "# Short\n\nA short note.\n",
                                          "b_long.md": f"# Long\n\n{long}\n"})
    ingest([str(docs)], "kb", store, embedder, settings, batch_chunks=1)
    before = _chunks(store, "kb")
    assert len(before["b_long.md"]) > 2

    # both change; the long one's new version makes one chunk where the old made several, and
    # its batch (the second: one document a batch) fails while being embedded or written
    (docs / "a_short.md").write_text("# Short\n\nA short note, edited.\n")
    (docs / "b_long.md").write_text("# Long\n\nShort now.\n")
    with pytest.raises(Exception):
        ingest([str(docs)], "kb", store, FailingEmbedder(embedder, 2, how), settings, batch_chunks=1)
    after = _chunks(store, "kb")
    assert list(after["a_short.md"].values()) == ["Short\n\nA short note, edited."]  # wholly new
    assert after["b_long.md"] == before["b_long.md"]  # wholly old: every old chunk, none new

    again = ingest([str(docs)], "kb", store, embedder, settings)
    assert (again.unchanged, again.embedded_documents) == (1, 1)
    new = [d for d in read(str(docs)) if d.name == "b_long.md"][0]
    expected = chunk_document(new, embedder, settings.chunk_tokens, settings.chunk_overlap)
    assert _chunks(store, "kb")["b_long.md"] == {c.id: c.text for c in expected}  # old tail gone


def test_a_source_that_yields_no_documents_has_its_chunks_removed(settings, store, embedder, tmp_path, capsys):
    a = write_docs(tmp_path / "a")
    b = write_docs(tmp_path / "b", {"extra.md": "# Extra\n\nSomething only folder b says.\n"})
    ingest([str(a), str(b)], "kb", store, embedder, settings)
    assert {s["source"] for s in store.kb_sources("kb")} == {str(a.resolve()), str(b.resolve())}

    shutil.rmtree(b)
    b.mkdir()  # still there, but empty
    report = ingest([str(a), str(b)], "kb", store, embedder, settings)
    assert report.removed_sources == [str(b.resolve())] and report.deleted_documents == 1
    assert [s["source"] for s in store.kb_sources("kb")] == [str(a.resolve())]
    assert report.unchanged == 3

    (b / "skipped.bin").write_bytes(b"\x00")  # a source that yields only a skipped file is empty too
    (b / "back.md").write_text("# Back\n\nFolder b is back.\n")
    ingest([str(b)], "kb", store, embedder, settings)
    (b / "back.md").unlink()
    assert cli.main(["ingest", str(b), "--kb", "kb"]) == 0
    assert f"{b.resolve()} yields no documents any more" in capsys.readouterr().err
    assert [s["source"] for s in store.kb_sources("kb")] == [str(a.resolve())]


@pytest.mark.parametrize("fail_on, how", [(1, "raise"), (2, "raise"), (2, "nan")])
def test_a_failed_first_ingest_leaves_no_knowledge_base(settings, store, embedder, docs, fail_on, how):
    with pytest.raises(Exception):
        ingest([str(docs)], "fresh", store, FailingEmbedder(embedder, fail_on, how), settings, batch_chunks=1)
    assert "fresh" not in store.kb_names()
    ingest([str(docs)], "fresh", store, embedder, settings)
    assert len(_chunks(store, "fresh")) == 3


def test_new_documents_are_appended_and_changed_ones_swapped_in_batches(settings, store, embedder, tmp_path):
    docs = write_docs(tmp_path / "docs", {f"d{i}.md": f"# Doc {i}\n\nDocument {i} says {i}.\n" for i in range(6)})
    first = ingest([str(docs)], "kb", store, embedder, settings, batch_chunks=2)
    assert first.embedded_documents == 6 and len(_chunks(store, "kb")) == 6
    for i in range(3):
        (docs / f"d{i}.md").write_text(f"# Doc {i}\n\nDocument {i} changed.\n")
    second = ingest([str(docs)], "kb", store, embedder, settings, batch_chunks=2)
    assert (second.embedded_documents, second.unchanged) == (3, 3)
    chunks = _chunks(store, "kb")
    assert sum(len(c) for c in chunks.values()) == 6
    assert list(chunks["d1.md"].values()) == ["Doc 1\n\nDocument 1 changed."]
    assert list(chunks["d4.md"].values()) == ["Doc 4\n\nDocument 4 says 4."]


def test_knowledge_base_page_says_when_vector_recall_is_below_target(store):
    from tests.test_pages import render

    Corpus().write(store, "hard", 3000)
    store.index_kb("hard", min_rows=1000, sample=50, rows_per_partition=250, target=1.01)
    at = render("pages/knowledge_base.py")
    assert at.selectbox(key="kb_choice").value == "hard"
    assert any("may miss passages that exact search finds" in w.value for w in at.warning)
