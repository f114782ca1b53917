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

SAVED_RUNS = ("batch_noise_full", "real_networks_full", "planes_full")
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


from . import ch1_counting, ch2_partition, ch3_initialization, ch4_noise, ch5_real  # noqa: E402

__all__ = ["SAVED_RUNS", "saved_run", "ch1_counting", "ch2_partition", "ch3_initialization", "ch4_noise",
           "ch5_real"]
