"""The coursework (coursework/*.ipynb, Otter-Grader master notebooks) builds and grades, offline.

For every assignment: `otter assign` succeeds; the student notebook holds no solution and no hidden
test; it runs top to bottom with its stubs without killing the kernel; the master's solutions get
full marks from `otter run`; every deliberately wrong submission in tests/book/coursework_submissions/
(NAME_wrong*.ipynb) gets partial marks, and loses them on the question its metadata names; the stub
gets at most a fifth. The capstone project (coursework/project.ipynb) is graded like an assignment.

Everything runs once per session (fixture `graded`): the `otter assign` of every master, its student
notebook and every `otter run` are spread over worker threads (each grading executes a notebook in a
fresh kernel, a few seconds each, most of it importing torch). `BNBOOK_COURSEWORK=NAME[,NAME]` limits
the run to those masters (a developer's loop).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

COURSEWORK = ROOT / "coursework"
SUBMISSIONS = Path(__file__).resolve().parent / "coursework_submissions"
ASSIGNMENTS = sorted(COURSEWORK.glob("ch*.ipynb"))  # one per chapter, in chapter order
PROJECT = COURSEWORK / "project.ipynb"  # the capstone project's first milestone, autograded
MASTERS = ASSIGNMENTS + ([PROJECT] if PROJECT.is_file() else [])
# A developer's loop on one assignment: BNBOOK_COURSEWORK=ch3_smart_init pytest tests/book/test_coursework.py
_ONLY = {n for n in os.environ.get("BNBOOK_COURSEWORK", "").split(",") if n}
NAMES = [p.stem for p in MASTERS if not _ONLY or p.stem in _ONLY]


def _fails(path: Path) -> str:
    """The question a deliberately wrong submission must lose marks on (its metadata says which)."""
    meta = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("coursework", {})
    assert meta.get("fails") and meta.get("bug"), f"{path.name}: metadata.coursework needs fails and bug"
    return meta["fails"]


# Every deliberately wrong submission, NAME_wrong.ipynb or NAME_wrong_KIND.ipynb, with the question it
# must fail (metadata.coursework.fails; metadata.coursework.bug says what is wrong).
WRONG = {p.stem: _fails(p) for p in sorted(SUBMISSIONS.glob("*_wrong*.ipynb"))}


def _assignment_of(kind: str) -> str:
    return kind.rsplit("_wrong", 1)[0]


# Assignments not yet at the issue-16 standard (at least 6 autograded and 1 written question, the
# stub at most 20 %, the student notebook under 60 s). The goal is an empty set.
NOT_YET_DEEPENED: set[str] = set()
DEEPENED = [n for n in NAMES if n not in NOT_YET_DEEPENED]
STUDENT_SECONDS = 60


# The kernels the master solutions are graded under (tools/portable.py, ISAS): `make test` grades them
# under the baseline kernels and everything else (stubs, wrong submissions) under this CPU's own, so
# that every run shows a correct solution getting full marks on another CPU family than the one that
# grades the rest; `make test-portable` grades them natively too.
MASTERS_ISA = os.environ.get("BNBOOK_MASTERS_ISA", "")


def _env(isa: str = "") -> dict[str, str]:
    if isa:
        from portable import isa_env  # tools/ is on sys.path (tests/conftest.py)

        env = isa_env(isa)
    else:
        env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _otter(*args: str, cwd: Path, isa: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otter", *args], cwd=cwd, env=_env(isa), capture_output=True, text=True, timeout=900
    )


def _grade(zip_path: Path, submission: Path, out: Path, isa: str = "") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    proc = _otter("run", "-a", str(zip_path), "-o", str(out), str(submission), cwd=submission.parent, isa=isa)
    results = out / "results.json"
    return {
        "returncode": proc.returncode,
        "log": proc.stdout + proc.stderr,
        "results": json.loads(results.read_text()) if results.is_file() else None,
    }


def _assign(master: Path, dest: Path) -> subprocess.CompletedProcess:
    return _otter("assign", str(master), str(dest), cwd=ROOT)


def _run_student(path: Path) -> nbformat.NotebookNode:
    """The student notebook executed top to bottom, errors allowed (its stubs fail their checks)."""
    import time

    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    nb.metadata["seconds_to_run"] = time.perf_counter() - start
    return nb


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("coursework")
    out: dict[str, dict] = {}
    old_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = _env()["PYTHONPATH"]  # for the kernels nbclient starts
    try:
        _grade_all(base, out)
    finally:
        if old_path is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old_path
    return out


def _grade_all(base: Path, out: dict[str, dict]) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        assigned = {n: pool.submit(_assign, COURSEWORK / f"{n}.ipynb", base / n) for n in NAMES}
        jobs = {}
        for n in NAMES:
            proc = assigned[n].result()
            d = base / n
            zips = sorted((d / "autograder").glob("*.zip"))
            out[n] = {"assign": proc, "dir": d, "zip": zips[0] if zips else None}
            if proc.returncode != 0 or not zips:
                continue
            jobs[n, "master"] = pool.submit(_grade, zips[0], d / "autograder" / f"{n}.ipynb", base / f"{n}-res-master",
                                           MASTERS_ISA)
            if n in DEEPENED:
                stub = d / "student" / f"{n}.ipynb"
                jobs[n, "stub"] = pool.submit(_grade, zips[0], stub, base / f"{n}-res-stub")
            for kind in (k for k in WRONG if _assignment_of(k) == n):
                sub_dir = base / kind
                sub_dir.mkdir()
                shutil.copy(SUBMISSIONS / f"{kind}.ipynb", sub_dir / f"{n}.ipynb")
                jobs[n, kind] = pool.submit(_grade, zips[0], sub_dir / f"{n}.ipynb", base / f"{kind}-res")
        for (n, kind), job in jobs.items():
            out[n][kind] = job.result()
    # The student notebooks run one at a time, with nothing else running, so that the time each
    # takes is what a student would see, not the grading's load (STUDENT_SECONDS).
    for n in NAMES:
        if out[n]["zip"] is not None and out[n]["assign"].returncode == 0:
            out[n]["student"] = _run_student(out[n]["dir"] / "student" / f"{n}.ipynb")


def _questions(results: dict) -> dict[str, dict]:
    return {t["name"]: t for t in results["tests"] if t.get("max_score") is not None}


def _source_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _unparsed(line: str) -> str | None:
    """A line as Otter rewrites it, or None for a line that is not a statement alone (a for header)."""
    try:
        return ast.unparse(ast.parse(line))
    except SyntaxError:
        return None


def _secrets(master: Path) -> tuple[list[str], list[str]]:
    """The master's solution lines (code and written) and its hidden-test lines not also public."""
    nb = nbformat.read(master, as_version=4)
    solutions, hidden, public = [], [], set()
    in_solution = in_tests = False
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "raw":
            first = src.strip().splitlines()[0] if src.strip() else ""
            in_solution = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(first, in_solution)
            in_tests = {"# BEGIN TESTS": True, "# END TESTS": False}.get(first, in_tests)
            continue
        if cell.cell_type == "markdown" and in_solution:
            solutions += [line for line in _source_lines(src) if len(line) > 20]
        if cell.cell_type != "code":
            continue
        if in_tests:
            lines = _source_lines(src)
            if lines and lines[0].lstrip("# ").upper().startswith("HIDDEN"):
                hidden += lines[1:]
            else:
                public.update(lines)
            continue
        inside = False
        for line in _source_lines(src):
            if line.startswith("# BEGIN SOLUTION"):
                inside = True
            elif line.startswith("# END SOLUTION"):
                inside = False
            elif inside and not line.startswith("#"):
                solutions.append(line)
            elif line.endswith("# SOLUTION"):
                solutions.append(line[: -len("# SOLUTION")].strip())
    hidden_only = [line for line in hidden if line not in public]
    # Otter writes test code through ast.unparse (1e-3 becomes 0.001): search for both spellings.
    hidden_only += [_unparsed(line) for line in hidden_only if _unparsed(line)]
    # Lines the question text hands out on purpose (the experiment's recipe) are no leak.
    given = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    solutions = [line for line in solutions if f"`{line}`" not in given]
    return solutions, hidden_only


# Chapters in the book whose assignment is still to be written (coursework/index.md says so).
PENDING = set()


def test_every_chapter_has_an_assignment():
    chapters = sorted(p.stem for p in (ROOT / "chapters").glob("0*.ipynb"))
    with_assignment = [c for c in chapters if c not in PENDING]
    names = [p.stem for p in ASSIGNMENTS]
    assert [n.split("_", 1)[1] for n in names] == [c.split("_", 1)[1] for c in with_assignment], (names, chapters)
    assert PENDING <= set(chapters), "a pending chapter was renamed: update PENDING"
    # Each assignment (and the project) has its wrong submission, and every wrong one its assignment.
    masters = [p.stem for p in MASTERS]
    assert sorted({_assignment_of(k) for k in WRONG}) == sorted(masters), (sorted(WRONG), masters)
    assert NOT_YET_DEEPENED <= set(masters)


@pytest.mark.parametrize("name", NAMES)
def test_otter_assign_succeeds(graded, name):
    info = graded[name]
    assert info["assign"].returncode == 0, info["assign"].stdout + info["assign"].stderr
    assert (info["dir"] / "student" / f"{name}.ipynb").is_file()
    assert info["zip"] is not None and info["zip"].stat().st_size > 0


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_has_no_solution_and_no_hidden_test(graded, name):
    student_dir = graded[name]["dir"] / "student"
    text = "\n".join(p.read_text(errors="replace") for p in student_dir.rglob("*") if p.is_file())
    # The notebook is JSON: search its decoded cell sources and metadata too.
    nb = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
    text += "\n".join(c.source for c in nb.cells) + json.dumps(nb.metadata)
    solutions, hidden = _secrets(COURSEWORK / f"{name}.ipynb")
    assert solutions and hidden, "the master should have solution lines and hidden tests"
    leaked = [line for line in solutions + hidden if line in text]
    assert not leaked, f"found in the student notebook: {leaked}"
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN TESTS", "# HIDDEN"):
        assert marker not in "\n".join(c.source for c in nb.cells), marker
    cases = [c for q in nb.metadata["otter"]["tests"].values() for s in q["suites"] for c in s["cases"]]
    assert cases and not any(c["hidden"] for c in cases)


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_runs_with_its_stubs(graded, name):
    nb = graded[name]["student"]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not any("DeadKernel" in (e.ename + str(e.evalue)) for e in errors)
    # The set-up cells (otter's init, the imports) run; only stubs may fail their checks.
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.output_type != "error" for c in code[:2] for o in c.outputs), code[:2]
    assert all(c.execution_count is not None for c in code), "every cell must have been executed"


@pytest.mark.parametrize("name", NAMES)
def test_master_solutions_get_full_marks(graded, name):
    res = graded[name]["master"]
    assert res["results"] is not None, res["log"]
    questions = _questions(res["results"])
    assert questions, res["results"]
    short = {q: (t["score"], t["max_score"]) for q, t in questions.items() if t["score"] < t["max_score"]}
    assert not short, f"graded under the {MASTERS_ISA or 'native'} kernels: {short}"



def test_the_book_never_publishes_the_masters():
    """The masters hold the solutions: excluded from the book build, absent from a built book."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert "coursework/*.ipynb" in config["exclude_patterns"]
    toc = (ROOT / "_toc.yml").read_text()
    assert "coursework/index" in toc and not any(f"coursework/{n}" in toc for n in NAMES)
    built = ROOT / "_build" / "html"
    if built.is_dir():
        assert not list((built / "coursework").glob("ch*"))
        assert not list((built / "_sources" / "coursework").glob("*.ipynb"))


CONTROL = {chr(c) for c in [*range(0x00, 0x20), 0x7F]} - {"\n", "\t"}
NOTEBOOKS = sorted(
    [*(ROOT / "chapters").glob("*.ipynb"), *COURSEWORK.glob("*.ipynb"), *SUBMISSIONS.glob("*.ipynb")]
)


def _texts(nb: dict):
    """Every cell source and every output text of a notebook (as JSON: lists of lines or strings)."""

    def join(v):
        return "".join(v) if isinstance(v, list) else (v if isinstance(v, str) else "")

    for i, cell in enumerate(nb["cells"]):
        yield f"cell {i} source", join(cell.get("source", ""))
        for j, out in enumerate(cell.get("outputs", [])):
            yield f"cell {i} output {j} text", join(out.get("text", ""))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    yield f"cell {i} output {j} {mime}", join(value)
            # Tracebacks carry ANSI colour codes (ESC) by design; their message must not.
            yield f"cell {i} output {j} evalue", join(out.get("evalue", ""))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_hold_no_control_characters(path):
    """A Python string "\\b" or "\\r" written into LaTeX once became a backspace in a solution."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = [
        (where, repr(text[max(0, k - 20) : k + 20]))
        for where, text in _texts(nb)
        for k, ch in enumerate(text)
        if ch in CONTROL
    ]
    assert not found, found[:5]


def test_grade_class_writes_one_csv_for_a_folder_of_submissions(graded, tmp_path):
    """tools/grade_class.py (make grade) grades a folder offline: the right and the wrong submission."""
    import csv

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from grade_class import grade_class
    finally:
        sys.path.pop(0)
    name = "ch2_bn_partition"
    if name not in NAMES:
        pytest.skip(f"BNBOOK_COURSEWORK leaves {name} out")
    info = graded[name]
    folder = tmp_path / "submissions"
    folder.mkdir()
    shutil.copy(info["dir"] / "autograder" / f"{name}.ipynb", folder / "right.ipynb")
    shutil.copy(SUBMISSIONS / f"{name}_wrong.ipynb", folder / "wrong.ipynb")
    (folder / "broken.ipynb").write_text("not a notebook")
    csv_path = grade_class(info["zip"], folder, tmp_path / "out", jobs=2)
    rows = {r["submission"]: r for r in csv.DictReader(csv_path.open())}
    assert sorted(rows) == ["broken.ipynb", "right.ipynb", "wrong.ipynb"]
    right, wrong = rows["right.ipynb"], rows["wrong.ipynb"]
    assert right["error"] == "" and float(right["total"]) == float(right["max_total"]) > 0
    assert wrong["error"] == "" and 0 < float(wrong["total"]) < float(wrong["max_total"])
    assert rows["broken.ipynb"]["error"] and rows["broken.ipynb"]["total"] == ""
    assert float(wrong[WRONG[f"{name}_wrong"]]) < float(right[WRONG[f"{name}_wrong"]])


WRONG_HERE = sorted(k for k in WRONG if _assignment_of(k) in NAMES)


@pytest.mark.parametrize("kind", WRONG_HERE)
def test_each_plausible_wrong_answer_gets_partial_marks(graded, kind):
    """A biased/unbiased variance mix-up, statistics over the wrong axis, a sign error: each loses marks
    on the question its metadata names, and only partly: the rest of the submission is right."""
    res = graded[_assignment_of(kind)][kind]
    assert res["results"] is not None, res["log"]
    questions = _questions(res["results"])
    score = sum(t["score"] for t in questions.values())
    total = sum(t["max_score"] for t in questions.values())
    assert 0 < score < total, (score, total)
    failing = questions[WRONG[kind]]
    assert failing["score"] < failing["max_score"] and "failed" in failing["output"].lower()


@pytest.mark.parametrize("name", DEEPENED)
def test_stub_gets_at_most_a_fifth_and_runs_quickly(graded, name):
    res = graded[name]["stub"]
    assert res["results"] is not None, res["log"]
    questions = _questions(res["results"])
    score = sum(t["score"] for t in questions.values())
    total = sum(t["max_score"] for t in questions.values())
    assert total > 0 and score <= 0.2 * total, (score, total)
    master = nbformat.read(COURSEWORK / f"{name}.ipynb", as_version=4)
    heads = [c.source for c in master.cells if c.cell_type == "raw" and c.source.startswith("# BEGIN QUESTION")]
    assert sum("manual: true" not in h for h in heads) >= 6 and sum("manual: true" in h for h in heads) >= 1
    assert all("*Rubric" in c.source for i, c in enumerate(master.cells[1:], 1)
               if "manual: true" in master.cells[i - 1].source)
    seconds = graded[name]["student"].metadata["seconds_to_run"]
    assert seconds < STUDENT_SECONDS, f"the student notebook took {seconds:.0f} s with its stubs"
