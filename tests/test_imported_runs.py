"""Answers that already exist, imported as a run and scored without being regenerated.
The judge is scripted here (the model is not what is tested); the embedded models score an
imported run end to end in test_imported_runs_e2e.py."""
import json

import pytest

from core.cli import main
from core.errors import NotFoundError, QuestionFileError, RagEvalError
from core.imports import import_run
from core.ingest import ingest
from core.llm.fake import FakeLLM
from core.questions import default_questions, parse_bytes
from core.runs import create_run, summary
from core.executor import Executor


def judge_reply(messages, schema):
    return {"StatementGeneratorOutput": {"statements": ["Clone it with git."]},
            "NLIStatementOutput": {"statements": [{"statement": "Clone it with git.", "reason": "r", "verdict": 1}]},
            "AnswerRelevanceOutput": {"question": "How do I clone Requests?", "noncommittal": 0}}[schema["title"]]


def no_answers(messages, schema):
    raise AssertionError("an imported run must never ask the answer model")


@pytest.fixture
def kb(settings, store, embedder, docs):
    ingest([str(docs)], "docs", store, embedder, settings)
    return "docs"


ANSWERS_CSV = ('id,question,llm_only_answer,rag_answer,rag_contexts\n'
               'c1,How long does the remember cookie last?,A year I think.,365 days.,'
               '"[""The cookie lasts 365 days."", ""Set REMEMBER_COOKIE_DURATION.""]"\n'
               'c2,How do I connect to SQLite?,,Call sqlite3.connect.,\n').encode()


def test_the_seed_imports_as_a_run_of_30_questions_with_both_answers(settings, store, embedder, kb):
    parsed = default_questions()
    run = import_run(store, settings, parsed, "seed_evaluation.md", kb, metrics=("faithfulness",))
    assert run.imported and run.answer_model == "imported" and run.modes == ("llm_only", "rag")
    assert (run.question_set, run.question_set_version) == ("seed_evaluation", 1)
    answers = store.answers(run.id)
    assert len(answers) == 60 and {a.model for a in answers} == {"imported"}
    assert {(a.question_id, a.mode): a.text for a in answers} == {
        (qid, mode): text for qid, modes in parsed.answers.items() for mode, text in modes.items()}

    answer_llm = FakeLLM(no_answers)
    out = Executor(store, settings, embedder, run.id, answer_llm, FakeLLM(judge_reply)).execute()
    assert out.run.status == "done" and answer_llm.calls == 0 and out.answered == 0
    assert out.scored == 60
    chunk_ids = {r["id"] for r in store.kb_table(kb).search().limit(None).to_arrow().to_pylist()}
    for s in store.scores(run.id):  # no contexts in the seed: the evidence came from the knowledge base
        assert s.value == 1.0 and s.details["evidence"] and set(s.details["evidence"]) <= chunk_ids
    assert len(store.answers(run.id)) == 60  # still the imported ones, nothing generated


def test_contexts_are_the_evidence_and_a_missing_answer_stays_missing(settings, store, embedder, kb):
    run = import_run(store, settings, parse_bytes(ANSWERS_CSV, "mine.csv"), "mine.csv", kb, set_name="mine")
    nli_prompts = []

    def judge(messages, schema):
        if schema["title"] == "NLIStatementOutput":
            nli_prompts.append(messages[0]["content"])
        return judge_reply(messages, schema)

    answer_llm = FakeLLM(no_answers)
    Executor(store, settings, embedder, run.id, answer_llm, FakeLLM(judge)).execute()
    assert answer_llm.calls == 0
    s = summary(store, run.id)
    c1, c2 = s["items"]
    assert [p["text"] for p in c1["rag"]["passages"]] == ["The cookie lasts 365 days.", "Set REMEMBER_COOKIE_DURATION."]
    assert {p["score"] for p in c1["rag"]["passages"]} == {None}  # given, never searched
    assert (c1["rag"]["latency_s"], c1["rag"]["prompt_tokens"], c1["rag"]["completion_tokens"]) == (None,) * 3
    assert c1["llm_only"]["scores"]["faithfulness"]["details"]["evidence"] == ["mine.csv#c1:1", "mine.csv#c1:2"]
    assert any("The cookie lasts 365 days." in p for p in nli_prompts)
    evidence_c2 = c2["rag"]["scores"]["faithfulness"]["details"]["evidence"]
    assert evidence_c2 and all(e.startswith(str(kb_source(store, kb))) for e in evidence_c2)
    missing = c2["llm_only"]
    assert missing["answer"] == "" and missing["error"] == "the imported file holds no LLM only answer to this question"
    for metric in ("faithfulness", "answer_relevancy"):
        assert missing["scores"][metric]["value"] is None
        assert "no answer to score" in missing["scores"][metric]["reason"]
    assert s["modes"]["llm_only"]["faithfulness"]["n_scored"] == 1
    assert s["modes"]["llm_only"]["faithfulness"]["n_unscored"] == 1

    # rescoring scores the same imported answers again; still no answer model
    out = Executor(store, settings, embedder, run.id, answer_llm, FakeLLM(judge)).execute(rescore=True)
    assert out.run.status == "done" and answer_llm.calls == 0 and out.scored == 8


def kb_source(store, kb):
    return store.kb_sources(kb)[0]["source"]


def test_a_refused_import_stores_nothing(settings, store, kb):
    before = store.question_sets()
    with pytest.raises(NotFoundError, match="knowledge base 'nope' does not exist"):
        import_run(store, settings, parse_bytes(ANSWERS_CSV, "a.csv"), "a.csv", "nope")
    with pytest.raises(QuestionFileError, match="plain.csv: holds no answers to import"):
        import_run(store, settings, parse_bytes(b"question\nWhat?\n", "plain.csv"), "plain.csv", kb)
    ctx_only = b'[{"question": "q?", "llm_only_answer": "a", "rag_contexts": ["p"]}]'
    with pytest.raises(QuestionFileError, match="ctx.json: rag_contexts are given but no rag_answer"):
        import_run(store, settings, parse_bytes(ctx_only, "ctx.json"), "ctx.json", kb)
    with pytest.raises(RagEvalError, match="top-k 99"):
        import_run(store, settings, parse_bytes(ANSWERS_CSV, "a.csv"), "a.csv", kb, top_k=99)
    assert store.question_sets() == before and store.runs() == []


def test_versions_export_and_delete_through_the_cli(settings, store, kb, tmp_path, capsys):
    f = tmp_path / "set.jsonl"
    f.write_text('{"question": "=cmd|calc?", "id": "x"}\n{"question": "What is Flask?"}\n')
    assert main(["questions", "import", str(f), "--name", "mine", "--json"]) == 0
    f.write_text('{"question": "What is Flask?"}\n')
    assert main(["questions", "import", str(f), "--name", "mine", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"name": "mine", "version": 2, "count": 1,
                                                                   "dropped": 0}
    assert main(["questions", "versions", "mine", "--json"]) == 0
    assert [(v["version"], v["count"]) for v in json.loads(capsys.readouterr().out)] == [(2, 1), (1, 2)]

    run = create_run(store, settings, kb, "mine", question_set_version=1)
    assert (run.question_set, run.question_set_version) == ("mine", 1)  # the exact version, not the latest

    out = tmp_path / "mine-v1.csv"
    assert main(["questions", "export", "mine", "--version", "1", "--out", str(out)]) == 0
    assert out.read_text().splitlines() == ["id,question,reference,category", "x,'=cmd|calc?,,", "Q2,What is Flask?,,"]
    assert main(["questions", "export", "mine", "--out", str(tmp_path / "mine.xlsx")]) == 0
    assert [q.question for q in parse_bytes((tmp_path / "mine.xlsx").read_bytes(), "mine.xlsx").questions] == \
        ["What is Flask?"]
    capsys.readouterr()
    assert main(["questions", "export", "mine", "--out", str(tmp_path / "mine.txt")]) == 2
    assert "mine.txt: cannot export to '.txt'" in capsys.readouterr().err

    assert main(["questions", "delete", "mine"]) == 2
    err = capsys.readouterr().err
    assert f"question set 'mine' is used by 1 run(s) ({run.id}); delete those runs first" in err
    assert "mine" in {s["name"] for s in store.question_sets()}
    assert main(["runs", "delete", run.id]) == 0
    assert store.runs() == [] and store.answers(run.id) == [] and store.scores(run.id) == []
    assert main(["questions", "delete", "mine"]) == 0
    assert [s["name"] for s in store.question_sets()] == ["default"]
    with pytest.raises(NotFoundError):
        store.question_set("mine", 1)


def test_runs_import_prints_the_run_id_last(settings, store, kb, tmp_path, capsys):
    f = tmp_path / "answers.csv"
    f.write_bytes(ANSWERS_CSV)
    assert main(["runs", "import", str(f), "--kb", kb, "--no-score"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    run = store.run(run_id)
    assert run.imported and run.status == "pending" and run.question_set == "answers"
    assert main(["runs"]) == 0 and run_id in capsys.readouterr().out
