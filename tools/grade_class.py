"""Grade a whole class offline: every submitted notebook in a folder, one CSV of scores.

Usage (from the repository root, in the book's environment)::

    python tools/grade_class.py --autograder _build/coursework/NAME/autograder/NAME-autograder_DATE.zip \
        --submissions DIR --out grades/NAME [--jobs 2]

or ``make grade NAME=ch2_bn_partition SUBMISSIONS=DIR`` (after ``make assignments``).

Each ``DIR/*.ipynb`` is graded by ``otter run`` (no Docker, no network): the notebook is executed in
a fresh kernel and the public and hidden tests run. Its ``results.json`` lands in ``OUT/<stem>/`` and
``OUT/scores.csv`` gets one row per submission: the file name, one column per autograded question,
the autograded total and its maximum, and ``error`` (non-empty where grading failed: the row's
scores are then blank). The manually graded (written) questions are not in the CSV; add their
points from the rubrics in the master notebook.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def grade_one(autograder: Path, submission: Path, out: Path, timeout: int = 600) -> dict:
    """Run ``otter run`` on one notebook; return its per-question scores or an error message."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The autograder imports bnlib: the repository must be importable in the grading kernel.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "otter", "run", "-a", str(autograder.resolve()), "-o", str(out.resolve()),
         str(submission.resolve())],
        cwd=submission.parent, env=env, capture_output=True, text=True, timeout=timeout,
    )
    results = out / "results.json"
    if not results.is_file():
        return {"error": f"otter run exited {proc.returncode}: {(proc.stdout + proc.stderr)[-300:]}".replace("\n", " ")}
    tests = [t for t in json.loads(results.read_text())["tests"] if t.get("max_score") is not None]
    return {"scores": {t["name"]: (t["score"], t["max_score"]) for t in tests}, "error": ""}


def grade_class(autograder: Path, submissions: Path, out: Path, jobs: int = 1) -> Path:
    """Grade every ``submissions/*.ipynb``; write and return ``out/scores.csv``."""
    notebooks = sorted(submissions.glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"no .ipynb in {submissions}")
    if not autograder.is_file():
        raise ValueError(f"autograder zip not found: {autograder}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        graded = list(pool.map(lambda nb: grade_one(autograder, nb, out / nb.stem), notebooks))
    questions = sorted({q for g in graded for q in g.get("scores", {})}, key=lambda q: (len(q), q))
    csv_path = out / "scores.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", *questions, "total", "max_total", "error"])
        for nb, g in zip(notebooks, graded):
            s = g.get("scores", {})
            if not s:
                writer.writerow([nb.name, *[""] * len(questions), "", "", g["error"]])
                continue
            row = [s[q][0] if q in s else "" for q in questions]
            writer.writerow([nb.name, *row, round(sum(v[0] for v in s.values()), 6),
                             round(sum(v[1] for v in s.values()), 6), ""])
    return csv_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--autograder", "-a", type=Path, required=True, help="the autograder zip of otter assign")
    parser.add_argument("--submissions", "-s", type=Path, required=True, help="folder of submitted .ipynb")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output folder (results and scores.csv)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded at once (default 1)")
    args = parser.parse_args(argv)
    path = grade_class(args.autograder, args.submissions, args.out, args.jobs)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
