"""Publishing (.github/workflows/book.yml): the README's commands, the site on GitHub Pages.

Checked without GitHub: the workflow parses; its build and test step is the README's command
(`bash .ci/run`, which runs `make test`: the book, the PDF, the suite); it publishes `_build/html`
from `main` only, to the branch the chapter pages' Colab buttons open the reader's copies from
(tools/reader_copy.py's PAGES_BRANCH), with the PDF on the site; and it names no repository (the one
place is `repository:` in _config.yml).
"""

from __future__ import annotations

import re
import sys

import yaml

from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
sys.path.insert(0, str(ROOT / "tools"))
from reader_copy import PAGES_BRANCH  # noqa: E402


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf8"))


def _steps() -> list[dict]:
    jobs = _workflow()["jobs"]
    assert len(jobs) == 1, "one job: build, test, publish"
    return next(iter(jobs.values()))["steps"]


def test_the_build_and_test_steps_are_the_readmes():
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    runs = [step["run"].strip() for step in _steps() if "run" in step]
    assert runs[0] == "bash .ci/run", "the workflow's first command is not the README's CI command"
    assert "bash .ci/run" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf8")
    assert re.search(r"^exec make test$", ci, re.M), ".ci/run no longer runs `make test`"
    makefile = (ROOT / "Makefile").read_text(encoding="utf8")
    test_recipe = makefile.split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    assert test_recipe.startswith("book") and "tools/pdf.py" in test_recipe and "pytest" in test_recipe
    assert "tools/reader_copy.py" in makefile.split("\nbook: ", 1)[1].split("\n\n", 1)[0]


def test_it_publishes_the_site_from_main_to_the_colab_branch():
    workflow = _workflow()
    triggers = workflow.get(True, workflow.get("on"))  # YAML 1.1 reads `on` as True
    assert triggers["push"]["branches"] == ["main"]
    publish = [s for s in _steps() if str(s.get("uses", "")).startswith("peaceiris/actions-gh-pages")]
    assert len(publish) == 1
    step = publish[0]
    assert step["with"]["publish_dir"] in ("./_build/html", "_build/html")
    assert step["with"]["publish_branch"] == PAGES_BRANCH
    assert "refs/heads/main" in step["if"] and "push" in step["if"]
    assert workflow["permissions"]["contents"] == "write"
    pdf = [s["run"] for s in _steps() if "run" in s and "batch-normalization-explained.pdf" in s["run"]]
    assert any("_build/html" in run for run in pdf), "the PDF is not put on the site"


def test_the_repository_is_named_in_one_place():
    text = WORKFLOW.read_text(encoding="utf8")
    assert "github.com/" not in text and "OWNER" not in text
