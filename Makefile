# Batch Normalization Explained: build, test and explore the book.
#   make book   set up .venv (pinned packages + bnlib) and the offline browser assets, then build
#               the HTML book into _build/html (every notebook executed; any warning fails)
#   make test   everything `make book` does, then the PDF (as `make pdf`) and the whole test suite
#               (pytest)
#   make test-portable  every chapter under this CPU's, AVX2 and baseline kernels: a chapter-by-ISA
#               table of what ran and which printed numbers changed (tools/portable.py)
#   make test-lab   the JupyterLab browser test on EVERY chapter (tests/book/test_lab.py; `make test`
#               runs it on chapters 1 and 5 only, to keep the suite under 30 minutes on 2 cores)
#   make check  the quick tier: unit tests, doctests and the static checks of an existing build, on both
#               cores, in under 3 minutes (no chapter is executed)
#   make test-unit  only the fast unit tests of bnlib (tests/unit, marker `unit`) and its doctests:
#               no book build, under a minute; the book checks are tests/book (marker `book`)
#   make pdf    the whole book as one PDF, _build/pdf/batch-normalization-explained.pdf: the built HTML
#               pages (`make book` first if _build/html is missing) printed by chromium, offline
#   make assignments  the coursework (coursework/*.ipynb, Otter-Grader masters): student notebooks and
#               autograder zips in _build/coursework/<assignment>/ (otter assign, offline)
#   make lab    JupyterLab in the same environment, to work through the chapters
#   make serve  serve the built book on http://localhost:8000 (any static server will do)
#   make clean  remove the build outputs (_build, _vendor, jupyter caches); keeps .venv

SHELL   := /bin/bash
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.bnbook-installed
VENDOR  := _vendor/.stamp

.PHONY: all book check test test-portable test-lab test-unit pdf lab serve vendor venv clean assignments grade

all: book

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The lock first, then bnlib itself (its ranges hold the lock; pip check proves it). The stamp makes re-runs
# instant until requirements.txt or pyproject.toml change. torch: the lock names PyTorch's CPU index
# (Linux's CPU build lives there). Where pip finds the locked torch without any index, in a local wheel
# folder (--find-links, as on this project's machines), it is installed from there first and the lock
# goes in without that index line: pip asks every index for every package, and an index it cannot
# reach costs about 8 s of retries per package. Elsewhere the lock goes in as it is.
$(STAMP): $(BIN)/python requirements.txt pyproject.toml
	grep -E '^torch==' requirements.txt > $(VENV)/torch-lock.txt
	if $(BIN)/python -m pip install --quiet --no-index --no-deps -r $(VENV)/torch-lock.txt 2>/dev/null; then \
	  echo "torch: installed from the local wheel folder; PyTorch's index is not needed"; \
	  grep -v -E '^--(extra-)?index-url' requirements.txt > $(VENV)/lock.txt; \
	else cp requirements.txt $(VENV)/lock.txt; fi
	$(BIN)/python -m pip install -r $(VENV)/lock.txt
	$(BIN)/python -m pip install --no-build-isolation --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

venv: $(STAMP)

$(VENDOR): package.json package-lock.json tools/vendor.sh tools/widgets-offline.js
	bash tools/vendor.sh

vendor: $(VENDOR)

# A full build every time: --all makes Sphinx re-read every page, so every notebook is
# executed again (execute_notebooks: force acts only on pages Sphinx reads; without --all an
# unchanged chapter would keep the outputs of an older bnlib). _build/html is removed so that
# no page of an earlier build (a renamed chapter) lingers. tools/reader_copy.py then writes each
# chapter's reader's copy (plain Markdown + LaTeX, for Colab and plain Jupyter) where the page's
# download button points, and points the Colab button at it.
book: $(STAMP) $(VENDOR)
	rm -rf _build/html _build/jupyter_execute
	$(BIN)/jupyter-book build -W --keep-going --all .
	$(BIN)/python tools/reader_copy.py

# nbval re-executes the notebooks the book build just executed (_build/jupyter_execute keeps their
# outputs) under ANOTHER CPU's kernels: BNBOOK_NBVAL_ISA=baseline starts nbval's kernels with
# ATen's, oneDNN's, MKL's and numba's baseline (SSE) kernels and one thread (tests/conftest.py,
# tools/portable.py), while the build ran this CPU's best kernels on all cores. Every cell must run
# (every assert holds), the cells marked `# NBVAL_CHECK_OUTPUT` must print exactly what they printed
# in the build, and every number glued into the text must be the build's: the book's numbers are
# tried on two CPU families in every run. The JupyterLab test runs every chapter Run All in a
# browser (minutes each): here chapters 1 and 5 (the first and the newest, both with live widgets);
# `make test-lab` runs all of them.
LAB_CHAPTERS ?= 01,05

test: book
	$(BIN)/python tools/pdf.py
	BNBOOK_NBVAL_ISA=baseline BNBOOK_MASTERS_ISA=baseline BNBOOK_LAB_CHAPTERS=$(LAB_CHAPTERS) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	  $(BIN)/python -m pytest --durations=40 tests bnlib _build/jupyter_execute/chapters

# Every chapter executed under this CPU's kernels, AVX2 and baseline kernels (tools/portable.py): a
# chapter-by-ISA table of what ran and which numbers of the text or checked outputs changed. About
# half an hour on 2 cores. CHAPTERS=03,05 and ISAS=native,baseline narrow it. Then the coursework's
# master solutions graded under this CPU's kernels (`make test` grades them under the baseline's).
test-portable: $(STAMP)
	$(BIN)/python tools/portable.py $(if $(CHAPTERS),--chapters $(CHAPTERS)) $(if $(ISAS),--isas $(ISAS))
	BNBOOK_MASTERS_ISA=native OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests/book/test_coursework.py -k full_marks

test-lab: book
	BNBOOK_LAB_CHAPTERS= OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest tests/book/test_lab.py

# The quick tier, for every change: bnlib's unit tests and doctests on both cores (pytest-xdist), then the
# static checks of the book that read the sources or an existing build (no chapter executed, no browser):
# the committed notebooks are clean, every page and number of the last build is there, the words and
# links of the chapters. Under 3 minutes on 2 cores; `make test` runs everything.
check: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 tests/unit bnlib \
	  tests/book/test_notebooks_clean.py tests/book/test_portable.py \
	  $(if $(wildcard _build/html/index.html),tests/book/test_book.py tests/book/test_chapter_outputs.py tests/book/test_words.py)

# The developer's loop: bnlib's unit tests (tests/unit) and doctests, without building the book.
test-unit: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest tests/unit bnlib

# The book as one PDF (tools/pdf.py): the pages `make book` built, in _toc.yml order, printed by Debian's
# chromium (math, figures, the players' first frames) and joined by pypdf, with an outline (each page
# and its sections) and every link within the book resolved to a page of the PDF. It prints the
# existing HTML (no second Sphinx build, which would execute every notebook again); it builds the book
# only when there is none. Needs chromium (.ci/run installs it); the PDF's test also needs poppler-utils.
pdf: $(STAMP)
	test -f _build/html/index.html || $(MAKE) book
	$(BIN)/python tools/pdf.py

# One folder per assignment: student/<name>.ipynb (no solutions, no hidden tests) to hand out, and
# autograder/ with the solution notebook and <name>-autograder_<date>.zip for `otter run -a`. Nothing
# is executed (run_tests: false in each master): tests/book/test_coursework.py grades the solutions.
# The capstone project (coursework/project.ipynb, its first milestone autograded) is assigned the same way.
ASSIGNMENTS := $(wildcard coursework/ch*.ipynb) $(wildcard coursework/project.ipynb)

assignments: $(STAMP)
	rm -rf _build/coursework
	set -e; for nb in $(ASSIGNMENTS); do \
		name=$$(basename $$nb .ipynb); \
		$(BIN)/otter assign $$nb _build/coursework/$$name; \
	done
	@echo "Student notebooks and autograder zips: _build/coursework/*/{student,autograder}"

# Grade a class offline: make grade NAME=ch2_bn_partition SUBMISSIONS=dir [JOBS=2] (after make assignments);
# writes _build/grades/NAME/scores.csv (one row per submitted notebook) and each results.json.
grade: $(STAMP)
	@test -n "$(NAME)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade NAME=ch2_bn_partition SUBMISSIONS=dir"; exit 2; }
	$(BIN)/python tools/grade_class.py -a $$(ls _build/coursework/$(NAME)/autograder/$(NAME)-autograder_*.zip | tail -1) \
		-s $(SUBMISSIONS) -o _build/grades/$(NAME) -j $(or $(JOBS),1)

lab: $(STAMP)
	$(BIN)/jupyter lab

serve:
	python3 -m http.server --bind 127.0.0.1 --directory _build/html 8000

clean:
	rm -rf _build _vendor .pytest_cache
