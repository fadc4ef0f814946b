"""Faithfulness prompts fitted to small judge models, as RAGAS prompt classes.

RAGAS's stock prompts are long (a four-statement few-shot example per call) and ask for
pronoun-free "atomic" rewrites that a 135M model often answers with an empty list. These
keep RAGAS's input/output models, and so its scoring, and change only the instruction and
the example: copy sentences with their numbers and names, and judge a changed number or
name as unsupported. Used by `Scorer(prompts="small")`; measured in bench/judge_calibration.py.
"""
from __future__ import annotations

from ragas.metrics.collections.faithfulness.util import (
    NLIStatementInput,
    NLIStatementOutput,
    NLIStatementPrompt,
    StatementFaithfulnessAnswer,
    StatementGeneratorInput,
    StatementGeneratorOutput,
    StatementGeneratorPrompt,
)


class SmallStatementPrompt(StatementGeneratorPrompt):
    """One statement per sentence of the answer, in the answer's own words."""

    instruction = ("Split the answer into short statements, one for each sentence. Keep the answer's own words, "
                   "with every number, name and condition exactly as written.")
    examples = [(
        StatementGeneratorInput(question="How long is the warranty?",
                                answer="The warranty lasts 2 years. It covers parts but not labour."),
        StatementGeneratorOutput(statements=["The warranty lasts 2 years.",
                                             "The warranty covers parts but not labour."]),
    )]


class SmallNLIPrompt(NLIStatementPrompt):
    """Verdict 1 only when the context says the same thing, numbers and names included."""

    instruction = ("For each statement, give verdict 1 only if the context says the same thing, with the same "
                   "numbers, names and conditions. If the context says something different, or does not say it, "
                   "give verdict 0.")
    examples = [(
        NLIStatementInput(context="The museum opens at 9 am and closes at 5 pm. Entry is free on Sundays.",
                          statements=["The museum opens at 9 am.", "The museum closes at 6 pm.",
                                      "Entry is free on Mondays."]),
        NLIStatementOutput(statements=[
            StatementFaithfulnessAnswer(statement="The museum opens at 9 am.", reason="The context says 9 am.",
                                        verdict=1),
            StatementFaithfulnessAnswer(statement="The museum closes at 6 pm.",
                                        reason="The context says 5 pm, not 6 pm.", verdict=0),
            StatementFaithfulnessAnswer(statement="Entry is free on Mondays.",
                                        reason="The context says Sundays, not Mondays.", verdict=0),
        ]),
    )]


PROMPTS = {"ragas": None, "small": (SmallStatementPrompt, SmallNLIPrompt)}
