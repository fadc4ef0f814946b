"""The Ray engine (`ingest --engine ray`) makes the table the local engine makes: the same ids,
texts and hashes, vectors of the same encoder, the same incremental behaviour. On a local Ray of
2 CPUs started here (no dashboard), shut down at the end of the module."""
from __future__ import annotations

import time

import numpy as np
import pytest
import ray

from core.cli import main
from core.errors import ConfigError
from core.ingest import ingest
from core.ray_ingest import RayEngine, check_shared, project_error
from tests.conftest import DOCS, free_port, write_docs
from tests.test_object_storage import s3, s3_server  # noqa: F401  (fixtures: moto's S3 on 127.0.0.1)

LONG = "\n\n".join(f"Paragraph {i}: the Brantool {i} gear turns {i * 3} times a minute when the lever is up. "
                   "It is oiled every spring and every autumn by the keeper of the mill."
                   for i in range(40))
CORPUS = {**DOCS, "brantool.md": "# Brantool\n\n## Gears\n\n" + LONG}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    yield
    ray.shutdown()


def table(store, kb):
    """A knowledge base's rows in id order."""
    return store.kb_table(kb).to_pandas().sort_values("id").reset_index(drop=True)


def assert_same_table(store, a, b):
    ta, tb = table(store, a), table(store, b)
    assert len(ta) == len(tb) > 10
    for column in ("id", "source", "document", "section", "chunk_index", "text", "content_hash"):
        assert list(ta[column]) == list(tb[column]), column
    np.testing.assert_allclose(np.stack(ta.vector), np.stack(tb.vector), atol=2e-5)


def test_ray_makes_the_local_table_and_ingests_incrementally(local_ray, settings, store, embedder, tmp_path,
                                                              capsys):
    docs = write_docs(tmp_path / "docs", CORPUS)
    local = ingest([str(docs)], "local", store, embedder, settings)
    # the CLI path, on the Ray this module started: new documents go through lance-ray's write_lance
    assert main(["ingest", str(docs), "--kb", "ray", "--engine", "ray", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{local.chunks_embedded} chunks embedded" in out and "on ray (2 workers)" in out
    assert_same_table(store, "local", "ray")
    assert {"local", "ray"} <= set(store.kb_names())  # finished: no longer marked as being created
    assert store.kb_encoder("ray") == embedder.identity

    # unchanged content: nothing embedded, nothing written, Ray not even used
    version = store.kb_table("ray").version
    again = ingest([str(docs)], "ray", store, embedder, settings, engine=RayEngine())
    assert (again.unchanged, again.chunks_embedded, again.engine) == (4, 0, "")
    assert store.kb_table("ray").version == version

    # two changed documents (many chunks, swapped in a few at a time), a deleted one and a new one
    (docs / "brantool.md").write_text("# Brantool\n\n## Gears\n\n" + LONG.replace("oiled", "greased"))
    (docs / "flask_login.md").write_text((docs / "flask_login.md").read_text().replace("365 days", "30 days"))
    (docs / "sqlite.rst").unlink()
    (docs / "new.txt").write_text("A new document about the Quillstore ledger and its weekly audit.\n")
    reports = {"local": ingest([str(docs)], "local", store, embedder, settings, batch_chunks=4),
               "ray": ingest([str(docs)], "ray", store, embedder, settings, batch_chunks=4, engine=RayEngine())}
    counts = {kb: (r.unchanged, r.embedded_documents, r.deleted_documents, r.chunks_embedded)
              for kb, r in reports.items()}
    assert counts["ray"] == counts["local"] and counts["ray"][:3] == (1, 3, 1)
    assert reports["ray"].engine == "ray (2 workers)"
    assert_same_table(store, "local", "ray")
    rows = table(store, "ray")
    brantool = rows[rows.document == "brantool.md"]
    assert len(brantool) > 4 and brantool.text.str.contains("greased").all()
    assert not rows.text.str.contains("oiled|365 days").any() and rows.text.str.contains("30 days").any()
    assert "sqlite.rst" not in set(rows.document) and "new.txt" in set(rows.document)


def test_ray_failures_are_project_errors(local_ray, settings, store, embedder, tmp_path):
    docs = write_docs(tmp_path / "docs")
    port = free_port()  # nothing listens on it
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=f"--address 127.0.0.1:{port}: no Ray cluster answers there"):
        RayEngine(address=f"127.0.0.1:{port}")
    assert time.perf_counter() - t0 < 10  # refused at once, not after Ray's minutes of retries
    with pytest.raises(ConfigError, match="--workers 3: the Ray cluster has 2 CPUs"):
        ingest([str(docs)], "kb", store, embedder, settings, engine=RayEngine(workers=3))
    assert not store.has_kb("kb")  # all or nothing for the knowledge base it was creating
    assert main(["ingest", str(docs), "--kb", "kb", "--workers", "2"]) == 2  # --workers without --engine ray
    # a node of a cluster that lacks the database's local folder (it would write fragments nobody can
    # read) refuses, and the worker's error comes back from Ray as the project's one line
    with pytest.raises(ray.exceptions.RayError) as raised:
        ray.get(ray.remote(check_shared).remote(str(tmp_path / "elsewhere" / "kb_kb.lance")))
    error = project_error(raised.value)
    assert type(error) is ConfigError and "\n" not in str(error)
    assert str(error).startswith(f"the knowledge base's folder {tmp_path}/elsewhere/kb_kb.lance is not on Ray worker ")


def test_ray_writes_a_knowledge_base_on_object_storage(local_ray, s3, embedder, tmp_path):
    """On S3 (moto's server on 127.0.0.1): the workers, started before the AWS_* variables were set,
    get them from the engine and write the table's fragments into the bucket."""
    env, settings, store, server, (client, bucket) = s3
    docs = write_docs(tmp_path / "docs", CORPUS)
    ingest([str(docs)], "local", store, embedder, settings)
    report = ingest([str(docs)], "ray", store, embedder, settings, engine=RayEngine())
    assert report.engine == "ray (2 workers)" and "ray" in store.kb_names()
    assert_same_table(store, "local", "ray")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="team/kb_ray.lance/data/")["Contents"]]
    assert keys and all(k.endswith(".lance") for k in keys)
