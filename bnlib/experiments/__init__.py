"""The chapters' experiments, one module per chapter, apart from the tools they use.

Each runner takes seeds, shows a progress bar and returns a tidy table (one row per seed and
arm); :mod:`bnlib.stats` summarises it and the chapter draws it. A script under
``benchmarks/`` can run the same function larger.

* :mod:`~bnlib.experiments.ch1_counting`: region counts of random networks (chapter 1);
* :mod:`~bnlib.experiments.ch2_partition`: BN and the partition of random networks (chapter 2);
* :mod:`~bnlib.experiments.ch3_initialization`: BN as a smart initialization (chapter 3);
* :mod:`~bnlib.experiments.ch4_noise`: BN's mini-batch noise and the margin (chapter 4);
* :mod:`~bnlib.experiments.ch5_real`: BN in real networks: training against evaluation mode, learned
  gamma and beta, other normalizations (chapter 5).

A larger run that does not fit the book's build is a script under ``benchmarks/`` whose output,
a JSON file, ships with bnlib (package data) so that a chapter finds it wherever it runs:
:func:`saved_run` loads it.
"""

import json
from importlib import resources

SAVED_RUNS = ("smart_init_full", "batch_noise_budgets", "batch_noise_full", "real_networks_full", "real_networks_seed0", "planes_full")
"""The saved larger runs: ``benchmarks/<name>.py`` writes ``bnlib/experiments/<name>.json``."""


def saved_run(name: str) -> dict:
    """The saved output of the larger run ``benchmarks/<name>.py``, as written: ``{"setup", ...}``.

    ``name`` is one of :data:`SAVED_RUNS`. ``setup`` describes the run (seeds, steps, tasks); the
    other keys hold its tables (column name -> list).

    Examples
    --------
    >>> run = saved_run("batch_noise_full")
    >>> "setup" in run, {"arm", "seed", "batch_size", "margin"} <= set(run["runs"])
    (True, True)
    """
    if name not in SAVED_RUNS:
        raise ValueError(f"The 'name' parameter of saved_run must be one of {SAVED_RUNS}; got {name!r}.")
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text())


def written_by() -> dict:
    """What a saved run records of the machine that wrote it: torch's version, the CPU kernels it ran
    (``torch.backends.cpu.get_cpu_capability()``: AVX512, AVX2, DEFAULT ...) and the architecture.

    Float32 training gives other digits on other kernels (the book's execution page), so a saved run
    says which ones wrote it.

    Examples
    --------
    >>> sorted(written_by())
    ['cpu_capability', 'machine', 'torch']
    """
    import platform

    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine()}


def json_columns(table) -> dict:
    """A runner's table (column -> array, or a DataFrame) as a saved run keeps it: column -> list, NaN as null.

    :func:`saved_columns` reads it back.

    Examples
    --------
    >>> import numpy as np
    >>> json_columns({"arm": np.array(["bn"]), "seed": np.array([3]), "ok": np.array([True]), "m": np.array([np.nan])})
    {'arm': ['bn'], 'seed': [3], 'ok': [True], 'm': [None]}
    """
    import numpy as np

    out = {}
    for key in table:
        v = np.asarray(table[key])
        if v.dtype.kind == "f":
            out[key] = [float(x) if np.isfinite(x) else None for x in v]
        elif v.dtype.kind in "iub":
            out[key] = [x.item() for x in v]
        else:
            out[key] = [str(x) for x in v]
    return out


def saved_columns(table: dict) -> dict:
    """A saved run's table (column -> list, null for NaN) as the runners return it: column -> numpy array.

    Numbers become float arrays (null read as NaN) or integer arrays, text a string array.

    Examples
    --------
    >>> t = saved_columns({"arm": ["bn", "plain"], "seed": [0, 0], "loss": [0.5, None], "ok": [True, False]})
    >>> t["arm"].tolist(), t["seed"].dtype.kind, t["loss"].tolist(), t["ok"].dtype.kind
    (['bn', 'plain'], 'i', [0.5, nan], 'b')
    >>> saved_columns({"a": [1, 2], "b": [1]})
    Traceback (most recent call last):
    ...
    ValueError: The 'table' parameter of saved_columns must have columns of one length; got {'a': 2, 'b': 1}.
    """
    import numpy as np

    if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
        raise ValueError("The 'table' parameter of saved_columns must be a dict of lists (column -> values).")
    lengths = {k: len(v) for k, v in table.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"The 'table' parameter of saved_columns must have columns of one length; got {lengths}.")
    out = {}
    for key, values in table.items():
        if all(isinstance(v, str) for v in values):
            out[key] = np.asarray(values, dtype=str)
        elif values and all(isinstance(v, bool) for v in values):
            out[key] = np.asarray(values, dtype=bool)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[key] = np.asarray(values, dtype=np.int64)
        else:
            out[key] = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return out


def saved_state(state: dict) -> dict:
    """A network's weights as a saved run keeps them (parameter -> nested lists) as a ``state_dict``.

    float32 tensors (a float32 value is exact in JSON), integer counters
    (``num_batches_tracked``) as int64: ``model.load_state_dict(saved_state(...))``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    >>> state = {k: v.tolist() for k, v in net.state_dict().items()}
    >>> net.load_state_dict(saved_state(state))
    <All keys matched successfully>
    >>> saved_state({"weight": [[float("nan")]]})
    Traceback (most recent call last):
    ...
    ValueError: The 'state' parameter of saved_state must hold finite numbers; 'weight' does not.
    """
    import torch

    if not isinstance(state, dict):
        raise ValueError(f"The 'state' parameter of saved_state must be a dict; got {type(state).__name__}.")
    out = {}
    for key, value in state.items():
        integer = key.endswith("num_batches_tracked")
        t = torch.as_tensor(value, dtype=torch.int64 if integer else torch.float32)
        if not integer and not torch.isfinite(t).all():
            raise ValueError(f"The 'state' parameter of saved_state must hold finite numbers; {key!r} does not.")
        out[key] = t
    return out


from . import ch1_counting, ch2_partition, ch3_initialization, ch4_noise, ch5_real  # noqa: E402

__all__ = ["SAVED_RUNS", "saved_run", "json_columns", "saved_columns", "saved_state", "written_by", "ch1_counting", "ch2_partition", "ch3_initialization", "ch4_noise",
           "ch5_real"]
