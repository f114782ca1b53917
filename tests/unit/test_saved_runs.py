"""bnlib.experiments' saved runs (the larger and the CPU-independent runs the chapters quote) and their readers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bnlib import MLP
from bnlib.experiments import SAVED_RUNS, json_columns, saved_columns, saved_run, saved_state


@pytest.mark.parametrize("name", SAVED_RUNS)
def test_every_saved_run_says_which_torch_and_cpu_kernels_wrote_it(name):
    setup = saved_run(name)["setup"]
    assert setup["torch"].startswith("2.") and setup["cpu_capability"] in ("AVX512", "AVX2", "DEFAULT")


def test_columns_survive_the_trip_through_json():
    table = {"arm": np.array(["bn", "plain", "bn"]), "seed": np.array([0, 1, 2]),
             "reached": np.array([True, False, True]), "margin": np.array([0.25, np.nan, -1e-9])}
    back = saved_columns(json_columns(table))
    for key, col in table.items():
        assert back[key].dtype.kind == col.dtype.kind
        np.testing.assert_array_equal(back[key], col)


def test_a_state_survives_the_trip_through_json():
    net = MLP([2, 5, 3], batchnorm=True, n_classes=1, seed=4)
    net.train()(torch.randn(16, 2))  # running statistics and num_batches_tracked move
    other = MLP([2, 5, 3], batchnorm=True, n_classes=1, seed=9)
    other.load_state_dict(saved_state({k: v.tolist() for k, v in net.state_dict().items()}))
    for (k, a), b in zip(net.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k


def test_bad_saved_tables_and_states_raise_value_errors():
    with pytest.raises(ValueError, match="dict of lists"):
        saved_columns([1, 2])
    with pytest.raises(ValueError, match="one length"):
        saved_columns({"a": [1], "b": []})
    with pytest.raises(ValueError, match="must be a dict"):
        saved_state([[1.0]])
    with pytest.raises(ValueError, match="finite"):
        saved_state({"w": [float("inf")]})
    with pytest.raises(ValueError, match="must be one of"):
        saved_run("no_such_run")


def test_chapter_3s_saved_snapshots_are_the_saved_runs_networks():
    """The last snapshot of seed 0's folded start, evaluated here, has the training accuracy its row records."""
    from bnlib import data
    from bnlib.experiments.ch3_initialization import initial_model
    from bnlib.train import accuracy

    saved = saved_run("smart_init_full")
    X, y = data.spirals(300, seed=0, turns=1.0, noise=0.03, shift=(4.0, 4.0))
    net = initial_model("bn_init", saved["setup"]["spirals"]["widths"], 1, X, seed=0)
    net.load_state_dict(saved_state(saved["snapshots"]["bn_init"]["20"]))
    spirals = saved_columns(saved["spirals"])
    row = (spirals["arm"] == "bn_init") & (spirals["seed"] == 0) & (spirals["epoch"] == 20)
    assert accuracy(net, X, y) == spirals["train_accuracy"][row][0]
