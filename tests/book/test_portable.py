"""tools/portable.py (`make test-portable`) and the nbval hooks of tests/conftest.py: the machinery that
tries the book's numbers on other CPUs' kernels. Executing chapters is `make test-portable`'s job (and
nbval's, under the baseline kernels, in `make test`); these tests check the pieces on small inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import ROOT, glued_numbers

import portable


def test_each_isa_sets_its_own_variables_and_clears_the_others(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("NUMBA_CPU_NAME", "generic")
    native = portable.isa_env("native")
    assert "ATEN_CPU_CAPABILITY" not in native and "NUMBA_CPU_NAME" not in native
    base = portable.isa_env("baseline")
    assert base["ATEN_CPU_CAPABILITY"] == "default" and base["NUMBA_CPU_NAME"] == "generic"
    assert base["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ValueError, match="isa must be one of"):
        portable.isa_env("avx1024")


@pytest.mark.parametrize("isa, capability", [("baseline", "DEFAULT"), ("avx2", None)])
def test_torch_runs_the_kernels_an_isa_names(isa, capability):
    """The variables reach torch: under "baseline" it reports its default (SSE) kernels."""
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         env=portable.isa_env(isa), capture_output=True, text=True, check=True).stdout.strip()
    if capability is not None:
        assert out == capability
    else:  # AVX2 where the CPU has it; a CPU without AVX2 stays on what it has
        assert out in ("AVX2", "DEFAULT", "ZVECTOR", "VSX", "SVE256", "NO AVX")


def _executed(path, glued: dict, checked: str, error: bool = False):
    nb = nbformat.v4.new_notebook()
    glue_cell = nbformat.v4.new_code_cell("glue(...)")
    prefix = "application/papermill.record/"  # what myst-nb's glue(..., display=False) writes
    glue_cell.outputs = [nbformat.v4.new_output("display_data", data={f"{prefix}text/plain": v},
                                                metadata={"scrapbook": {"name": k, "mime_prefix": prefix}})
                         for k, v in glued.items()]
    check_cell = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(x)")
    check_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=checked)]
    cells = [glue_cell, check_cell]
    if error:
        bad = nbformat.v4.new_code_cell("assert False")
        bad.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="seed 0", traceback=[])]
        cells.append(bad)
    nb.cells = cells
    nbformat.write(nb, path)
    return path


def test_compare_names_every_number_and_output_that_moved(tmp_path):
    native = portable.read(_executed(tmp_path / "a.ipynb", {"ch9_x": "0.83", "ch9_y": "2"}, "0.125\n"))
    other = portable.read(_executed(tmp_path / "b.ipynb", {"ch9_x": "0.84", "ch9_y": "2"}, "0.126\n"))
    failed = portable.read(_executed(tmp_path / "c.ipynb", {"ch9_x": "0.83", "ch9_y": "2"}, "0.125\n", error=True))
    runs = {("ch9", "native"): {"seconds": 1, **native}, ("ch9", "baseline"): {"seconds": 1, **other},
            ("ch9", "avx2"): {"seconds": 1, **failed}}
    table, details = portable.compare(runs)
    assert table[0] == ["chapter", "native", "avx2", "baseline"]
    assert table[1][1] == "ok 1s" and table[1][2] == "FAILS" and "1 numbers + 1 outputs differ" in table[1][3]
    assert any("glued ch9_x: native '0.83', here '0.84'" in d for d in details)
    assert any("checked output of cell 1 differs" in d and "7.9e-03" in d for d in details)
    assert any("[avx2] fails: cell 2: AssertionError: seed 0" in d for d in details)


def test_glued_numbers_reads_myst_nbs_glue_outputs():
    outputs = [{"output_type": "stream", "text": "hello"},
               {"output_type": "display_data", "data": {"text/plain": ["0.", "5"]},
                "metadata": {"scrapbook": {"name": "ch9_half"}}},
               {"output_type": "display_data", "data": {"application/papermill.record/text/plain": "3"},
                "metadata": {"scrapbook": {"name": "ch9_n", "mime_prefix": "application/papermill.record/"}}}]
    assert glued_numbers(outputs) == {"ch9_half": "0.5", "ch9_n": "3"}


def test_make_test_runs_nbval_and_the_masters_under_the_baseline_kernels():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ntest: book"):makefile.index("\ntest-portable:")]
    assert "BNBOOK_NBVAL_ISA=baseline" in recipe and "BNBOOK_MASTERS_ISA=baseline" in recipe
    assert "_build/jupyter_execute/chapters" in recipe
    assert "tools/portable.py" in makefile[makefile.index("\ntest-portable:"):]
