"""Installing the book and bnlib anywhere: the lock on every platform, bnlib's wheel and sdist, bnlib
with the oldest dependencies it supports, the Colab route, and a clean uninstall.

- The lock (requirements.txt) is resolved with uv against PyPI for Linux x86_64, macOS arm64 (14,
  the oldest macOS torch 2.13.0 has a wheel for) and Windows x86_64, on every Python the README
  supports, without installing anything; a package that does not resolve fails the test by name,
  and so does a package the platform needs that the lock does not pin. PyTorch's CPU index, where
  Linux's `torch==2.13.0+cpu` lives, is not reachable from this project's machines: there the test
  resolves `torch==2.13.0` from PyPI (the same release; the CPU index publishes every release for
  the same Pythons) and leaves out the CUDA libraries that only PyPI's Linux build depends on.
- `python -m build` makes bnlib's wheel and sdist from the tracked files: both carry the saved runs
  (bnlib/experiments/*.json) and nothing of tests/ or _build/.
- A fresh venv stands in for Colab and for a reader's older environment: torch 2.13.0 (the local
  CPU wheel) and the OLDEST versions bnlib supports (pyproject's lower bounds: numpy, numba, pandas,
  matplotlib, scipy, scikit-learn, tqdm, Jinja2; ipywidgets 7.7 and IPython 7.34, Colab's), none of
  them the lock's.
  There, chapters 1 and 5 (the reader's copies `make book` wrote, or the chapters themselves where
  the book is not built; their code cells are the same, test_reader_copy.py checks it) run top to
  bottom, their install cell pointed at a git snapshot of this working tree (BNBOOK_REPOSITORY),
  installing bnlib with its dependencies without changing any installed version; bnlib's unit
  tests pass there with bnlib installed from its wheel; and `pip uninstall bnlib` leaves no
  `bnlib` folder behind (numba's compiled kernels live in the user's cache folder).

Needs the network to PyPI (uv's resolution; pip's downloads on a cold cache), as CI has. Measured
on 2 cores with pip's cache warm and nothing else running: the 12 resolutions (in parallel) 20 s,
the wheel and sdist 4 s, the stand-in venv 1.5-2 minutes, chapters 1 and 5 with the install 1.3
minutes, the unit tests there 1-2 minutes: about 6 minutes in all (twice that with the other core
busy).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import BUILD_HTML, ROOT, in_ci

sys.path.insert(0, str(ROOT / "tools"))
import install_cell  # noqa: E402

LOCK = ROOT / "requirements.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf8"))
UV = Path(sys.executable).with_name("uv")

# The README's platforms (uv's names) and Pythons: the lock must resolve for each pair.
PLATFORMS = {"linux": "x86_64-manylinux_2_28", "macos": "aarch64-apple-darwin", "windows": "x86_64-pc-windows-msvc"}
PYTHONS = ["3.11.5", "3.12", "3.13", "3.14"]
# What PyPI's Linux torch (the CUDA build) needs and the CPU build does not.
CUDA_ONLY = re.compile(r"^(nvidia-|cuda-|triton$)")

# The oldest releases bnlib supports (pyproject's lower bounds), and the stand-in's Jupyter.
OLDEST = {req.name.lower(): req for req in map(Requirement, PYPROJECT["project"]["dependencies"])}
STAND_IN = [
    "torch==2.13.0",  # the local CPU wheel (pip --find-links); any other would be a gigabyte download
    "numpy==1.23.5", "numba==0.57.1", "pandas==1.5.3", "matplotlib==3.7.2", "scipy==1.9.3",
    "scikit-learn==1.2.2", "tqdm==4.64.1", "Jinja2==3.1.2", "ipywidgets==7.7.1",
    # Colab's IPython (matplotlib before 3.10.1 fails in IPython 9: backend2gui is gone)
    "ipython==7.34.0", "ipykernel==6.31.0", "nbclient==0.11.0", "nbformat==5.11.1", "pytest==9.2.0",
    "pytest-xdist==3.8.0",  # the unit tests there on both cores
]
CHAPTERS = [ROOT / "chapters" / name for name in sorted(os.listdir(ROOT / "chapters"))
            if name.endswith(".ipynb") and name[:2] in ("01", "05")]


def _name(line: str) -> str:
    return re.split(r"[=<>;\s]", line, maxsplit=1)[0].lower().replace("_", "-")


def _lock_lines() -> list[str]:
    return [line for line in LOCK.read_text(encoding="utf8").splitlines() if line and not line.startswith("#")]


# ---------------------------------------------------------------------------------------------
# the lock on every platform


def test_the_stand_in_uses_the_lower_bounds():
    """STAND_IN installs exactly pyproject's lower bound of each of bnlib's dependencies."""
    pins = {_name(p): p.split("==")[1] for p in STAND_IN}
    for name, req in OLDEST.items():
        if name == "torch":
            continue  # only the local 2.13.0 here (see pyproject.toml)
        floors = [s.version for s in req.specifier if s.operator == ">="]
        assert floors and pins[name.replace("_", "-")] == floors[0], (name, str(req), pins.get(name))


def test_the_lock_names_the_cpu_build_of_torch():
    lines = _lock_lines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    torch = [Requirement(line) for line in lines if _name(line) == "torch"]
    assert {str(t.specifier): str(t.marker) for t in torch} == {
        "==2.13.0+cpu": 'sys_platform == "linux"', "==2.13.0": 'sys_platform != "linux"'}


def _for_uv(tmp: Path) -> Path:
    """The lock as uv resolves it here: PyTorch's CPU index and its `+cpu` left out (see above)."""
    lines = [line.replace("torch==2.13.0+cpu", "torch==2.13.0") for line in _lock_lines() if not line.startswith("--")]
    source = tmp / "requirements.in"
    source.write_text("\n".join(lines) + "\n")
    return source


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory) -> dict[tuple[str, str], tuple[subprocess.CompletedProcess, Path]]:
    """uv pip compile of the lock for every platform and Python, all at once (each waits on PyPI)."""
    if not UV.exists():
        pytest.fail(f"{UV} is missing: uv is in the dev extra and the lock (make venv installs it)")
    tmp = tmp_path_factory.mktemp("uv")
    source = _for_uv(tmp)
    env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0", "UV_PYTHON_DOWNLOADS": "never"}
    for key in ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_OFFLINE"):
        env.pop(key, None)
    running = {}
    for platform, target in PLATFORMS.items():
        for python in PYTHONS:
            out = tmp / f"{platform}-{python}.txt"
            # --python: this interpreter (uv would otherwise fetch a managed Python 3.x from outside PyPI)
            cmd = [str(UV), "pip", "compile", "--no-config", "--no-python-downloads", "--python", sys.executable,
                   "--quiet", "--no-header", "--python-platform", target, "--python-version", python,
                   str(source), "-o", str(out)]
            running[platform, python] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                          text=True, env=env), out, cmd)
    done = {}
    for key, (proc, out, cmd) in running.items():
        stdout, stderr = proc.communicate(timeout=600)
        done[key] = (subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), out)
    return done


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_lock_resolves(platform, python, resolutions, tmp_path):
    done, out = resolutions[platform, python]
    lines = _for_uv(tmp_path).read_text().splitlines()
    if done.returncode != 0:
        pinned = {_name(line) for line in lines}
        culprits = [n for n in dict.fromkeys(_name(m) for m in re.findall(r"([A-Za-z0-9_.-]+)==", done.stderr))
                    if n in pinned]
        pytest.fail(f"the lock does not resolve on {platform} Python {python}: "
                    f"{', '.join(culprits) or 'see uv'} does not resolve\n{done.stderr}", pytrace=False)
    resolved = {_name(line) for line in out.read_text().splitlines() if line and not line.startswith((" ", "#"))}
    unpinned = sorted(n for n in resolved - {_name(line) for line in lines}
                      if not (platform == "linux" and CUDA_ONLY.match(n)))
    assert not unpinned, f"{platform} Python {python} needs packages the lock does not pin: {unpinned}"


# ---------------------------------------------------------------------------------------------
# bnlib's wheel and sdist


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """bnlib's wheel and sdist, built by `python -m build` from the working tree's files git knows."""
    tmp = tmp_path_factory.mktemp("dists")
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheel, = (tmp / "dist").glob("bnlib-*.whl")
    sdist, = (tmp / "dist").glob("bnlib-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "src": src}


def test_the_wheel_holds_bnlib_and_its_saved_runs_only(dists):
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    saved = sorted(p.name for p in (ROOT / "bnlib" / "experiments").glob("*.json"))
    assert saved, "bnlib/experiments has no saved run"
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("bnlib/experiments/") and n.endswith(".json")) == saved
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "bnlib").rglob("*.py"))
    assert sorted(n for n in names if n.endswith(".py")) == modules
    stray = [n for n in names if not (n.startswith("bnlib/") or n.split("/")[0].endswith(".dist-info"))]
    assert not stray, f"the wheel holds more than bnlib: {stray}"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".nbi", ".nbc", ".pyc"))]
    metadata = zipfile.ZipFile(dists["wheel"]).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")
                and "extra ==" not in line]
    assert requires and all("==" not in r for r in requires), f"bnlib's dependencies must be ranges: {requires}"


def test_the_sdist_holds_bnlib_and_its_saved_runs_and_no_tests(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    saved = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bnlib" / "experiments").glob("*.json")}
    assert saved <= set(names), sorted(saved - set(names))
    assert "pyproject.toml" in names and "bnlib/__init__.py" in names
    stray = [n for n in names if n.startswith(("tests/", "_build/", "chapters/", ".venv/", "coursework/"))]
    assert not stray, f"the sdist holds files it must not: {stray[:10]}"


# ---------------------------------------------------------------------------------------------
# the stand-in for Colab and for an old environment


def _bin(venv: Path, name: str) -> str:
    return str(venv / ("Scripts" if os.name == "nt" else "bin") / name)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> dict:
    """A fresh venv with torch and bnlib's oldest dependencies, no bnlib; a user cache of its own."""
    tmp = tmp_path_factory.mktemp("stand_in")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([_bin(venv, "python"), "-m", "pip", "install", "--quiet", *STAND_IN],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the kernel "python3" is the stand-in's Python, whatever kernels the user has registered
    spec = tmp / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [_bin(venv, "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (stand-in)", "language": "python"}))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONSAFEPATH": "1", "JUPYTER_PATH": str(tmp / "jupyter")}
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("PYTHONPATH", None)
    return {"venv": venv, "env": env, "tmp": tmp}


def _versions(stand_in) -> dict[str, str]:
    out = subprocess.run([_bin(stand_in["venv"], "python"), "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True, check=True, env=stand_in["env"]).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def _pip(stand_in, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_bin(stand_in["venv"], "python"), "-m", "pip", *args],
                          capture_output=True, text=True, env=stand_in["env"])


def _snapshot(tmp: Path) -> str:
    """A git repository holding this working tree's files (committed or not), as a file:// URL."""
    repo = tmp / "repository"
    if not repo.exists():
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
        for name in filter(None, files):
            if (ROOT / name).is_file():
                (repo / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, repo / name)
        git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "-C", str(repo)]
        subprocess.run(git + ["init", "--quiet", "--initial-branch", "reader"], check=True)
        subprocess.run(git + ["add", "--all"], check=True)
        subprocess.run(git + ["commit", "--quiet", "--no-verify", "-m", "snapshot"], check=True)
    # file://localhost/...: pip before 24 rejects `git+file:///...` (no host) as an invalid requirement
    return "file://localhost" + repo.as_posix()


def _reader_copy(chapter: Path) -> tuple[dict, str]:
    copy = BUILD_HTML / "_sources" / "chapters" / chapter.name
    if copy.is_file():
        return json.loads(copy.read_text(encoding="utf8")), "reader's copy"
    if in_ci():
        pytest.fail(f"{copy} is missing: `make book` writes it (CI is set, so this is a failure)", pytrace=False)
    return json.loads(chapter.read_text(encoding="utf8")), "chapter (no book built)"


def test_colab_route_runs_chapters_1_and_5(stand_in):
    venv, env = stand_in["venv"], dict(stand_in["env"])
    _pip(stand_in, "uninstall", "--yes", "bnlib")
    before = _versions(stand_in)
    assert "bnlib" not in before
    env["BNBOOK_REPOSITORY"], env["BNBOOK_BRANCH"] = _snapshot(stand_in["tmp"]), "reader"
    script = stand_in["tmp"] / "run_chapter.py"
    script.write_text(
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=900, kernel_name='python3', resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
        "nbformat.write(nb, sys.argv[1])\n")
    for chapter in CHAPTERS:
        nb, what = _reader_copy(chapter)
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert install_cell.TAG in cell["metadata"].get("tags", []), f"{chapter.name}: no install cell first"
        # the cell tools/install_cell.py writes (test_launch.py checks the chapters carry it)
        cell["source"] = install_cell.cell_source()
        path = stand_in["tmp"] / chapter.name
        path.write_text(json.dumps(nb), encoding="utf8")
        done = subprocess.run([_bin(venv, "python"), str(script), str(path), str(stand_in["tmp"])],
                              capture_output=True, text=True, env=env, timeout=1800)
        assert done.returncode == 0, f"{chapter.name} ({what}) failed:\n{done.stderr[-6000:]}"
        ran = json.loads(path.read_text(encoding="utf8"))
        first = next(c for c in ran["cells"] if c["cell_type"] == "code")
        printed = "".join("".join(o.get("text", "")) for o in first["outputs"])
        if chapter == CHAPTERS[0]:
            assert "installed bnlib" in printed, printed  # the first chapter installed it
        else:
            assert printed == "", printed  # the next one found it installed
        errors = [o for c in ran["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, errors
    after = _versions(stand_in)
    assert "bnlib" in after
    changed = {name: (before[name], after.get(name)) for name in before if after.get(name) != before[name]}
    assert not changed, f"installing bnlib changed installed packages: {changed}"


def test_uninstall_leaves_no_bnlib_folder(stand_in, dists):
    python = _bin(stand_in["venv"], "python")
    done = _pip(stand_in, "install", "--quiet", "--no-deps", "--force-reinstall", str(dists["wheel"]))
    assert done.returncode == 0, done.stderr
    code = ("import bnlib, torch, pathlib; from bnlib import _cutkernel\n"
            "bnlib.partition(bnlib.MLP([2, 6, 6, 1]), (-1, 1, -1, 1))\n"
            "print(pathlib.Path(bnlib.__file__).parent); print(_cutkernel.cache_dir())")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=stand_in["env"], cwd=stand_in["tmp"])
    assert done.returncode == 0, done.stderr
    package, cache = map(Path, done.stdout.split())
    assert cache == stand_in["tmp"] / "cache" / "bnlib" / "numba"
    assert list(cache.rglob("*.nbi")), "numba cached no kernel in the user's cache folder"
    assert not [p for p in package.rglob("*") if p.suffix in (".nbi", ".nbc")], "numba cached inside the package"
    done = _pip(stand_in, "uninstall", "--yes", "bnlib")
    assert done.returncode == 0, done.stderr
    assert not package.exists(), f"pip uninstall left {package}: {sorted(p.name for p in package.rglob('*'))}"
    done = subprocess.run([python, "-c", "import bnlib"], capture_output=True, text=True, env=stand_in["env"],
                          cwd=stand_in["tmp"])
    assert "ModuleNotFoundError" in done.stderr
    # a user's NUMBA_CACHE_DIR wins
    done = subprocess.run([python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from bnlib import _cutkernel;"
                           " print(_cutkernel.cache_dir())", str(ROOT)],
                          capture_output=True, text=True, env={**stand_in["env"], "NUMBA_CACHE_DIR": "/tmp/elsewhere"})
    assert done.stdout.strip() == "/tmp/elsewhere", done.stderr


def test_unit_tests_pass_with_the_oldest_dependencies(stand_in, dists):
    before = _versions(stand_in)
    before.pop("bnlib", None)
    done = _pip(stand_in, "install", "--quiet", "--force-reinstall", "--no-deps", str(dists["wheel"]))
    assert done.returncode == 0, done.stderr
    done = _pip(stand_in, "install", "--quiet", str(dists["wheel"]))  # its dependencies: all there, kept
    assert done.returncode == 0, done.stderr
    after = _versions(stand_in)
    assert {n: after[n] for n in before} == before, "installing bnlib's wheel changed installed packages"
    check = _pip(stand_in, "check")
    assert check.returncode == 0, check.stdout
    # bnlib from site-packages, not this checkout: the pytest script puts no source folder on sys.path
    # (PYTHONSAFEPATH), and pytest's rootdir insertion adds tests/unit and tests/ only.
    done = subprocess.run([_bin(stand_in["venv"], "pytest"), "-q", "-x", "-n", "2", "-p", "no:cacheprovider", "-o", "addopts=",
                           "-W", "ignore::DeprecationWarning", "tests/unit"],
                          capture_output=True, text=True, env=stand_in["env"], cwd=ROOT, timeout=1200)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert re.search(r"\d+ passed", done.stdout), done.stdout[-2000:]
    where = subprocess.run([_bin(stand_in["venv"], "python"), "-c", "import bnlib; print(bnlib.__file__)"],
                           capture_output=True, text=True, env=stand_in["env"], cwd=ROOT)
    assert str(stand_in["venv"]) in where.stdout, where.stdout + where.stderr
