"""Hostile inputs, made here in tmp_path: a zip bomb, a damaged member, Python that overflows the
parser, links out of a folder, a line with no spaces, random bytes, budgets; each refused or skipped
with its reason before the work is done, the rest ingested, and a refused ingest creating nothing."""
import hashlib
import io
import os
import random
import tarfile
import tracemalloc
import zipfile

import pytest

from core import sources
from core.config import load_settings
from core.errors import SourceError
from core.ingest import MAX_TOKEN_CHARS, ingest, split_tokens
from core.models import Document, Skipped
from core.sources import pypi
from core.sources.files import MAX_BYTES, member

from tests.conftest import write_docs

GOOD = "# Good\n\nThis member is ordinary prose about widgets and how to configure them.\n"


def zip_bomb(path, mb: int) -> None:
    """`mb` MB of one repeated byte, deflated as it is written: the test never holds it whole."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.md", GOOD)
        block = b"a" * (1 << 20)
        with zf.open("bomb.md", "w", force_zip64=True) as f:
            for _ in range(mb):
                f.write(block)
        zf.writestr("dense.md", b"b" * 5_000_000)  # under the size cap, but 1,000:1


def by_name(items):
    return {i.name: i for i in items}


def test_a_zip_bomb_is_refused_while_it_streams_and_the_rest_is_ingested(tmp_path):
    bomb = tmp_path / "bomb.zip"
    zip_bomb(bomb, 400)
    assert bomb.stat().st_size < 1_000_000  # 400 MB of one byte deflates to about 400 KB
    tracemalloc.start()
    try:
        items = by_name(sources.read(str(bomb)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_BYTES  # never the 300 MB member: at most the cap and one read chunk
    assert isinstance(items["good.md"], Document)
    assert items["bomb.md"].reason.startswith(f"larger than {MAX_BYTES // 1_000_000} MB uncompressed")
    assert "times its compressed size" in items["dense.md"].reason and "zip bomb" in items["dense.md"].reason


def test_a_member_whose_crc_does_not_match_is_skipped_with_its_reason(tmp_path):
    path = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("good.md", GOOD)
        zf.writestr("bad.md", "# Bad\n\nThe bytes of this member are changed after writing.\n")
    data = path.read_bytes().replace(b"changed after", b"CHANGED after")
    path.write_bytes(data)
    items = by_name(sources.read(str(path)))
    assert isinstance(items["good.md"], Document)
    assert isinstance(items["bad.md"], Skipped) and items["bad.md"].reason.startswith("a damaged archive member")
    assert "CRC" in items["bad.md"].reason


def sdist(tmp_path, files: dict[str, str]):
    path = tmp_path / "deep-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"deep-1.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_python_that_overflows_the_parser_is_skipped_and_the_rest_is_read(tmp_path):
    path = sdist(tmp_path, {
        "deep/__init__.py": '"""Deep: a package with hostile modules."""\n',
        "deep/chain.py": '"""A long chain."""\nx = ' + "+".join(["1"] * 200_000) + "\n",  # RecursionError
        "deep/unary.py": '"""Unary minus."""\nx = ' + "-" * 200_000 + "1\n",  # MemoryError in the parser
    })
    items = by_name(pypi.read_sdist(path, "pypi:deep", "deep-1.0"))
    assert isinstance(items["deep-1.0/deep/__init__.py"], Document)
    assert items["deep-1.0/deep/chain.py"].reason == "nested too deeply to parse"
    assert items["deep-1.0/deep/unary.py"].reason == "too large to parse in memory"


def test_memory_exhausted_reading_a_member_is_a_skip_not_the_end_of_the_ingest():
    def exhausted():
        raise MemoryError
    item = member("src", "huge.md", exhausted)
    assert item == Skipped("src", "huge.md", "too large to parse in memory")


def test_a_tar_member_over_the_cap_is_refused_by_its_header(tmp_path):
    path = tmp_path / "big-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("big-1.0/docs/huge.rst")
        info.size = MAX_BYTES + 1
        tf.addfile(info, io.BytesIO(b" " * info.size))
        small = b"Small\n=====\n\nA small page.\n"
        info = tarfile.TarInfo("big-1.0/docs/small.rst")
        info.size = len(small)
        tf.addfile(info, io.BytesIO(small))
    items = by_name(pypi.read_sdist(path, "pypi:big", "big-1.0"))
    assert items["big-1.0/docs/huge.rst"].reason.startswith("larger than 20 MB")
    assert isinstance(items["big-1.0/docs/small.rst"], Document)


def test_no_file_is_read_through_a_link_leaving_the_folder(tmp_path, settings, store, embedder):
    outside = write_docs(tmp_path / "outside", {"secret.md": "# Secret\n\nThe vault code is 7741.\n"})
    docs = write_docs(tmp_path / "docs", {"inside.md": "# Inside\n\nOrdinary documentation.\n"})
    (docs / "sub").mkdir()
    (docs / "sub" / "kept.md").write_text("# Kept\n\nA file in a subfolder.\n")
    os.symlink(outside / "secret.md", docs / "link.md")
    os.symlink(outside, docs / "linked_dir")
    os.symlink(docs / "sub" / "kept.md", docs / "inner_link.md")  # a link that stays inside is read
    report = ingest([str(docs)], "kb", store, embedder, settings)
    skipped = {s.name: s.reason for s in report.skipped}
    assert skipped == {"link.md": "a link that leads outside the folder; not read",
                       "linked_dir": "a link that leads outside the folder; not read"}
    texts = store.kb_table("kb").to_arrow()["text"].to_pylist()
    assert not any("7741" in t for t in texts)
    assert {r["document"] for r in store.kb_table("kb").to_arrow().select(["document"]).to_pylist()} == {
        "inside.md", "sub/kept.md", "inner_link.md"}


def test_a_line_without_spaces_makes_chunks_bounded_in_characters(embedder, settings, store, tmp_path):
    line = "x" * 2_000_000
    pieces = split_tokens(line, embedder.tokenizer, 180, 40)
    assert max(map(len, pieces)) <= 180 * MAX_TOKEN_CHARS and "".join(pieces).count("x") >= len(line)
    docs = write_docs(tmp_path / "docs", {"wide.md": "# Wide\n\n" + "y" * 60_000 + "\n\nThe end.\n"})
    ingest([str(docs)], "kb", store, embedder, settings)
    texts = store.kb_table("kb").to_arrow()["text"].to_pylist()
    assert len(texts) > 10 and max(map(len, texts)) <= settings.chunk_tokens * MAX_TOKEN_CHARS


def test_random_bytes_named_md_are_refused_as_not_text(tmp_path):
    rng = random.Random(0)
    folder = tmp_path / "docs"
    folder.mkdir()
    undefined = {0, 0x81, 0x8D, 0x8F, 0x90, 0x9D}  # NUL or not cp1252: refused by the older checks
    (folder / "noise.md").write_bytes(bytes(b for b in rng.randbytes(200_000) if b not in undefined))
    (folder / "raw.md").write_bytes(rng.randbytes(10_000))
    (folder / "ok.md").write_text("# Привет\n\nДокументация на русском. 文档。 नमस्ते दुनिया.\n", encoding="utf-8")
    items = by_name(sources.read(str(folder)))
    assert items["noise.md"].reason.startswith("does not look like text")
    assert items["raw.md"].reason == "binary file (NUL bytes), not text"
    assert isinstance(items["ok.md"], Document)


def test_a_document_over_the_character_budget_is_skipped_naming_the_setting(tmp_path, monkeypatch, store, embedder,
                                                                            docs):
    monkeypatch.setenv("RAGEVAL_MAX_DOCUMENT_CHARS", "2000")
    settings = load_settings()
    (docs / "long.md").write_text("# Long\n\n" + "Words of a long page. " * 200 + "\n")
    report = ingest([str(docs)], "kb", store, embedder, settings)
    [(name, reason)] = [(s.name, s.reason) for s in report.skipped]
    assert name == "long.md"
    assert reason == "4,399 characters, more than RAGEVAL_MAX_DOCUMENT_CHARS=2,000; raise it to ingest this document"
    assert report.documents == 3


def test_an_ingest_over_the_chunk_budget_is_refused_before_embedding_and_creates_nothing(tmp_path, monkeypatch,
                                                                                       store, embedder, docs):
    monkeypatch.setenv("RAGEVAL_MAX_INGEST_CHUNKS", "2")
    settings = load_settings()

    class Counting:
        def __init__(self, inner):
            self.inner, self.encoded = inner, 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode(self, texts):
            self.encoded += len(texts)
            return self.inner.encode(texts)

    counting = Counting(embedder)
    with pytest.raises(SourceError, match=r"this ingest would embed \d+ chunks of 3 documents, more than "
                                          r"RAGEVAL_MAX_INGEST_CHUNKS=2; raise it"):
        ingest([str(docs)], "fresh", store, counting, settings)
    assert counting.encoded == 0 and "fresh" not in store.kb_names()


def test_a_refused_archive_or_a_bad_spec_creates_no_knowledge_base(tmp_path, settings, store, embedder, docs):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.md", GOOD)
    for spec in (str(evil), str(tmp_path / "missing.md")):
        with pytest.raises(SourceError):
            ingest([str(docs), spec], "fresh", store, embedder, settings)
        assert "fresh" not in store.kb_names()


def test_a_cached_sdist_is_checked_against_its_sha256_each_time_it_is_reused(tmp_path):
    from tests.test_package_sources import FakePyPI, offline, widget_sdist

    data = widget_sdist()
    fake = FakePyPI({("flask-widget", "1.2.0"): data})
    first = [d.name for d in pypi.documents("pypi:flask-widget==1.2.0", tmp_path, fake)]
    cached = tmp_path / "flask-widget" / "1.2.0" / "flask-widget-1.2.0.tar.gz"
    assert (cached.parent / (cached.name + ".sha256")).read_text() == hashlib.sha256(data).hexdigest()

    cached.write_bytes(widget_sdist(**{"docs/evil.rst": "Evil\n====\n\nPlanted in the cache.\n"}))
    with pytest.raises(SourceError, match="could not be reached .* no copy is cached"):
        pypi.documents("pypi:flask-widget==1.2.0", tmp_path, offline)  # the changed copy is not used
    assert not cached.exists()  # and is removed
    calls = len(fake.calls)
    assert [d.name for d in pypi.documents("pypi:flask-widget==1.2.0", tmp_path, fake)] == first
    assert len(fake.calls) == calls + 2  # downloaded and checked again
    assert [d.name for d in pypi.documents("pypi:flask-widget==1.2.0", tmp_path, offline)] == first


def test_an_ingest_killed_while_creating_a_knowledge_base_leaves_none_anyone_sees(tmp_path, settings, store, embedder,
                                                                                  docs, monkeypatch):
    import signal
    import subprocess
    import sys
    import time

    from core.config import PROJECT_ROOT

    big = tmp_path / "big"
    big.mkdir()
    for d in range(30):  # about 1,500 chunks: the first batch is written long before the last is embedded
        paragraphs = [f"Paragraph {p} of guide {d} says something particular about topic {p * d}. " * 12
                      for p in range(50)]
        (big / f"guide{d}.md").write_text(f"# Guide {d}\n\n" + "\n\n".join(paragraphs))
    proc = subprocess.Popen([sys.executable, "-m", "core", "ingest", str(big), "--kb", "fresh"], cwd=PROJECT_ROOT,
                            env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    table = settings.home / "lancedb" / "kb_fresh.lance"
    try:
        deadline = time.time() + 300
        while not (table / "_versions").is_dir() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert store.has_kb("fresh") and store.kb_partial("fresh")  # the half-built table is there...
    assert "fresh" not in store.kb_names()  # ...but nothing lists it

    from core import jobs

    with pytest.raises(jobs.JobBusy, match="ingest fresh is running"):  # until its heartbeat is stale
        ingest([str(docs)], "fresh", store, embedder, settings)
    monkeypatch.setattr(jobs, "STALE_S", 0.5)
    time.sleep(0.6)
    report = ingest([str(docs)], "fresh", store, embedder, settings)  # the next ingest starts it again
    assert "fresh" in store.kb_names() and not store.kb_partial("fresh")
    assert {s["source"] for s in store.kb_sources("fresh")} == {str(docs.resolve())}
    assert report.documents == 3
