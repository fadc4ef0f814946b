"""The embedded model runs the shipped Q4_1 GGUF as a Q8_0 copy made once under RAGEVAL_HOME:
the copy is the same model to within rounding, its identity names it by content hash, and a
failed copy leaves nothing behind and says which setting to fix."""
import numpy as np
import pytest
from llama_cpp import Llama

from core.config import ModelConfig
from core.errors import ModelError
from core.judges.likelihood import evidence_messages
from core.llm import identity
from core.llm.embedded import CONTEXT_OPTIONS, _chat_prompt, _decode_logprobs, default_gguf, gguf_digest, runtime_gguf

EVIDENCE = ["The remember me cookie lasts 365 days by default."]
QUESTION = "How long does the remember-me cookie last?"
ANSWER = "By default the remember-me cookie lasts 365 days, and REMEMBER_COOKIE_DURATION changes it."


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGEVAL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_shipped_q4_1_runs_as_a_q8_0_copy_made_once_under_the_home(home):
    copy = runtime_gguf(default_gguf())
    assert copy.startswith(str(home / "cache" / "gguf")) and copy.endswith(".gguf") and ".Q8_0-" in copy
    made = (home / "cache" / "gguf" / copy.rsplit("/", 1)[1]).stat().st_mtime_ns
    assert runtime_gguf(default_gguf()) == copy
    assert (home / "cache" / "gguf" / copy.rsplit("/", 1)[1]).stat().st_mtime_ns == made  # reused, not rewritten
    assert sorted(p.name for p in (home / "cache" / "gguf").iterdir()) == [copy.rsplit("/", 1)[1]]  # no temp left
    assert runtime_gguf(copy) == copy  # a Q8_0 file runs as it is
    ident = identity(ModelConfig())
    assert ident["sha256"] == gguf_digest(default_gguf()) != ident["runs_sha256"] == gguf_digest(copy)
    assert ident["flash_attn"] is CONTEXT_OPTIONS["flash_attn"]


def test_the_copy_is_the_same_model_to_within_rounding(home):
    def logprobs(path):
        llama = Llama(model_path=path, n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False, **CONTEXT_OPTIONS)
        try:
            prompt = _chat_prompt(llama, evidence_messages(QUESTION, EVIDENCE))
            return _decode_logprobs(llama, prompt + llama.tokenize(ANSWER.encode(), add_bos=False), len(prompt))[0]
        finally:
            llama.close()

    shipped, copy = logprobs(default_gguf()), logprobs(runtime_gguf(default_gguf()))
    assert shipped.shape == copy.shape and shipped.size > 10
    assert np.abs(shipped - copy).mean() < 0.15  # nats per token; a Q4_0 requantization moves them ~0.5
    assert np.corrcoef(shipped, copy)[0, 1] > 0.995


def test_a_copy_that_cannot_be_written_names_the_setting_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("RAGEVAL_HOME", str(tmp_path / "file" / "home"))
    with pytest.raises(ModelError, match="RAGEVAL_HOME"):
        runtime_gguf(default_gguf())
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_two_answers_judged_at_once_against_the_same_evidence_evaluate_it_once(home):
    from concurrent.futures import ThreadPoolExecutor

    from core.judges.likelihood import question_messages
    from core.llm.embedded import EmbeddedLLM

    llm = EmbeddedLLM(threads=1)
    evidence = [f"Passage {i}: the remember me cookie of this test lasts {300 + i} days." for i in range(6)]
    with_evidence, without = evidence_messages(QUESTION, evidence), question_messages(QUESTION)
    prompts = [len(_chat_prompt(llm._llama, m)) for m in (with_evidence, without)]

    def judge(answer):  # as the likelihood judge does: the pass with evidence, then the one without
        return [llm.continuation_logprobs(m, answer) for m in (with_evidence, without)]

    before = llm.decoded
    with ThreadPoolExecutor(2) as pool:  # as a run judges both modes' answers at once
        passes = [p for both in pool.map(judge, [ANSWER, "It lasts one year unless the setting changes it."])
                  for p in both]
    assert all(len(p.logprobs) == len(p.tokens) > 5 for p in passes)
    # each prompt once (the second answer waits for the first's context), then each answer after each
    assert llm.decoded - before <= sum(prompts) + sum(len(p.tokens) for p in passes) + 4
