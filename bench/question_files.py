"""Question-file benchmark: a set at the row cap (50,000 questions) exported and read back in
every format, with the time of each and a check that the questions came back exactly.

    python bench/question_files.py [--rows 50000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.export import QUESTION_FORMATS, questions_bytes  # noqa: E402
from core.models import Question  # noqa: E402
from core.questions import parse_bytes  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=50_000)
    rows = p.parse_args().rows
    qs = [Question(f"q{i}", f'Question {i}: how does "Flask", with a comma, handle\na line break?', "ref", "cat")
          for i in range(rows)]
    print(f"{rows} questions")
    for fmt in QUESTION_FORMATS:
        t0 = time.perf_counter()
        data = questions_bytes(qs, fmt)
        t1 = time.perf_counter()
        parsed = parse_bytes(data, f"bench.{fmt}")
        t2 = time.perf_counter()
        same = "exact" if parsed.questions == qs else "DIFFERENT"
        print(f"{fmt:<6} {len(data) / 1e6:5.1f} MB  export {t1 - t0:5.2f} s  read+validate {t2 - t1:5.2f} s "
              f"({rows / (t2 - t1):,.0f} rows/s)  round trip {same}")


if __name__ == "__main__":
    main()
