"""The two answer modes and their prompts.

llm_only  the question alone: what the model knows by itself
rag       the question with the retrieved passages, told to answer from them and to say
          so when they do not hold the answer
"""
from __future__ import annotations

from core.config import ModelConfig
from core.errors import ModelError, TransientModelError
from core.llm import LLM
from core.models import Answer, Passage

SYSTEM = "You are a helpful assistant for Python developers. Answer the question accurately and concisely."
SYSTEM_RAG = (
    "You are a helpful assistant for Python developers. Answer the question using only the "
    "documentation passages given. If the passages do not contain the answer, say that the "
    "documentation provided does not cover it. Be accurate and concise."
)


def messages_for(mode: str, question: str, passages: list[Passage] | tuple[Passage, ...] = ()) -> list[dict]:
    if mode == "llm_only":
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    if mode == "rag":
        context = "\n\n".join(f"[{i}] ({p.document}{' > ' + p.section if p.section else ''})\n{p.text}"
                              for i, p in enumerate(passages, 1)) or "(no passages were found)"
        return [{"role": "system", "content": SYSTEM_RAG},
                {"role": "user", "content": f"Documentation passages:\n\n{context}\n\nQuestion: {question}"}]
    raise ValueError(f"unknown mode {mode!r}")


async def answer(llm: LLM, cfg: ModelConfig, run_id: str, question_id: str, question: str, mode: str,
                 passages: list[Passage] | tuple[Passage, ...] = ()) -> Answer:
    """One mode's answer; a model failure is kept on the Answer as its error, not raised."""
    used = tuple(passages) if mode == "rag" else ()
    try:
        c = await llm.acomplete(messages_for(mode, question, used), max_tokens=cfg.max_tokens,
                         temperature=cfg.temperature)
    except ModelError as e:  # a transient one (endpoint down, 429, 5xx) stays retryable: resume asks again
        return Answer(run_id, question_id, mode, question, "", used, llm.id, error=str(e),
                      retryable=isinstance(e, TransientModelError))
    text = c.text.strip()
    return Answer(run_id, question_id, mode, question, text, used, c.model, c.latency_s, c.prompt_tokens,
                  c.completion_tokens, error="" if text else "the model returned an empty answer")
