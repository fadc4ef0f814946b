import pytest

from core.evaluate import MAX_LIST_ITEMS, MAX_STRING_CHARS, bounded_schema
from core.models import Score


def test_judge_schemas_are_bounded_and_flags_are_binary():
    from ragas.metrics.collections.answer_relevancy.util import AnswerRelevanceOutput
    from ragas.metrics.collections.faithfulness.util import NLIStatementOutput, StatementGeneratorOutput

    rel = bounded_schema(AnswerRelevanceOutput.model_json_schema())["properties"]
    assert rel["noncommittal"]["enum"] == [0, 1]
    assert rel["question"]["maxLength"] == MAX_STRING_CHARS
    nli = bounded_schema(NLIStatementOutput.model_json_schema())
    verdict = nli["$defs"]["StatementFaithfulnessAnswer"]["properties"]["verdict"]
    assert verdict["enum"] == [0, 1]
    assert nli["properties"]["statements"]["maxItems"] == MAX_LIST_ITEMS
    gen = bounded_schema(StatementGeneratorOutput.model_json_schema())["properties"]["statements"]
    assert gen["maxItems"] == MAX_LIST_ITEMS and gen["items"]["maxLength"] == MAX_STRING_CHARS
    plain = {"type": "object", "properties": {"year": {"type": "integer", "description": "the year"}}}
    assert "enum" not in bounded_schema(plain)["properties"]["year"]


def test_an_unscored_score_must_say_why_and_values_stay_in_range():
    with pytest.raises(ValueError, match="needs a reason"):
        Score("r", "q", "rag", "faithfulness", None)
    with pytest.raises(ValueError, match="needs a reason"):
        Score("r", "q", "rag", "faithfulness", float("nan"))
    with pytest.raises(ValueError, match="outside"):
        Score("r", "q", "rag", "faithfulness", 1.5)
    s = Score("r", "q", "rag", "faithfulness", float("nan"), reason="no statements")
    assert s.value is None and not s.scored


def test_a_judge_retry_samples_instead_of_repeating_itself(embedder):
    import asyncio

    from core.config import ModelConfig
    from core.evaluate import RETRY_TEMPERATURE, Scorer
    from core.llm.fake import FakeLLM
    from core.models import Answer, Passage

    temperatures = []

    class Recording(FakeLLM):
        def _complete(self, messages, *, schema, max_tokens, temperature):
            temperatures.append(temperature)
            return super()._complete(messages, schema=schema, max_tokens=max_tokens, temperature=temperature)

    judge = Recording(lambda m, s: "{broken")
    scorer = Scorer(judge, ModelConfig(), embedder, cache=None, strictness=1)
    passages = (Passage("p", "Cookies last 365 days.", "s", "d", "", 1.0),)
    score = asyncio.run(scorer.score(Answer("r", "q", "rag", "How long?", "365 days.", passages), passages,
                                     "faithfulness"))
    assert score.value is None and "did not parse as StatementGeneratorOutput" in score.reason
    assert temperatures == [0.0, RETRY_TEMPERATURE]


def test_prompts_rendered_once_are_ragas_own_text(embedder):
    from ragas.metrics.collections import (AnswerCorrectness, AnswerRelevancy, ContextPrecision, ContextRecall,
                                           ContextRelevance, Faithfulness)
    from ragas.prompt.metrics.base_prompt import BasePrompt

    from core.config import ModelConfig
    from core.evaluate import RagasEmbeddings, RagasJudge, _rendered_once
    from core.llm.fake import FakeLLM

    judge, embeddings = RagasJudge(FakeLLM(lambda m, s: "{}"), ModelConfig(), None), RagasEmbeddings(embedder)
    metrics = [Faithfulness(llm=judge), AnswerRelevancy(llm=judge, embeddings=embeddings),
               ContextRelevance(llm=judge), ContextRecall(llm=judge), ContextPrecision(llm=judge),
               AnswerCorrectness(llm=judge, embeddings=embeddings)]
    checked = 0
    for metric in metrics:
        prompts = [p for p in vars(_rendered_once(metric)).values() if isinstance(p, BasePrompt)]
        assert prompts and all(p.to_string.func.__name__ == "_to_string" for p in prompts)
        for prompt in prompts:
            inputs = [example for example, _ in prompt.examples]
            inputs.append(inputs[0].model_copy(update={name: value + ' "and a quote"' for name, value
                                                       in inputs[0].model_dump().items() if isinstance(value, str)}))
            for data in inputs + inputs:  # the second time from what was kept
                assert prompt.to_string(data) == BasePrompt.to_string(prompt, data)
                checked += 1
    assert checked >= 2 * 8 * 2
