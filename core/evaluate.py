"""RAGAS metrics per answer: isolated, cached by judge, with their intermediate outputs kept.

RAGAS's own metrics (`ragas.metrics.collections`) do the judging; this module adapts our
LLM and encoder to RAGAS's interfaces, keeps what the judge said (statements and
verdicts, generated questions) for drill-down, and turns every failure into an unscored
Score with its reason. RAGAS's own cache keys on the prompt only, not on the judge, so
the cache here is keyed by judge model and temperature as well.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from functools import lru_cache, partial
from pathlib import Path

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # else every judge call posts telemetry

import diskcache  # noqa: E402
import ragas  # noqa: E402
import numpy as np  # noqa: E402
from pydantic import BaseModel, ValidationError  # noqa: E402
from ragas.embeddings.base import BaseRagasEmbedding  # noqa: E402
from ragas.llms.base import InstructorBaseRagasLLM  # noqa: E402
from ragas.prompt.metrics.base_prompt import BasePrompt  # noqa: E402
from ragas.metrics.collections import (  # noqa: E402
    AnswerCorrectness, AnswerRelevancy, ContextPrecision, ContextRecall, ContextRelevance, Faithfulness)

from core.config import ModelConfig  # noqa: E402
from core.embeddings import Embedder  # noqa: E402
from core.errors import JudgeOutputError, ModelError, TransientModelError  # noqa: E402
from core.llm import LLM  # noqa: E402
from core.models import (  # noqa: E402
    METRICS, REFERENCE_METRICS, RETRIEVAL_METRICS, Answer, Passage, Score, TokenLogprobs)

JUDGE_MAX_TOKENS = 1024
MAX_LIST_ITEMS = 12  # bounds what a small constrained model can ramble into one JSON list
MAX_STRING_CHARS = 400
RETRY_TEMPERATURE = 0.3
SCORE_CACHE_FORMAT = 1  # raise when what a cached score holds, or how it is computed, changes
_FLAG = re.compile(r"0/1|\b1 if\b.*\b0 (if|otherwise)\b|\b0 if\b.*\b1 if\b")
_RATING = re.compile(r"\(0, 1, or 2\)")  # context relevance's rating: RAGAS retries anything else
NO_REFERENCE = "the question has no reference answer"
NOT_RETRIEVAL = "a property of the retrieved passages, scored once per question on the LLM + RAG item"
NO_PASSAGES = "no passages were retrieved for this question, so there is no evidence to judge against"


class JudgeCache:
    """Judge responses on disk, keyed by judge identity, temperature, prompt and schema."""

    def __init__(self, folder: Path):
        self._cache = diskcache.Cache(str(folder))

    @staticmethod
    def key(judge_id: str, temperature: float, prompt: str, schema: dict, occurrence: int) -> str:
        raw = json.dumps([judge_id, temperature, prompt, schema, occurrence], sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, key: str) -> str | bytes | None:
        return self._cache.get(key)

    def set(self, key: str, value: str | bytes) -> None:
        self._cache.set(key, value)


def bounded_schema(schema: dict) -> dict:
    """The response model's JSON schema, tightened for grammar-constrained decoding:
    lists and strings get a length cap, so a small model cannot ramble until it runs out
    of tokens, and 0/1 flags (verdict, noncommittal) may only be 0 or 1 -- RAGAS reads
    any non-zero as true, so a "365" would silently flip a score; a 0-2 rating only 0, 1 or 2."""
    def walk(node):
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "array":
                node.setdefault("maxItems", MAX_LIST_ITEMS)
            elif kind == "string":
                node.setdefault("maxLength", MAX_STRING_CHARS)
            elif kind == "integer" and _FLAG.search(node.get("description", "")):
                node["enum"] = [0, 1]
            elif kind == "integer" and _RATING.search(node.get("description", "")):
                node["enum"] = [0, 1, 2]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    schema = json.loads(json.dumps(schema))
    walk(schema)
    return schema


@lru_cache(maxsize=64)
def _schema_of(response_model: type[BaseModel]) -> str:
    return json.dumps(bounded_schema(response_model.model_json_schema()))


_RENDERED: dict[tuple, tuple] = {}  # prompt class, instruction, language, examples -> (examples, head, tail)


def _rendered_once(metric):
    """`metric` with its prompts' fixed part rendered once per process. RAGAS renders a prompt's
    instruction, output schema (a pydantic JSON-schema generation) and examples anew for every
    input, although only the input changes: a tenth of the engine's time per call against a fast
    server. The text stays RAGAS's own, to the character (tests/test_evaluate.py)."""
    for prompt in vars(metric).values():
        if isinstance(prompt, BasePrompt) and type(prompt).to_string is BasePrompt.to_string:
            prompt.to_string = partial(_to_string, prompt)
    return metric


def _to_string(prompt: BasePrompt, data) -> str:
    """BasePrompt.to_string: the fixed text around the input's JSON, which comes last but for its tail."""
    key = (type(prompt), prompt.instruction, prompt.language, id(prompt.examples))
    found = _RENDERED.get(key)
    data_json = data.model_dump_json(indent=4, exclude_none=True)
    if found is None or found[0] is not prompt.examples:
        text = BasePrompt.to_string(prompt, data)
        at = text.rindex(data_json)
        _RENDERED[key] = (prompt.examples, text[:at], text[at + len(data_json):])
        return text
    return found[1] + data_json + found[2]


class RagasJudge(InstructorBaseRagasLLM):
    """Our LLM as RAGAS's structured-output LLM. One object per scored answer, so `log`
    holds exactly what the judge said about that answer. `limit` bounds the model calls in
    flight across every judge sharing it (a run's RAGEVAL_CONCURRENCY)."""

    def __init__(self, llm: LLM, cfg: ModelConfig, cache: JudgeCache | None, retries: int = 1,
                 limit: asyncio.Semaphore | None = None):
        self.llm, self.cfg, self.cache, self.retries = llm, cfg, cache, retries
        self.limit = limit or contextlib.nullcontext()
        self.log: list[tuple[str, dict]] = []  # (response model name, parsed output)
        self.failures: list[Exception] = []  # what was raised, for metrics (context relevance) that swallow it
        self.model_seconds = 0.0
        self._seen: dict[str, int] = {}
        self._said: dict[str, str] = {}  # at temperature 0: what each prompt got, so a repeat is not asked again

    def generate(self, prompt: str, response_model: type[BaseModel]) -> BaseModel:
        """RAGAS's synchronous path; scoring goes through `ascore`, which calls `agenerate`."""
        return asyncio.run(self.agenerate(prompt, response_model))

    async def agenerate(self, prompt: str, response_model: type[BaseModel]) -> BaseModel:
        schema = json.loads(_schema_of(response_model))
        # At temperature 0 a repeated prompt gets the same answer, so it may share a cache
        # entry; above 0 each repeat is its own sample and gets its own entry.
        base = JudgeCache.key(self.llm.id, self.cfg.temperature, prompt, schema, 0)
        occurrence = self._seen.get(base, 0) if self.cfg.temperature > 0 else 0
        self._seen[base] = self._seen.get(base, 0) + 1
        key = JudgeCache.key(self.llm.id, self.cfg.temperature, prompt, schema, occurrence)
        # RAGAS asks relevancy's `strictness` questions one prompt at a time; at temperature 0
        # they are one prompt repeated, so one model call answers them all, cache or not
        cached = self._said.get(key) or (self.cache.get(key) if self.cache else None)
        if cached is not None:
            parsed = response_model.model_validate_json(cached)
        else:
            try:
                parsed, text = await self._ask(prompt, response_model, schema)
            except (ModelError, JudgeOutputError) as e:
                self.failures.append(e)
                raise
            if self.cache:
                self.cache.set(key, text)
            if self.cfg.temperature == 0:
                self._said[key] = text
        self.log.append((response_model.__name__, parsed.model_dump()))
        return parsed

    async def _ask(self, prompt, response_model, schema):
        problem = ""
        for attempt in range(self.retries + 1):
            # a retry at temperature 0 would repeat the same output; sample a little instead
            temperature = self.cfg.temperature if attempt == 0 else max(self.cfg.temperature, RETRY_TEMPERATURE)
            async with self.limit:
                c = await self.llm.acomplete([{"role": "user", "content": prompt}], schema=schema,
                                             max_tokens=max(self.cfg.max_tokens, JUDGE_MAX_TOKENS),
                                             temperature=temperature)
            self.model_seconds += c.latency_s
            try:
                return response_model.model_validate_json(c.text), c.text
            except ValidationError as e:
                cut = c.completion_tokens >= max(self.cfg.max_tokens, JUDGE_MAX_TOKENS)
                problem = ("output was cut off at the token limit" if cut
                           else f"{e.error_count()} validation error(s), first: {e.errors()[0]['msg']}")
        raise JudgeOutputError(f"the judge's output did not parse as {response_model.__name__}: {problem}")


class CachedLikelihood:
    """The judge model's likelihood passes through the judge cache: they are deterministic, so a
    re-score of unchanged answers against unchanged evidence runs no model."""

    def __init__(self, llm: LLM, cache: JudgeCache | None):
        self.llm, self.cache, self.id = llm, cache, llm.id

    def continuation_logprobs(self, messages, continuation: str) -> TokenLogprobs:
        key = JudgeCache.key(self.llm.id, 0.0, json.dumps(messages) + "\n" + continuation, {"logprobs": 1}, 0)
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            return _logprobs_from_json(cached, latency_s=0.0)
        out = self.llm.continuation_logprobs(messages, continuation)
        if self.cache:
            self.cache.set(key, json.dumps(dataclasses.asdict(out)))
        return out


def _logprobs_from_json(text: str, **override) -> TokenLogprobs:
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()}
    return TokenLogprobs(**{**data, **override})


class RagasEmbeddings(BaseRagasEmbedding):
    """Our process-wide encoder as RAGAS's embeddings, so no second copy is loaded. Vectors are
    kept in the judge cache by encoder and text, so a re-score of unchanged answers encodes nothing."""

    def __init__(self, embedder: Embedder, cache: JudgeCache | None = None):
        super().__init__()
        self.embedder, self.cache = embedder, cache

    def _key(self, text: str) -> str:
        return JudgeCache.key(json.dumps(self.embedder.identity, sort_keys=True), 0.0, text, {"embedding": 1}, 0)

    def _cached(self, texts: list[str]) -> list[bytes | None]:
        return [self.cache.get(self._key(t)) for t in texts] if self.cache else [None] * len(texts)

    def _encode(self, texts: list[str], found: list[bytes | None]) -> list[list[float]]:
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            for i, v in zip(missing, self.embedder.encode([texts[i] for i in missing])):
                found[i] = v.astype(np.float32).tobytes()
                if self.cache:
                    self.cache.set(self._key(texts[i]), found[i])
        return [np.frombuffer(v, dtype=np.float32).tolist() for v in found]

    def embed_text(self, text: str, **kwargs) -> list[float]:
        return self.embed_texts([text])[0]

    def embed_texts(self, texts: list[str], **kwargs) -> list[list[float]]:
        return self._encode(list(texts), self._cached(list(texts)))

    async def aembed_text(self, text: str, **kwargs) -> list[float]:
        return (await self.aembed_texts([text]))[0]

    async def aembed_texts(self, texts: list[str], **kwargs) -> list[list[float]]:
        texts = list(texts)
        found = self._cached(texts)
        if all(v is not None for v in found):  # a cache hit needs no thread
            return self._encode(texts, found)
        return await asyncio.to_thread(self._encode, texts, found)


class Scorer:
    """Scores answers with the configured judge; one per run."""

    def __init__(self, judge: LLM, cfg: ModelConfig, embedder: Embedder, cache: JudgeCache | None,
                 strictness: int = 3, prompts: str = "ragas", faithfulness: str = "ragas", held_out: bool = False,
                 limit: asyncio.Semaphore | None = None):
        self.judge, self.cfg, self.cache, self.strictness = judge, cfg, cache, strictness
        self.limit = limit  # the model calls in flight at once, shared with the run's other scorers
        self.prompts = prompts  # "ragas" (stock) or "small" (core/judge_prompts.py)
        self.faithfulness = faithfulness  # "ragas" (LLM prompts) or "likelihood" (core/judges/likelihood.py)
        # calibration only: score a calibration item with the likelihood rule fitted without it
        self.held_out = held_out
        self.embeddings = RagasEmbeddings(embedder, cache)

    def judge_name(self, metric: str) -> str:
        """Which judge gives `metric`'s scores: the model, and for likelihood faithfulness the rule."""
        if metric == "faithfulness" and self.faithfulness == "likelihood":
            from core.judges.likelihood import rule_version

            return f"{self.judge.id} likelihood:v{rule_version()}"
        return self.judge.id

    def _score_key(self, answer: Answer, evidence, metric: str, reference: str) -> str | None:
        """What decides a score, as a cache key: the judge and its settings, the metric's inputs (the
        passages, the reference where the metric reads them) and (relevancy, correctness) the encoder.
        None where a score must be computed every time (calibration's held-out rules)."""
        if self.cache is None or self.held_out:
            return None
        passages = metric == "faithfulness" or metric in RETRIEVAL_METRICS
        inputs = [SCORE_CACHE_FORMAT, ragas.__version__, metric, self.prompts, self.strictness, answer.question,
                  "" if metric in RETRIEVAL_METRICS else answer.text,
                  [(p.id, p.text) for p in evidence] if passages else [],
                  self.embeddings.embedder.identity if metric in ("answer_relevancy", "answer_correctness") else {}]
        if metric in REFERENCE_METRICS:
            inputs.append(reference)
        return JudgeCache.key(self.judge_name(metric), self.cfg.temperature, json.dumps(inputs), {"score": 1}, 0)

    async def score(self, answer: Answer, evidence: list[Passage] | tuple[Passage, ...],
                    metric: str, reference: str = "") -> Score:
        """One metric of one answer (`reference`: the question's reference answer, for the metrics
        that need one); never raises for a judging failure. A value once given is kept in the judge
        cache, so a re-score of what did not change runs neither model nor RAGAS."""
        # the passages' metrics do not read the answer; what does not apply is never looked up (nor kept)
        judged = answer.text or metric in RETRIEVAL_METRICS
        key = self._score_key(answer, evidence, metric, reference) \
            if judged and not not_applicable(metric, answer.mode, reference) else None
        hit = self.cache.get(key) if key else None
        if hit is not None:
            value, details = json.loads(hit)
            return Score(answer.run_id, answer.question_id, answer.mode, metric, value, "", details,
                         self.judge_name(metric), 0.0)
        s = await self._score(answer, evidence, metric, reference)
        if key and s.value is not None:
            self.cache.set(key, json.dumps([s.value, s.details]))
        return s

    async def _score(self, answer: Answer, evidence, metric: str, reference: str) -> Score:
        judge = RagasJudge(self.judge, self.cfg, self.cache, limit=self.limit)
        value, reason, details, retryable = None, "", {}, False
        try:
            if metric not in METRICS:
                reason = f"unknown metric '{metric}'"
            elif not_applicable(metric, answer.mode, reference):  # final: nothing a retry could change
                reason = not_applicable(metric, answer.mode, reference)
            elif metric in RETRIEVAL_METRICS:
                value, reason, details = await self._retrieval(judge, answer, evidence, metric, reference)
            elif not answer.text:
                # a retryable failed answer leaves a retryable score: resume answers, then scores again
                reason, retryable = f"no answer to score ({answer.error or 'empty answer'})", answer.retryable
            elif metric == "faithfulness":
                value, reason, details = await self._faithfulness(judge, answer, evidence)
            elif metric == "answer_relevancy":
                value, reason, details = await self._relevancy(judge, answer)
            else:
                value, reason, details = await self._correctness(judge, answer, reference)
        except JudgeOutputError as e:  # final: the judge answered, but not in the form the metric needs
            reason = str(e)
        except TransientModelError as e:  # the judge could not be asked now: resume scores it again
            value, reason, retryable = None, f"the judge's endpoint failed: {e}", True
        except ModelError as e:
            reason = f"judge model error: {e}"
        except Exception as e:  # one answer's failure must not lose the others' scores; the details go to the log
            logging.getLogger(__name__).warning("scoring %s %s %s failed unexpectedly: %s: %s", answer.question_id,
                                                answer.mode, metric, type(e).__name__, e)
            value, reason = None, "scoring failed on an unexpected error (its details are in the log)"
        if value is None and not reason:
            reason = "the judge gave no usable score"
        return Score(answer.run_id, answer.question_id, answer.mode, metric, value, reason, details,
                     self.judge_name(metric), judge.model_seconds, retryable=retryable and value is None)

    async def _faithfulness(self, judge, answer, evidence):
        if not evidence:
            return None, NO_PASSAGES, {}
        contexts = [p.text for p in evidence]
        if self.faithfulness == "likelihood":
            return await self._likelihood(judge, answer, evidence, contexts)
        metric = _rendered_once(Faithfulness(llm=judge))
        if self.prompts != "ragas":
            from core.judge_prompts import PROMPTS

            statement_prompt, nli_prompt = PROMPTS[self.prompts]
            metric.statement_generator_prompt, metric.nli_statement_prompt = statement_prompt(), nli_prompt()
        result = await metric.ascore(answer.question, answer.text, contexts)
        statements = next((out["statements"] for name, out in judge.log if name == "StatementGeneratorOutput"), [])
        verdicts = next((out["statements"] for name, out in judge.log if name == "NLIStatementOutput"), [])
        details = {"statements": statements,
                   "verdicts": [{"statement": v["statement"], "verdict": int(bool(v["verdict"])),
                                 "reason": v["reason"]} for v in verdicts],
                   "evidence": [p.id for p in evidence]}
        value = result.value
        if value is None or math.isnan(value):
            why = ("the judge found no statements in the answer" if not statements
                   else "the judge returned no verdicts for the statements")
            return None, why, details
        return float(value), "", details

    async def _likelihood(self, judge, answer, evidence, contexts):
        from core.judges.likelihood import LikelihoodFaithfulness, load_rules

        rules = load_rules()
        rule = rules.rule_for(answer.question_id) if self.held_out else rules.rule
        model = CachedLikelihood(self.judge, self.cache)
        result = await LikelihoodFaithfulness(model, rule).ascore(answer.question, answer.text, contexts)
        out = (result.traces or {}).get("output", {})
        judge.model_seconds += out.get("model_seconds", 0.0)
        verdicts = out.get("verdicts", [])
        details = {"judge": "likelihood", "rule": rule.version, "statements": [v["text"] for v in verdicts],
                   "verdicts": [{"statement": v["text"], "verdict": v["verdict"], "reason": v["reason"],
                                 "probability": round(v["probability"], 4), "pmi": round(v["pmi"], 4),
                                 "log_ratio": round(v["log_ratio"], 4), "logp_evidence": round(v["logp_evidence"], 4),
                                 "logp_question": round(v["logp_question"], 4),
                                 "disagreement": round(v["disagreement"], 4),
                                 "passage": None if v["passage"] is None else evidence[v["passage"]].id}
                                for v in verdicts],
                   "evidence": [p.id for p in evidence]}
        value = result.value
        if value is None or math.isnan(value):
            return None, result.reason or "the answer holds no statement to judge", details
        return float(value), "", details

    async def _relevancy(self, judge, answer):
        metric = _rendered_once(AnswerRelevancy(llm=judge, embeddings=self.embeddings, strictness=self.strictness))
        result = await metric.ascore(answer.question, answer.text)
        generated = [out for name, out in judge.log if name == "AnswerRelevanceOutput"]
        details = {"generated_questions": [{"question": g["question"], "noncommittal": int(bool(g["noncommittal"]))}
                                           for g in generated]}
        if not any(g["question"] for g in generated):
            # RAGAS returns a believable 0.0 here; it is not a score, it is a failure
            return None, "the judge generated no questions from the answer", details
        value = result.value
        if value is None or math.isnan(value):
            return None, "the judge gave no usable score", details
        return min(1.0, max(0.0, float(value))), "", details  # cosine can dip below 0

    async def _retrieval(self, judge, answer, evidence, metric, reference):
        """The retrieved passages judged against the question (relevance) or the reference answer
        (recall: how much of the reference they hold; precision: whether the useful ones rank first)."""
        if not evidence:
            return None, NO_PASSAGES, {}
        contexts, ids = [p.text for p in evidence], [p.id for p in evidence]
        if metric == "context_relevance":
            # RAGAS swallows the judge's failures here and returns NaN; one retry is ours (RagasJudge)
            result = await _rendered_once(ContextRelevance(llm=judge, max_retries=1)).ascore(answer.question, contexts)
            ratings = [out["rating"] for name, out in judge.log if name == "ContextRelevanceOutput"]
            details = {"ratings": ratings, "evidence": ids}
            if (result.value is None or math.isnan(result.value)) and judge.failures:
                raise judge.failures[-1]
        elif metric == "context_recall":
            result = await _rendered_once(ContextRecall(llm=judge)).ascore(answer.question, contexts, reference)
            found = next((out["classifications"] for name, out in judge.log if name == "ContextRecallOutput"), [])
            details = {"classifications": [{"statement": c["statement"], "attributed": int(bool(c["attributed"])),
                                            "reason": c["reason"]} for c in found], "evidence": ids}
            if not found:
                return None, "the judge found no statements in the reference answer", details
        else:
            result = await _rendered_once(ContextPrecision(llm=judge)).ascore(answer.question, reference, contexts)
            verdicts = [out for name, out in judge.log if name == "ContextPrecisionOutput"]
            details = {"passage_verdicts": [{"passage": i, "verdict": int(bool(v["verdict"])), "reason": v["reason"]}
                                            for i, v in zip(ids, verdicts)], "evidence": ids}
        value = result.value
        if value is None or math.isnan(value):
            return None, "the judge gave no usable score", details
        return min(1.0, max(0.0, float(value))), "", details

    async def _correctness(self, judge, answer, reference):
        """The answer against the reference: the F1 of their statements (75%) and their embeddings'
        similarity (25%), RAGAS's weights."""
        metric = _rendered_once(AnswerCorrectness(llm=judge, embeddings=self.embeddings))
        result = await metric.ascore(answer.question, answer.text, reference)
        said = [out["statements"] for name, out in judge.log if name == "StatementGeneratorOutput"]
        answer_statements, reference_statements = (said + [[], []])[:2]  # asked for the answer, then the reference
        found = next((out for name, out in judge.log if name == "ClassificationWithReason"), {})
        details = {"answer_statements": answer_statements, "reference_statements": reference_statements,
                   **{k: [c["statement"] for c in found.get(k, [])] for k in ("TP", "FP", "FN")}}
        # RAGAS counts no statements as a perfect match: a believable score that is not one
        if not answer_statements:
            return None, "the judge found no statements in the answer", details
        if not reference_statements:
            return None, "the judge found no statements in the reference answer", details
        value = result.value
        if value is None or math.isnan(value):
            return None, "the judge gave no usable score", details
        return min(1.0, max(0.0, float(value))), "", details


def not_applicable(metric: str, mode: str, reference: str) -> str:
    """Why `metric` does not apply to an item, or "": the passages' metrics are scored on the RAG
    item only, and the reference metrics need the question's reference answer."""
    if metric in RETRIEVAL_METRICS and mode != "rag":
        return NOT_RETRIEVAL
    if metric in REFERENCE_METRICS and not reference.strip():
        return NO_REFERENCE
    return ""
