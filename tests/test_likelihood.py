"""The likelihood judge: statements, figures and the verdict rule as pure functions; its
passes on the real embedded model (SmolLM2-135M); the fitted rule file against the code;
and a corpus of made-up facts where RAG must win on faithfulness, end to end."""
import asyncio
import json
from pathlib import Path

import pytest

from core.calibration import load_items, set_version
from core.cli import main
from core.config import ModelConfig
from core.judges import faithfulness_judge
from core.judges.fitting import FEATURES, KINDS, answer_figures, cross_validate, labels, passes
from core.judges.likelihood import (
    LikelihoodFaithfulness,
    Rule,
    StatementFigures,
    load_rules,
    ratio_words,
    statement_figures,
)
from core.judges.statements import split_statements
from core.llm import get_llm
from core.llm.embedded import gguf_digest
from core.models import TokenLogprobs
from tests.conftest import write_docs
from tests.madeup import DOCS, QUESTIONS

EVIDENCE = ["The remember me cookie lasts 365 days by default. Its duration is set by the "
            "REMEMBER_COOKIE_DURATION configuration value."]
QUESTION = "How long does the Flask-Login remember-me cookie last by default?"


@pytest.fixture(scope="module")
def model():
    return get_llm(ModelConfig())


# -- pure ---------------------------------------------------------------------------------
def test_statements_are_sentences_items_and_code_blocks_with_their_places():
    text = ("Yes. Flask-Login handles sessions, e.g. remember me. Version 1.2 works.\n\n"
            "- It stores the user id.\n- It reloads users with user_loader.\n\n"
            "```python\nlogin_user(u, remember=True)\n```\nThat is all for now.")
    got = split_statements(text)
    assert [s.text for s in got] == [
        "Yes. Flask-Login handles sessions, e.g. remember me.", "Version 1.2 works.", "- It stores the user id.",
        "- It reloads users with user_loader.", "```python\nlogin_user(u, remember=True)\n```",
        "That is all for now."]
    assert all(text[s.start:s.end] == s.text for s in got)
    assert split_statements("   \n ") == []


def test_figures_come_from_the_tokens_inside_each_statement():
    answer = "It is 45 s. It is red."
    tokens = ("It", " is", " 45", " s.", " It", " is", " red", ".")
    offsets = (0, 2, 5, 8, 11, 14, 17, 21)
    with_e = TokenLogprobs(tokens, offsets, (-1.0, -0.5, -0.1, -0.2, -1.0, -0.5, -4.0, -0.3),
                           (-0.5, -0.5, -0.1, -0.2, -0.5, -0.5, -0.1, -0.3))
    without = TokenLogprobs(tokens, offsets, (-1.0, -0.5, -5.0, -0.2, -1.0, -0.5, -2.0, -0.3))
    first, second = statement_figures(split_statements(answer), with_e, without)
    assert (first.text, first.tokens, second.tokens) == ("It is 45 s.", 4, 4)
    assert first.pmi == pytest.approx(4.9 / 4) and first.log_ratio == pytest.approx(4.9)
    assert second.pmi == pytest.approx(-2.0 / 4)
    assert first.disagreement == pytest.approx(0.6065307 * 0.5 / 4)  # "It": p(top)=e^-.5, 0.5 below the top
    assert second.disagreement > first.disagreement  # " red": the evidence made the model sure of another token


def test_rule_and_words():
    rule = Rule("t", ("pmi",), (0.0,), (1.0,), (2.0,), 0.0)
    fig = StatementFigures("x", 0, 1, 1, -1.0, -2.0, 1.0, 0.1, 3.7)
    assert rule.probability(fig) == pytest.approx(1 / (1 + 2.718281828 ** -2))
    assert rule.supported(fig) and not rule.supported(StatementFigures("x", 0, 1, 1, -2, -1, -1.0, 0.1, -1.0))
    assert ratio_words(3.7) == "the evidence makes this statement 40× more likely"
    assert ratio_words(-2.0).startswith("less likely with the evidence than without")


def test_the_faithfulness_judge_follows_the_judge_model():
    assert faithfulness_judge("auto", ModelConfig()) == "likelihood"
    endpoint = ModelConfig(backend="openai", model="m", base_url="http://127.0.0.1:1/v1")
    assert faithfulness_judge("auto", endpoint) == "ragas"
    with pytest.raises(Exception, match="needs an embedded"):
        faithfulness_judge("likelihood", endpoint)


def test_calibration_labels_mark_only_the_changed_statement_of_a_subtly_wrong_answer():
    def figs(*texts):
        return [StatementFigures(t, 0, 1, 1, 0, 0, 0, 0, 0) for t in texts]
    item = {"faithful": figs("It lasts 365 days.", "It can be changed."),
            "unfaithful": figs("It never expires.", "It is fixed."),
            "subtly_unfaithful": figs("It lasts 30 days.", "It can be changed.")}
    assert labels(item) == {"faithful": [1, 1], "unfaithful": [0, 0], "subtly_unfaithful": [0, 1]}


# -- the rule file and the code -----------------------------------------------------------
def test_the_fitted_rule_file_matches_the_code_the_model_and_the_calibration_set(model):
    rules = load_rules()
    assert rules.rule.features == FEATURES  # the figures the code computes and the fit uses
    assert rules.calibration_set == set_version()  # an edited calibration set needs a refit
    data = json.loads(Path("data/likelihood_judge.json").read_text())
    assert data["model_sha256"] == gguf_digest(model.weights)  # the weights that run, as fitted
    held_out = [set(h) for h, _ in rules.folds]
    ids = {i.id for i in load_items()}
    assert set().union(*held_out) == ids and sum(map(len, held_out)) == len(ids)  # folds partition the set
    for h, rule in rules.folds:
        assert rules.rule_for(next(iter(h))) is rule
    assert rules.rule_for("not-a-calibration-item") is rules.rule
    assert {"unfaithful", "subtly_unfaithful"} <= set(rules.cross_validation["pairs"])


# -- the real model -----------------------------------------------------------------------
def test_a_copied_sentence_scores_above_the_same_sentence_with_one_number_changed(model):
    faithful = "By default the remember-me cookie lasts 365 days."
    changed = "By default the remember-me cookie lasts 30 days."
    f_ok = answer_figures(faithful, passes(model, QUESTION, EVIDENCE, faithful))[0]
    f_bad = answer_figures(changed, passes(model, QUESTION, EVIDENCE, changed))[0]
    assert f_ok.logp_evidence > f_bad.logp_evidence
    assert f_ok.disagreement < f_bad.disagreement
    assert f_ok.pmi > 0  # the evidence makes the copied sentence more likely

    metric = LikelihoodFaithfulness(model)
    ok = asyncio.run(metric.ascore(QUESTION, faithful, EVIDENCE))
    bad = asyncio.run(metric.ascore(QUESTION, changed, EVIDENCE))
    assert ok.value > bad.value
    assert [v["verdict"] for v in ok.traces["output"]["verdicts"]] == [1]


def test_logits_read_at_the_answer_match_a_full_logits_pass(model):
    """The judge reads logits only at the answer's positions; the figures must equal those of
    llama.cpp's logits_all pass over the same tokens."""
    import numpy as np
    from llama_cpp import Llama

    from core.llm.embedded import CONTEXT_OPTIONS, LIKELIHOOD_CONTEXTS, _chat_prompt, _load
    from core.judges.likelihood import evidence_messages

    messages = evidence_messages(QUESTION, EVIDENCE)
    answer = "By default the remember-me cookie lasts 30 days."
    # empty KV caches, so the judge too decodes the whole prompt in one batch: a prefix kept from
    # an earlier test splits it differently, and other batch shapes round differently (~0.1 nats)
    for slot in range(1, LIKELIHOOD_CONTEXTS + 1):
        _load(model.weights, model.n_ctx, model.threads, slot)[0].reset()
    got = model.continuation_logprobs(messages, answer)
    ref = Llama(model_path=model.weights, n_ctx=512, logits_all=True, verbose=False, **CONTEXT_OPTIONS)  # what runs
    prompt, cont = _chat_prompt(ref, messages), ref.tokenize(answer.encode(), add_bos=False)
    ref.eval(prompt + cont)
    rows = np.asarray(ref.scores[len(prompt) - 1: len(prompt) + len(cont) - 1], dtype=np.float64)
    want = rows[np.arange(len(cont)), cont] - np.log(np.exp(rows - rows.max(1, keepdims=True)).sum(1)) - rows.max(1)
    assert np.allclose(got.logprobs, want, atol=1e-3)
    assert "".join(got.tokens) == answer and got.offsets[0] == 0
    ref.close()


def test_cross_validation_on_a_slice_scores_each_item_with_a_rule_that_never_saw_it(model):
    items = load_items()[:8]
    table = {i.id: {k: answer_figures(getattr(i, k), passes(model, i.question, i.evidence, getattr(i, k)))
                    for k in KINDS} for i in items}
    folds, cv = cross_validate(table, k=4)
    assert sorted(i for h, _ in folds for i in h) == sorted(table)
    for held_out, rule in folds:  # refitting without the held-out items gives exactly that fold's rule
        from core.judges.fitting import fit
        assert fit(table, [i for i in table if i not in held_out]) == rule
    assert set(cv["scores"]) == set(table)
    right = cv["pairs"]["unfaithful"]["right"]
    assert right >= 6, cv["pairs"]  # held out, on 8 items: well above chance at telling contradictions


# -- end to end: made-up facts ------------------------------------------------------------
def test_on_made_up_facts_rag_is_more_faithful_with_an_interval_above_zero(settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAGEVAL_FAITHFULNESS_JUDGE", "auto")  # the default for the embedded judge
    docs = write_docs(tmp_path / "madeup", DOCS)
    qfile = tmp_path / "madeup.csv"
    qfile.write_text("question\n" + "\n".join(QUESTIONS) + "\n")
    assert main(["ingest", str(docs), "--kb", "madeup"]) == 0
    assert main(["questions", "import", str(qfile), "--name", "madeup"]) == 0
    capsys.readouterr()
    assert main(["run", "--kb", "madeup", "--questions", "madeup", "--metrics", "faithfulness", "--top-k", "2"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    c = shown["comparison"]["faithfulness"]
    assert c["n_pairs"] == len(QUESTIONS) >= 10
    assert c["ci_low"] > 0, c  # RAG raised faithfulness, with a 95% interval above zero
    judged = shown["items"][0]["rag"]["scores"]["faithfulness"]
    assert judged["details"]["judge"] == "likelihood" and judged["details"]["verdicts"]
