"""Every question-file format and encoding users bring, and a zoo of malformed and hostile
files: each refused with one message naming the file and row, and nothing stored."""
import codecs
import csv
import io
import json
import zipfile

import pytest
from openpyxl import Workbook

from core import questions as qmod
from core.cli import main
from core.export import csv_bytes, questions_bytes, questions_frame
from core.models import Question
from core.questions import parse_bytes, parse_file

CANON = [
    Question("a1", "How do I clone the Requests repository?", "git clone https://github.com/psf/requests.git",
             "requests"),
    Question("a2", 'What does "remember me" do, and how long does it last?', "365 days, by a cookie", "flask"),
    Question("a3", "Café-grade question: why does € cost “extra”?\nSecond line; with a semicolon | and pipe",
             "", "misc"),
    Question("a4", "Is\ttab inside allowed?", "yes", ""),
]


def table_rows():
    return [{"id": q.id, "question": q.question, "reference": q.reference, "category": q.category} for q in CANON]


def delimited(delimiter: str) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=["id", "question", "reference", "category"], delimiter=delimiter,
                       lineterminator="\r\n")
    w.writeheader()
    w.writerows(table_rows())
    return out.getvalue()


def xlsx(rows: list[list]) -> bytes:
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def accepted_files() -> dict[str, bytes]:
    text = delimited(",")
    files = {
        "utf8.csv": text.encode("utf-8"),
        "utf8-bom.csv": codecs.BOM_UTF8 + text.encode("utf-8"),
        "utf16-le.csv": text.encode("utf-16"),  # BOM + little-endian
        "utf16-be.csv": codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        "excel-windows.csv": text.encode("cp1252"),
        "semicolon.csv": delimited(";").encode("utf-8"),
        "pipe.csv": delimited("|").encode("utf-8"),
        "tabs.tsv": delimited("\t").encode("utf-8"),
        "tabs-utf16.tsv": delimited("\t").encode("utf-16"),
        "list.json": json.dumps(table_rows()).encode(),
        "object.json": json.dumps({"questions": table_rows()}, ensure_ascii=False, indent=2).encode(),
        "lines.jsonl": "\n".join(json.dumps(r, ensure_ascii=False) for r in table_rows()).encode() + b"\n\n",
        "book.xlsx": xlsx([["id", "question", "reference", "category"]] +
                          [[q.id, q.question, q.reference, q.category] for q in CANON]),
        "aliases.jsonl": "\n".join(json.dumps({"ID": q.id, "user_input": q.question, "ground_truth": q.reference,
                                               "tags": [q.category] if q.category else []})
                                   for q in CANON).encode(),
        "aliases.csv": ("id,prompt,expected_answer,tags\r\n" + delimited(",").split("\r\n", 1)[1]).encode(),
    }
    for fmt in ("csv", "json", "jsonl", "xlsx"):  # our own exports read back exactly
        files[f"exported.{fmt}"] = questions_bytes(CANON, fmt)
    return files


@pytest.mark.parametrize("name", sorted(accepted_files()))
def test_every_accepted_format_and_encoding_yields_the_same_questions(name):
    parsed = parse_bytes(accepted_files()[name], name)
    assert parsed.questions == CANON
    assert parsed.dropped == [] and parsed.answers == {}


def test_the_evaluation_markdown_format_reads_multi_line_questions():
    md = "\n\n".join(f"## Q{i}:\n{q.question}\n\n### LLM Only:\nanswer {i}\n\n### LLM + RAG:\nrag {i}\n\n---"
                     for i, q in enumerate(CANON, 1))
    parsed = parse_bytes(md.encode("utf-16"), "evals.md")
    assert [q.question for q in parsed.questions] == [q.question for q in CANON]
    assert parsed.answers["Q4"] == {"llm_only": "answer 4", "rag": "rag 4"}


def test_a_single_column_csv_keeps_commas_inside_questions():
    parsed = parse_bytes(b"question\nWhy, and how, does it work?\nWhat is Flask?\n", "one.csv")
    assert [q.question for q in parsed.questions] == ["Why, and how, does it work?", "What is Flask?"]


def test_answers_and_contexts_are_read_from_csv_and_json():
    rows = [{"question": "Q one?", "llm_only_answer": "a", "rag_answer": "b",
             "rag_contexts": json.dumps(["first passage", "second, with comma"])},
            {"question": "Q two?", "rag_answer": "c", "rag_contexts": "one plain passage"},
            {"question": "Q three?"}]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=["question", "llm_only_answer", "rag_answer", "rag_contexts"])
    w.writeheader()
    w.writerows(rows)
    as_csv = parse_bytes(out.getvalue().encode(), "answers.csv")
    as_json = parse_bytes(json.dumps([{**r, "rag_contexts": json.loads(r["rag_contexts"])} if i == 0 else r
                                      for i, r in enumerate(rows)]).encode(), "answers.json")
    for parsed in (as_csv, as_json):
        assert parsed.answers == {"Q1": {"llm_only": "a", "rag": "b"}, "Q2": {"rag": "c"}}
        assert parsed.contexts == {"Q1": ["first passage", "second, with comma"], "Q2": ["one plain passage"]}


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def xlsx_bomb() -> bytes:
    """A valid-looking workbook that unpacks to more than the cap (zeros compress ~1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as f:
            block = b"\0" * 1_000_000
            for _ in range(qmod.MAX_XLSX_UNPACKED // len(block) + 1):
                f.write(block)
    return out.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

ZOO = [  # (file name, content, what the message must say)
    ("empty.csv", b"", "empty.csv: the file is empty"),
    ("spaces.jsonl", b"  \n\n\t\n", "spaces.jsonl: the file is empty"),
    ("columns.csv", b"text,answer\nhello,world\n", "columns.csv: no question column"),
    ("blank.csv", b"question,id\n  ,1\n\"\",2\n", "blank.csv: no non-blank question"),
    ("header.csv", b"question,reference\n", "header.csv: no rows"),
    ("long.csv", b"question\nshort one?\n" + b"x" * 10_001 + b"\n", "long.csv, row 3: the question is 10001"),
    ("nul.jsonl", b'{"question": "a\\u0000b"}\n', "nul.jsonl, line 1: the question holds control characters"),
    ("bell.csv", b"question\nfine?\nring \x07 ring\n", "bell.csv, row 3: the question holds control characters"),
    ("escape.csv", b"question,reference\nok?,\x1b[31mred\n", "escape.csv, row 2: the reference holds control"),
    ("broken.json", b'[{"question": "a"', "broken.json: broken JSON at line 1"),
    ("broken-lines.jsonl", b'{"question": "a"}\n{"question": "b"}\n{oops}\n',
     "broken-lines.jsonl: line 3 is not valid JSON"),
    ("scalar.json", b'"just a string"', "scalar.json: expected a list of objects"),
    ("mixed.json", b'[{"question": "a?"}, 5]', "mixed.json, item 2: expected an object"),
    ("deep.json", b"[" * 200_000 + b"]" * 200_000, "deep.json: JSON that cannot be read"),
    ("bignum.json", b'[{"question": "a?", "id": 1' + b"1" * 5000 + b"}]", "bignum.json: JSON that cannot be read"),
    ("object-question.json", b'[{"question": {"text": "a?"}}]',
     "object-question.json, item 1: the question is a JSON dict, not text"),
    ("image.csv", PNG, "image.csv: a PNG image, not a CSV question file"),
    ("archive.csv", zip_bytes({"q.csv": b"question\nhi\n"}), "archive.csv: a ZIP archive"),
    ("paper.json", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "paper.json: a PDF document"),
    ("text.xlsx", b"question\nWhat is Flask?\n", "text.xlsx: not an XLSX workbook"),
    ("photo.xlsx", PNG, "photo.xlsx: not an XLSX workbook (a PNG image)"),
    ("plain-zip.xlsx", zip_bytes({"notes.txt": b"hello"}), "plain-zip.xlsx: a ZIP archive but not an XLSX workbook"),
    ("truncated.xlsx", xlsx([["question"], ["What?"]])[:300], "truncated.xlsx: a broken XLSX workbook"),
    ("bomb.xlsx", None, "bomb.xlsx: unpacks to 201 MB, more than the 200 MB allowed"),
    ("questions.xyz", b"question\nhi\n", "questions.xyz: files of type '.xyz' are not read"),
    ("questions", b"question\nhi\n", "questions: files of type 'none' are not read"),
    ("nul-bytes.csv", b"question\nhi\x00\x00\x00there\n", "nul-bytes.csv: a binary file"),
    ("program.jsonl", b"\x7fELF\x02\x01\x01" + bytes(64), "program.jsonl: a program"),
    ("ids.csv", b"id,question\na,one?\nb,two?\na,three?\n", "ids.csv, row 4: id 'a' is used twice"),
    ("long-id.jsonl", json.dumps({"id": "i" * 201, "question": "q?"}).encode(),
     "long-id.jsonl, line 1: the id is 201 characters long"),
    ("rows.csv", b"question\n" + b"".join(b"q%d?\n" % i for i in range(50_001)),
     "rows.csv: more than the 50000 rows allowed"),
    ("rows.jsonl", b"".join(b'{"question": "q%d?"}\n' % i for i in range(50_001)),
     "rows.jsonl: more than the 50000 rows allowed"),
    ("half-utf16.csv", codecs.BOM_UTF16_LE + "question\nhi\n".encode("utf-16-le") + b"\x00",
     "half-utf16.csv: broken UTF-16"),
    ("mojibake.csv", b"question\n\x81\x8d\x90?\n", "mojibake.csv: not readable as UTF-8, UTF-16 or cp1252"),
    ("unclosed.csv", b'question,category\n"never closed,a\nmore text\n', "unclosed.csv: broken CSV at line"),
    ("notes.md", b"# Notes\n\nno questions here\n", "notes.md: no '## Q1: question' headings"),
    ("contexts.csv", b'question,rag_answer,rag_contexts\nq?,a,"[""unclosed"\n',
     "contexts.csv, row 2: rag_contexts is not a valid JSON list"),
    ("contexts.json", b'[{"question": "q?", "rag_answer": "a", "rag_contexts": [1, 2]}]',
     "contexts.json, item 1: rag_contexts must be a list of passage texts"),
]


@pytest.mark.parametrize("name, data, message", ZOO, ids=[z[0] for z in ZOO])
def test_a_bad_file_is_refused_with_one_message_and_nothing_is_stored(name, data, message, store, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(xlsx_bomb() if data is None else data)
    before = store.question_sets()
    code = main(["questions", "import", str(path), "--name", "zoo"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert store.question_sets() == before


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(store, tmp_path, capsys):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:  # sparse: the size is real, the disk is not used
        f.truncate(qmod.MAX_BYTES + 1)
    assert main(["questions", "import", str(path), "--name", "huge"]) == 2
    assert "huge.csv: larger than 50 MB" in capsys.readouterr().err
    assert [s["name"] for s in store.question_sets()] == ["default"]
    with pytest.raises(qmod.QuestionFileError, match="big.json: larger than 50 MB"):
        parse_bytes(b" " * (qmod.MAX_BYTES + 1), "big.json")


def test_duplicates_are_reported_and_dropped(tmp_path):
    path = tmp_path / "dups.jsonl"
    path.write_text('{"question": "What is Flask?"}\n{"question": "  what IS   flask? "}\n'
                    '{"question": "What is Gunicorn?"}\n')
    parsed = parse_file(path)
    assert [q.question for q in parsed.questions] == ["What is Flask?", "What is Gunicorn?"]
    assert parsed.dropped == ["line 2: duplicate of line 1, dropped"]


def test_csv_export_escapes_formula_cells():
    hostile = [Question("=id", "=HYPERLINK(\"http://x\")?", "+1+2", "-3"), Question("b", "@SUM(A1)?", "ok", "")]
    text = csv_bytes(questions_frame(hostile)).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"id": "'=id", "question": "'=HYPERLINK(\"http://x\")?", "reference": "'+1+2",
                       "category": "'-3"}
    assert rows[1]["question"] == "'@SUM(A1)?" and rows[1]["reference"] == "ok"
    # the XLSX export keeps the text as text: read back, nothing was turned into a formula
    back = parse_bytes(questions_bytes(hostile, "xlsx"), "back.xlsx")
    assert back.questions == hostile
