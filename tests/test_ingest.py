import numpy as np

from core.ingest import chunk_document, ingest
from core.models import Document, Section
from core.retrieval import search


def test_chunks_fit_the_encoder_window_and_overlap(embedder):
    sentences = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(120))
    doc = Document("src", "long.md", (Section(("Guide", "Long part"), sentences),))
    chunks = chunk_document(doc, embedder, max_tokens=100, overlap=20)
    assert len(chunks) > 5
    for c in chunks:
        assert c.text.startswith("Guide > Long part\n\n")
        assert embedder.count_tokens(c.text) <= 100
        assert c.section == "Guide > Long part"
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    # consecutive chunks share text (overlap) and no sentence of the document is lost
    bodies = [c.text.split("\n\n", 1)[1] for c in chunks]
    assert bodies[0][-30:].split()[-1] in bodies[1]
    for i in (0, 59, 119):
        assert any(f"Sentence number {i} " in b for b in bodies)


def test_incremental_ingest(settings, store, embedder, docs):
    first = ingest([str(docs)], "kb1", store, embedder, settings)
    assert (first.documents, first.embedded_documents, first.unchanged) == (3, 3, 0)
    rows = store.kb_table("kb1").to_pandas()
    assert len(rows) == first.chunks_embedded > 3
    assert set(rows.columns) >= {"source", "document", "section", "chunk_index", "content_hash", "ingested_at",
                                 "vector", "text"}
    assert set(rows.document) == {"flask_login.md", "sqlite.rst", "gunicorn.txt"}
    assert "Flask-Login > Remember me" in set(rows.section)

    before = embedder.encoded
    again = ingest([str(docs)], "kb1", store, embedder, settings)
    assert (again.unchanged, again.chunks_embedded, embedder.encoded - before) == (3, 0, 0)

    (docs / "gunicorn.txt").write_text("Gunicorn now says something else entirely about workers.\n")
    (docs / "sqlite.rst").unlink()
    before = embedder.encoded
    changed = ingest([str(docs)], "kb1", store, embedder, settings)
    assert (changed.unchanged, changed.embedded_documents, changed.deleted_documents) == (1, 1, 1)
    assert embedder.encoded - before == changed.chunks_embedded == 1
    rows = store.kb_table("kb1").to_pandas()
    assert set(rows.document) == {"flask_login.md", "gunicorn.txt"}
    assert list(rows[rows.document == "gunicorn.txt"].text) == [
        "gunicorn\n\nGunicorn now says something else entirely about workers."]  # title as section
    assert store.kb_sources("kb1")[0]["documents"] == 2


def test_search_modes_find_the_right_passage(settings, store, embedder, docs):
    ingest([str(docs)], "kb", store, embedder, settings)
    for mode in ("vector", "fts", "hybrid"):
        hits = search(store, "kb", "How long does the remember me cookie last?", embedder, k=3, mode=mode)
        assert hits, mode
        top = hits[0]
        assert top.document == "flask_login.md" and top.section == "Flask-Login > Remember me", mode
        assert "365 days" in top.text
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len({h.id for h in hits}) == len(hits)
    assert search(store, "kb", "   ", embedder) == []


def test_a_few_texts_are_encoded_once_and_match_their_vectors_in_a_batch(embedder):
    from core.embeddings import FEW_TEXTS

    questions = ["How long does the remember me cookie last in this test?", "What does a test blueprint register?"]
    before = embedder.encoded
    first = embedder.encode(questions)  # as retrieval, then answer relevancy, encode a run's question
    again = embedder.encode(questions[::-1] + questions)
    assert embedder.encoded - before == 2
    batch = embedder.encode(questions + [f"filler text number {i}" for i in range(FEW_TEXTS)])  # all threads
    assert embedder.encoded - before == 2 + len(questions) + FEW_TEXTS
    assert np.allclose(again[1], first[0], atol=1e-6) and np.allclose(again[2], first[0], atol=1e-6)
    assert np.allclose(batch[:2], first, atol=1e-4)
