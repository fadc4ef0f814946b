import pytest

from core.errors import QuestionFileError
from core.questions import default_questions, parse_bytes


def test_seed_file_holds_30_questions_with_both_answers():
    parsed = default_questions()
    assert len(parsed.questions) == 30
    assert parsed.questions[0].id == "Q1"
    assert parsed.questions[0].question == "How do I clone the Requests repository?"
    assert parsed.questions[2].question == "What does the library '__future__'  do?"
    assert set(parsed.answers) == {q.id for q in parsed.questions}
    assert all(set(a) == {"llm_only", "rag"} for a in parsed.answers.values())
    q1 = parsed.answers["Q1"]
    assert q1["rag"].startswith("```bash\ngit clone https://github.com/psf/requests.git")
    assert not q1["rag"].endswith("---")
    # headings inside an answer stay in the answer
    assert "## Integrating Flask-Login with Flask" in parsed.answers["Q2"]["llm_only"]


def test_csv_with_aliases_quotes_and_duplicates():
    data = ('query,ground_truth,tags\n"Why, and how?","Because ""x""",a\n'
            '"Multi\nline question",,b\n"  why, and HOW?  ",,c\n').encode()
    parsed = parse_bytes(data, "q.csv")
    assert [(q.id, q.question, q.reference, q.category) for q in parsed.questions] == [
        ("Q1", "Why, and how?", 'Because "x"', "a"), ("Q2", "Multi\nline question", "", "b")]
    assert parsed.dropped == ["row 4: duplicate of row 2, dropped"]


@pytest.mark.parametrize("name, data, message", [
    ("empty.csv", b"  \n", "empty.csv: the file is empty"),
    ("cols.csv", b"text,answer\nhello,world\n", "cols.csv: no question column"),
    ("blank.csv", b"question\n  \n\"\"\n", "blank.csv: no non-blank question"),
    ("broken.json", b'[{"question": "a"', "broken.json: broken JSON at line 1"),
    ("lines.jsonl", b'{"question": "a"}\n{oops}\n', "lines.jsonl: line 2 is not valid JSON"),
    ("bin.csv", b"question\n\x00\x01\x02", "bin.csv: a binary file"),
    ("q.xyz", b"question\nhi\n", "q.xyz: files of type '.xyz' are not read"),
    ("long.csv", b"question\n" + b"x" * 10_001 + b"\n", "long.csv, row 2: the question is 10001 characters"),
    ("ctl.jsonl", b'{"question": "bad \\u0007 bell"}\n', "ctl.jsonl, line 1: the question holds control characters"),
    ("notes.md", b"# Notes\n\nno questions here\n", "notes.md: no '## Q1: question' headings"),
])
def test_bad_files_are_refused_with_a_message_naming_file_and_row(name, data, message):
    with pytest.raises(QuestionFileError) as e:
        parse_bytes(data, name)
    assert message in str(e.value)
