"""Run every chapter under other CPUs' kernels and say what changes: `make test-portable`.

Different CPUs run different kernels (torch's ATen picks AVX-512, AVX2 or baseline code at run
time, oneDNN and MKL do the same, numba compiles for the host), and float32 training turns a last-bit
difference into a different network after a few hundred steps. The book's contract (execution.md,
"What a number means across machines") is that every check holds and every printed digit is the same
on any CPU. This script tests the contract on one machine by forcing the kernels of other CPUs:

    native    nothing forced: the best kernels this CPU has
    avx2      ATen, oneDNN and MKL limited to AVX2
    baseline  ATen's default (SSE) kernels, oneDNN SSE4.1, MKL SSE4.2, numba for a generic x86-64,
              one thread: the oldest CPU the wheels support

Each chapter is executed top to bottom once per instruction set (nbclient, the kernel started with
those variables), and compared with the native run: whether every cell ran (every assert held),
the numbers glued into the text, and the outputs of the cells marked `# NBVAL_CHECK_OUTPUT`. It
prints a chapter-by-ISA table and, below it, every number or output that differs.

    .venv/bin/python tools/portable.py                      # all chapters, all three ISAs
    .venv/bin/python tools/portable.py --chapters 05 --isas native,baseline
    .venv/bin/python tools/portable.py --spread             # also the largest float differences

The executed copies are kept in _build/portable/<isa>/ (for a closer look). On a machine without
AVX-512, "native" and "avx2" run the same kernels; on one with AVX-512 they differ.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
OUT = ROOT / "_build" / "portable"

# The variables that pick each library's kernels (torch reads ATEN_CPU_CAPABILITY at import).
ISAS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "NUMBA_CPU_NAME": "generic",
                 "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}
# Every variable any ISA sets, removed first, so that "native" means native even when the caller
# exported one of them.
_ALL_VARS = sorted({k for env in ISAS.values() for k in env})
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def isa_env(isa: str) -> dict[str, str]:
    """The process environment of a run under ``isa`` (see ISAS)."""
    if isa not in ISAS:
        raise ValueError(f"isa must be one of {sorted(ISAS)}, not {isa!r}")
    env = {k: v for k, v in os.environ.items() if k not in _ALL_VARS}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.update(ISAS[isa])
    return env


def execute(chapter: Path, isa: str, timeout: int) -> dict:
    """Run ``chapter`` under ``isa`` in a fresh kernel; its summary (status, glued numbers, outputs)."""
    out = OUT / isa / chapter.name
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, __file__, "--one", str(chapter), str(out), str(timeout)],
                          env=isa_env(isa), capture_output=True, text=True)
    summary = {"chapter": chapter.stem, "isa": isa, "seconds": round(time.monotonic() - start, 1)}
    if not out.exists():
        summary["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return summary
    try:
        found = read(out)
    except Exception as err:  # an unreadable notebook is a failure of this run, not of the script
        return summary | {"error": [f"could not read {out}: {err!r}"]}
    return summary | found | ({"error": proc.stdout.strip().splitlines()[-1:]} if proc.returncode else {})


def _one(chapter: str, out: str, timeout: int) -> int:
    """Executed in the child process, whose environment carries the ISA's variables."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    sys.path.insert(0, str(ROOT / "tools"))
    import reliable_execution  # noqa: F401  (the sliced poll the book build uses)

    reliable_execution._patch()
    nb = nbformat.read(chapter, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(chapter).parent)}})
    code = 0
    try:
        client.execute(env=dict(os.environ))
    except CellExecutionError as err:
        lines = _ANSI.sub("", str(err)).strip().splitlines()
        print(lines[-1] if lines else "cell error")
        code = 1
    nbformat.write(nb, out)
    return code


def glued_text(output: dict) -> str:
    """The text of a myst-nb glue output: its text/plain, under the glue's MIME prefix
    (``application/papermill.record/text/plain`` for ``display=False``)."""
    prefix = output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
    data = output.get("data", {})
    text = data.get(f"{prefix}text/plain", data.get("text/plain", ""))
    return "".join(text) if isinstance(text, list) else text


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
        return "".join(text) if isinstance(text, list) else text
    data = output.get("data", {})
    for mime in ("text/html", "text/plain"):
        if mime in data:
            text = data[mime]
            return "".join(text) if isinstance(text, list) else text
    return ""


def read(path: Path) -> dict:
    """Glued numbers and checked outputs of an executed chapter."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    glued, checked, failed = {}, {}, None
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                glued[name] = glued_text(output)
            if output.get("output_type") == "error" and failed is None:
                failed = f"cell {i}: {output.get('ename')}: {output.get('evalue', '')[:200]}"
        source = "".join(cell["source"])
        if source.lstrip().startswith(CHECK_OUTPUT):
            checked[f"cell {i}"] = _ADDRESS.sub("", "".join(_text(o) for o in cell.get("outputs", [])
                                                           if o.get("output_type") != "error"))
    return {"glued": glued, "checked": checked} | ({"error": [failed]} if failed else {})


def spread(a: str, b: str) -> float:
    """The largest relative difference between the numbers of two texts of the same shape (inf if not)."""
    x, y = _NUMBER.findall(a), _NUMBER.findall(b)
    if len(x) != len(y):
        return float("inf")
    worst = 0.0
    for u, v in zip(x, y):
        u, v = float(u), float(v)
        if u != v:
            worst = max(worst, abs(u - v) / max(abs(u), abs(v)))
    return worst


def compare(runs: dict) -> tuple[list[list[str]], list[str]]:
    """The chapter-by-ISA table and the list of differences from the native run."""
    isas = sorted({isa for _, isa in runs}, key=list(ISAS).index)
    chapters = sorted({ch for ch, _ in runs})
    rows, details = [], []
    for ch in chapters:
        row = [ch]
        ref = runs.get((ch, "native"))
        for isa in isas:
            r = runs[ch, isa]
            if "error" in r:
                row.append("FAILS")
                details.append(f"{ch} [{isa}] fails: {' '.join(r['error'])}")
                continue
            cell = f"ok {r['seconds']:.0f}s"
            if ref is not None and isa != "native" and "error" not in ref:
                glue = [k for k in ref["glued"] if r["glued"].get(k) != ref["glued"][k]]
                check = [k for k in ref["checked"] if r["checked"].get(k) != ref["checked"][k]]
                for k in glue:
                    details.append(f"{ch} [{isa}] glued {k}: native {ref['glued'][k]!r}, here {r['glued'].get(k)!r}")
                for k in check:
                    details.append(f"{ch} [{isa}] checked output of {k} differs (largest relative "
                                   f"difference {spread(ref['checked'][k], r['checked'].get(k, '')):.1e})")
                if glue or check:
                    cell += f", {len(glue)} numbers + {len(check)} outputs differ"
                else:
                    cell += ", same text"
            row.append(cell)
        rows.append(row)
    return [["chapter", *isas], *rows], details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", default="", help="comma-separated prefixes (01,05); default all")
    parser.add_argument("--isas", default=",".join(ISAS), help=f"comma-separated, of {list(ISAS)}")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return _one(args.one[0], args.one[1], int(args.one[2]))
    wanted = [c for c in args.chapters.split(",") if c]
    chapters = [c for c in CHAPTERS if not wanted or any(c.name.startswith(w) for w in wanted)]
    isas = [i for i in args.isas.split(",") if i]
    for isa in isas:
        isa_env(isa)  # a clear error for an unknown name, before anything runs
    if not chapters:
        raise SystemExit(f"no chapter matches {args.chapters!r}")
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover
        capability = "unknown"
    print(f"torch's CPU capability here: {capability}; {len(chapters)} chapters x {isas}, {args.jobs} at a time",
          flush=True)
    jobs = [(c, isa) for c in chapters for isa in isas]
    runs = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(execute, c, isa, args.timeout): (c, isa) for c, isa in jobs}
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            runs[r["chapter"], r["isa"]] = r
            print(f"  {r['chapter']} [{r['isa']}]: {'FAILS' if 'error' in r else 'ok'} in {r['seconds']:.0f} s",
                  flush=True)
    table, details = compare(runs)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    print()
    for r in table:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    if details:
        print("\nDifferences from the native run:")
        print("\n".join(f"  {d}" for d in details))
    (OUT / "report.json").write_text(json.dumps({f"{c}|{i}": r for (c, i), r in runs.items()}, indent=1))
    failed = any("error" in r for r in runs.values())
    return 1 if failed or details else 0


if __name__ == "__main__":
    sys.exit(main())
