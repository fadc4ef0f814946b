"""Results at any size: a finished run of N questions × 2 modes × 2 metrics, read and shown.

    python bench/results_scale.py [--questions 10000] [--baseline ea13ce6] [--no-browser]
                                  [--screenshot results.png] [--home DIR]
                                  [--streamlit-option server.fileWatcherType=auto]

Writes a synthetic finished run through the project's own store (answers and scores in
batches; text, passages and the judge's details of realistic size), then prints, each beside
its reference: reading the run as a frame and as the full summary, `stats.findings` (drawing
its bootstrap intervals and signed-rank tests, and reading them back from the store), `show
--json` (the run's first reader, then a later one; seconds and bytes), the HTML report (drawing
its per-category comparison, then after the worker's `draw_once`; seconds and bytes), and the Results page
in headless Chromium (navigation → last chart drawn, DOM nodes, websocket bytes, then the
"Per question" tab) with the server's peak RSS. The page is also timed on a 30-question run
in the same browser, first (the page's imports and Plotly's bundle load then) and again after
the large run: what the browser and Plotly cost at any size, the floor of the figure.
The CLI figures include the CLI's start-up, printed on its own.

With `--baseline REV` the core functions and the CLI of that commit (extracted with
`git archive`) run on the same workspace in the same session, so the ratios are measured,
not remembered. The old Results page is not re-measured (it took 91 s and 3-4 GB): its
reference figures are printed instead.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# figures measured before this work (issue 14, a quiet machine, 10,000 questions)
REFERENCE = {"summary": 3.7, "findings": 9.5, "show": 22.0, "show_mb": 99.0, "report": 26.0, "report_mb": 10.0,
             "page": 91.0, "page_rss_gb": 4.0, "page_nodes": 147_000, "page_ws_mb": 15.0, "tab": 253.0}
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
WORDS = ("request session cookie login flask gunicorn worker sqlite cursor commit rollback blueprint route "
         "template config header token timeout retry adapter proxy stream upload json schema migration").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_run(store, n: int, seed: int = 14) -> str:
    """A finished synthetic run of `n` questions in both modes, scored on both metrics."""
    from core.models import DEFAULT_METRICS, MODES, Answer, Passage, Question, Run, Score
    from core.runs import new_run_id
    from core.store import now

    rng = random.Random(seed)
    name = f"scale{n}"
    questions = [Question(f"q{i:05d}", f"{sentence(rng, 10)[:-1]} ({i})?", category=f"topic-{i % 12}")
                 for i in range(n)]
    qs = store.save_question_set(name, questions, origin="bench/results_scale.py")
    run = Run(id=new_run_id(), created_at=now(), kb="bench", question_set=name, question_set_version=qs.version,
              modes=MODES, metrics=DEFAULT_METRICS, answer_model="endpoint:bench-model",
              judge_model="endpoint:bench-judge",
              top_k=4, search_mode="hybrid", status="done")
    store.create_run(run)
    batch = 1000
    for start in range(0, n, batch):
        answers, scores = [], []
        for q in questions[start:start + batch]:
            passages = tuple(Passage(f"docs::{q.id}.md::{k}", " ".join(sentence(rng, 12) for _ in range(6)),
                                     "docs", f"{q.id}.md", "Guide > Usage", round(rng.random(), 4)) for k in range(4))
            base = rng.betavariate(2, 3)
            for mode in MODES:
                rag = mode == "rag"
                answers.append(Answer(run.id, q.id, mode, q.question, " ".join(sentence(rng, 14) for _ in range(6)),
                                      passages if rag else (), "bench-model", rng.uniform(0.5, 3.0),
                                      rng.randint(200, 900), rng.randint(40, 200)))
                for metric in DEFAULT_METRICS:
                    if rng.random() < 0.02:
                        scores.append(Score(run.id, q.id, mode, metric, None, "the judge found no statements",
                                            {}, "endpoint:bench-judge", 0.4))
                        continue
                    if metric == "faithfulness":
                        verdicts = [{"statement": sentence(rng, 8), "reason": sentence(rng, 6),
                                     "verdict": int(rng.random() < (0.8 if rag else 0.5))} for _ in range(4)]
                        value = sum(v["verdict"] for v in verdicts) / 4
                        details = {"statements": [v["statement"] for v in verdicts], "verdicts": verdicts,
                                   "evidence": [p.id for p in passages]}
                    else:
                        value = min(1.0, max(0.0, base + rng.gauss(0.08 if rag else 0.0, 0.15)))
                        details = {"generated_questions": [{"question": sentence(rng, 9), "noncommittal": 0}
                                                           for _ in range(3)]}
                    scores.append(Score(run.id, q.id, mode, metric, value, "", details, "endpoint:bench-judge",
                                        rng.uniform(0.2, 2.0)))
        store.add_answers(answers)
        store.add_scores(scores)
    store.optimize("answers", "scores", "questions")
    return run.id


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cli(code_dir: Path, home: Path, *args: str) -> tuple[float, bytes]:
    env = dict(os.environ, RAGEVAL_HOME=str(home), PYTHONPATH=str(code_dir))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", *args], cwd=code_dir, env=env, capture_output=True)
    seconds = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"{args}: {out.stderr.decode()[-2000:]}")
    return seconds, out.stdout


_OLD_CORE = """
import sys, time, json, resource
from core.config import load_settings
from core.workspace import open_workspace
from core import runs, stats
store = open_workspace(load_settings())
t0 = time.perf_counter(); s = runs.summary(store, sys.argv[1]); t_summary = time.perf_counter() - t0
df = stats.score_frame(s)
t0 = time.perf_counter(); stats.findings(df, list(s["run"]["metrics"])); t_findings = time.perf_counter() - t0
print(json.dumps({"summary": t_summary, "findings": t_findings,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def baseline(rev: str, home: Path, run_id: str, work: Path) -> dict:
    """The core functions and CLI of commit `rev`, on the same workspace."""
    old = work / f"old-{rev}"
    if not old.exists():
        old.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    env = dict(os.environ, RAGEVAL_HOME=str(home), PYTHONPATH=str(old))
    out = subprocess.run([sys.executable, "-c", _OLD_CORE, run_id], cwd=old, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["show"], shown = cli(old, home, "show", run_id, "--json")
    figures["show_mb"] = len(shown) / 1e6
    report = work / "old-report.html"
    figures["report"], _ = cli(old, home, "report", run_id, "--out", str(report))
    figures["report_mb"] = report.stat().st_size / 1e6
    return figures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_gb(pid: int) -> float:
    """VmHWM: the process's peak resident set, as the kernel counted it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6
    return float("nan")


def browse(home: Path, run_id: str, small_id: str, screenshot: Path | None, options: tuple[str, ...] = ()) -> dict:
    """The Results page in headless Chromium: navigation → every chart drawn, on a small run
    first (what the browser and Plotly cost at any size), then on the large one, cold (its
    results not yet read by the server) and again warm (a reload)."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    log = open(home / "streamlit.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         *(f"--{o}" for o in options)],
        cwd=ROOT, env=dict(os.environ, RAGEVAL_HOME=str(home)), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    out = {}
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("streamlit did not start") from None
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(WATCH_CHARTS)
            received = [0]
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.__setitem__(
                0, received[0] + len(payload))))
            page.goto(f"{url}/settings")  # the server's imports and the workspace: not what is measured
            page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60_000)
            settle(page)

            def results_page(rid: str) -> tuple[float, float]:
                received[0] = 0
                t0 = time.perf_counter()
                page.goto(f"{url}/results?run={rid}")
                return finished(page, t0)

            out["page_small_first"], _ = results_page(small_id)  # the page's imports, Plotly's bundle
            out["page"], out["page_done"] = results_page(run_id)
            out["page_nodes"] = page.evaluate("document.getElementsByTagName('*').length")
            out["page_ws_mb"] = received[0] / 1e6
            out["page_small"], out["page_small_done"] = results_page(small_id)  # 30 questions: the floor
            out["page_warm"], _ = results_page(run_id)
            page.goto(f"{url}/settings")
            page.wait_for_selector("h1")
            settle(page)
            # as a person moves in the app: from another page, a click on Results in the sidebar (the
            # browser keeps Streamlit's and Plotly's scripts; the page opens on the latest run, this one)
            def from_sidebar() -> tuple[float, float]:
                page.evaluate("window.__charts.restart()")
                t0 = time.perf_counter()
                page.get_by_role("link", name="Results").click()
                took = finished(page, t0)
                assert run_id in page.url, f"the sidebar opened {page.url}, not the run of {run_id}"
                return took

            # the first chart this document draws loads Plotly's scripts; later visits have them
            out["page_nav"], out["page_nav_done"] = from_sidebar()
            page.get_by_role("link", name="Settings").click()
            page.wait_for_selector("h1:has-text('Settings')")
            settle(page)
            out["page_nav_again"], out["page_nav_again_done"] = from_sidebar()
            if screenshot:
                tall(page, screenshot)
            page.evaluate("window.__charts.restart()")
            t0 = time.perf_counter()
            page.get_by_role("tab", name="Per question").click()
            out["tab"], _ = finished(page, t0)
            if screenshot:
                tall(page, screenshot.with_name(screenshot.stem + "-per-question.png"))
            browser.close()
        out["page_rss_gb"] = peak_rss_gb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return out


def tall(page, path: Path) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its own container, so the
    window is made as tall as the content first."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 3000")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 100, 12_000)})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


# In every document of the page, from its first line: when the last new Plotly chart was drawn
# (ms since `restart`, or since the navigation began). Streamlit's script goes on after its charts
# (the drill-down below them), so "last chart drawn" and "page finished" are two figures.
WATCH_CHARTS = """
window.__charts = {t0: 0, last: null, seen: new WeakSet(),
                   restart() { this.t0 = performance.now(); this.last = null; }};
(function watch() {
  for (const svg of document.querySelectorAll('.js-plotly-plot .main-svg')) {
    if (!window.__charts.seen.has(svg)) { window.__charts.seen.add(svg); window.__charts.last = performance.now(); }
  }
  requestAnimationFrame(watch);
})();
"""


def finished(page, t0: float) -> tuple[float, float]:
    """After a navigation begun at `t0` (perf_counter): seconds to its last chart drawn, and to
    the page finished (Streamlit's script done and every chart drawn)."""
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=600_000)
    settle(page)
    charts_drawn(page)
    done = time.perf_counter() - t0
    last = page.evaluate("window.__charts.last === null ? null : (window.__charts.last - window.__charts.t0) / 1000")
    return (done if last is None else last), done


def settle(page) -> None:
    """Until Streamlit has finished the script run (its status widget gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)


def charts_drawn(page) -> None:
    """Until every Plotly chart on the page has drawn its SVG."""
    page.wait_for_function("[...document.querySelectorAll('.js-plotly-plot')].every("
                           "e => e.querySelector('.main-svg'))", timeout=600_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--home", help="workspace to use (kept); default a temporary one")
    ap.add_argument("--baseline", metavar="REV", help="also time the core functions and CLI of this commit")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--screenshot", type=Path, help="save the Results page as this PNG")
    ap.add_argument("--streamlit-option", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to `streamlit run` as --KEY=VALUE, e.g. server.fileWatcherType=auto "
                         "(the source watcher this app turns off)")
    args = ap.parse_args()

    work = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="results-scale-"))
    os.environ["RAGEVAL_HOME"] = str(work)
    from core import results, runs, stats
    from core.config import load_settings
    from core.workspace import open_workspace

    store = open_workspace(load_settings())
    small_id = write_run(store, 30, seed=15)
    time.sleep(1.1)  # runs are ordered by their creation, to the second
    seconds, run_id = timed(lambda: write_run(store, args.questions))  # the latest: what Results opens on
    print(f"workspace {work}: run {run_id}, {args.questions} questions × 2 modes × 2 metrics written in "
          f"{seconds:.1f} s", flush=True)

    new = {}
    new["startup"], _ = cli(ROOT, work, "runs", "--json")  # what every CLI figure below includes
    new["frame"], res = timed(lambda: results.load(store, run_id, findings=False))
    new["summary"], _ = timed(lambda: runs.summary(store, run_id))
    new["findings"], _ = timed(lambda: stats.findings(res.frame, list(res.run.metrics)))
    # the first reader of a run draws its intervals and tests and keeps them in the store; every
    # reader after reads them. This run was written directly: its worker, when a run ends, draws
    # them (results.draw_once), the comparison per category the report and a page show included
    new["show_first"], _ = cli(ROOT, work, "show", run_id, "--json")
    new["findings_kept"], _ = timed(lambda: stats.findings(res.frame, list(res.run.metrics), cache=store.intervals))
    new["show"], shown = cli(ROOT, work, "show", run_id, "--json")
    new["show_mb"] = len(shown) / 1e6
    report = work / "report.html"
    new["report_first"], _ = cli(ROOT, work, "report", run_id, "--out", str(report))
    new["draw_once"], _ = timed(lambda: results.draw_once(store, run_id))
    new["report"], _ = cli(ROOT, work, "report", run_id, "--out", str(report))
    new["report_mb"] = report.stat().st_size / 1e6
    if not args.no_browser:
        new.update(browse(work, run_id, small_id, args.screenshot, tuple(args.streamlit_option)))

    old = dict(REFERENCE)
    source = "reference (issue 14)"
    if args.baseline:
        print(f"timing {args.baseline} on the same run…", flush=True)
        old.update(baseline(args.baseline, work, run_id, work))
        source = f"{args.baseline}, this session (page: reference)"
    rows = [("CLI start-up: `runs --json` (s)", "startup", None), ("run read as a frame (s)", "frame", None), ("runs.summary, full items (s)", "summary", "summary"),
            ("stats.findings, drawing its intervals and tests (s)", "findings", "findings"),
            ("  read from the store (s)", "findings_kept", "findings"),
            ("show --json, the run's first reader (s)", "show_first", "show"),
            ("show --json, findings in the store (s)", "show", "show"),
            ("show --json (MB)", "show_mb", "show_mb"),
            ("report html, per-category comparison drawn (s)", "report_first", "report"),
            ("the worker's draw_once at the run's end (s)", "draw_once", None),
            ("report html, after it (s)", "report", "report"),
            ("report html (MB)", "report_mb", "report_mb"),
            ("Results page first opened, 30 questions (s)", "page_small_first", None),
            ("Results page, navigation → last chart (s)", "page", "page"),
            ("  → page finished, its script done (s)", "page_done", None),
            ("  the same for the 30-question run (s)", "page_small", None),
            ("  → page finished (s)", "page_small_done", None),
            ("  its DOM nodes", "page_nodes", "page_nodes"), ("  its websocket (MB)", "page_ws_mb", "page_ws_mb"),
            ("  again, the server's cache warm (s)", "page_warm", None),
            ("  from the sidebar, in the open app (s)", "page_nav", None),
            ("  → page finished (s)", "page_nav_done", None),
            ("  again from the sidebar, Plotly's scripts loaded (s)", "page_nav_again", None),
            ("  → page finished (s)", "page_nav_again_done", None),
            ("  server peak RSS (GB)", "page_rss_gb", "page_rss_gb"),
            ("'Per question' tab → last chart drawn (s)", "tab", "tab")]
    print(f"\n{'':54}{'now':>10}{'before':>10}{'ratio':>8}   before = {source}")
    for label, key, ref in rows:
        if key not in new:
            continue
        before = old.get(ref) if ref else None
        ratio = f"{new[key] / before:8.3f}" if before else ""
        fmt = (lambda v: f"{v:10,.0f}") if key == "page_nodes" else (lambda v: f"{v:10.2f}")
        print(f"{label:54}{fmt(new[key])}{fmt(before) if before is not None else '':>10}{ratio}")
    print(f"\n{args.questions} questions; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
