"""The OpenAI-compatible backend against a real llama.cpp server on 127.0.0.1."""
import asyncio
import json

import pytest

from core.config import ModelConfig
from core.errors import ModelError
from core.evaluate import Scorer
from core.llm import get_llm
from core.llm.embedded import default_gguf
from core.models import Answer, Passage
from tests.conftest import free_port, local_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    args = ["-m", "llama_cpp.server", "--model", default_gguf(), "--host", "127.0.0.1", "--port", "{port}",
            "--n_ctx", "4096", "--n_threads", "2", "--model_alias", "smollm2"]
    with local_server(args, tmp_path_factory.mktemp("server") / "llama_server.log") as port:
        yield f"http://127.0.0.1:{port}/v1"


def test_chat_and_structured_output_over_http(server):
    cfg = ModelConfig(backend="openai", model="smollm2", base_url=server)
    llm = get_llm(cfg)
    c = llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=16)
    assert c.text.strip() and c.prompt_tokens > 0 and 0 < c.completion_tokens <= 16
    assert c.model == f"openai:smollm2@{server}"

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "year": {"type": "integer"}},
              "required": ["city", "year"]}
    c = llm.complete([{"role": "user", "content": "Where and when was the Eiffel tower built? Answer in JSON."}],
                     schema=schema, max_tokens=64)
    data = json.loads(c.text)
    assert isinstance(data["city"], str) and isinstance(data["year"], int)


def test_ragas_metrics_through_the_endpoint(server, embedder, tmp_path):
    cfg = ModelConfig(backend="openai", model="smollm2", base_url=server, max_tokens=512)
    scorer = Scorer(get_llm(cfg), cfg, embedder, cache=None, strictness=1)
    passages = (Passage("p1", "The remember me cookie lasts 365 days.", "s", "d", "", 1.0),)
    answer = Answer("r", "q1", "rag", "How long does the remember me cookie last?",
                    "The remember me cookie lasts 365 days.", passages)
    for metric in ("faithfulness", "answer_relevancy"):
        s = asyncio.run(scorer.score(answer, passages, metric))
        assert s.judge == f"openai:smollm2@{server}"
        assert (s.value is not None and 0 <= s.value <= 1) or s.reason, s
        assert s.details, "the judge's intermediate outputs are kept"


def test_an_unreachable_endpoint_is_a_clear_error():
    cfg = ModelConfig(backend="openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    with pytest.raises(ModelError, match="cannot reach http://127.0.0.1:"):
        get_llm(cfg).complete([{"role": "user", "content": "hi"}], max_tokens=4)


def test_concurrent_calls_on_the_async_client(server):
    """Several calls in flight at once on one async client (the server queues what it cannot
    serve in parallel): each gets its own, well-formed answer."""
    llm = get_llm(ModelConfig(backend="openai", model="smollm2", base_url=server))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    async def four_at_once():
        try:
            return await asyncio.gather(
                *(llm.acomplete([{"role": "user", "content": f"Say the number {n}."}], max_tokens=12) for n in (1, 2)),
                *(llm.acomplete([{"role": "user", "content": f"Give {n} as JSON."}], schema=schema, max_tokens=24)
                  for n in (3, 4)))
        finally:
            await llm.aclose()

    before = llm.calls
    out = asyncio.run(four_at_once())
    assert llm.calls == before + 4
    assert all(c.text.strip() and c.completion_tokens > 0 for c in out)
    assert all(isinstance(json.loads(c.text)["n"], int) for c in out[2:])
