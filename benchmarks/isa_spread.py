"""How far the chapters' float32 trainings drift between CPUs: the tolerances of their checks, measured.

    python benchmarks/isa_spread.py [--probes ch3_arms,ch5_modes,ch5_conv] [--isas native,baseline]

A chapter that quotes a saved run re-computes one seed of it live and checks the result within a
tolerance. This script measures that tolerance: it runs each probe (the chapter's own calls, over
more seeds than the chapter re-computes) once per instruction set (tools/portable.py: this CPU's
kernels, AVX2, or the baseline kernels with numba for a generic CPU), each in a fresh process, and
prints, for every quantity, the largest and the 90th-percentile |difference| from the native run,
over all seeds, arms and epochs. The chapters write the measured spread beside each check.

The probes:

- ``ch3_arms``: chapter 3's arms on the spirals (9 arms, 20 epochs) and the digits (5 arms, 8 epochs),
  seeds 0-7: test accuracy, training loss, and the same with precise statistics;
- ``ch4_budgets``: chapter 4's margins of BN and plain networks trained at equal steps, equal epochs
  and to a matched training loss, batch sizes 4, 16 and full, seeds 0-9;
- ``ch5_modes``: chapter 5's spirals BN network trained by steps (record_run) at each batch size,
  seeds 0-9: test accuracy with running statistics (momentum 0.1) and with precise statistics;
- ``ch5_conv``: chapter 5's ConvNet arms after one epoch on the digits, seeds 0-4: test accuracy with
  running and with precise statistics.

- ``cw_project``: the capstone's seeded check (two epochs of a ResNet with and without BN), seeds 0-3:
  how far a correct student's run may drift from the hidden test's reference.

Before training (epoch 0) only the kernels' last bits differ; the drift after training is float32
chaos, amplified by every step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from portable import ISAS, isa_env  # noqa: E402


def probe_ch3_arms() -> dict[str, list]:
    from bnlib import data
    from bnlib.experiments.ch3_initialization import run_arms

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import smart_init_full as full

    X, y, Xt, yt = full.spirals_data()
    D, Dt, d, dt = data.digits(seed=0)
    seeds = list(range(8))
    out = {}
    for task, table in (("spirals", run_arms(X, y, seeds=seeds, X_test=Xt, y_test=yt, progress=False, **full.SPIRALS_RUN)),
                        ("digits", run_arms(D, d, seeds=seeds, X_test=Dt, y_test=dt, progress=False, **full.DIGITS_RUN))):
        trained = table["epoch"] > 0
        for col in ("test_accuracy", "train_loss", "test_accuracy_precise", "train_loss_precise"):
            v = np.asarray(table[col], dtype=float)
            out[f"{task}: {col}, epoch 0"] = v[~trained].tolist()
            out[f"{task}: {col}, trained"] = v[trained].tolist()
    return out


def probe_ch5_modes() -> dict[str, list]:
    from bnlib import data
    from bnlib.experiments import saved_run
    from bnlib.experiments.ch5_real import record_run
    from bnlib.nets import precise_batchnorm
    from bnlib.train import accuracy

    setup = saved_run("real_networks_full")["setup"]
    spec = {k: v for k, v in setup["data"]["spirals"].items() if k != "n"}
    X, y = data.spirals(setup["data"]["spirals"]["n"], seed=0, **spec)
    Xt, yt = data.spirals(setup["data"]["spirals"]["n"], seed=1, **spec)
    modes = setup["modes"]
    out: dict[str, list] = {"accuracy, running statistics (momentum 0.1)": [], "accuracy, precise statistics": []}
    for N in modes["batch_sizes"]:
        for seed in range(10):
            run = record_run(X, y, widths=modes["widths"], n_classes=1, batch_size=N, steps=modes["steps"], seed=seed,
                             at=[modes["steps"]], lr=modes["lr"])
            net = run.network(modes["steps"], 0.1)
            out["accuracy, running statistics (momentum 0.1)"].append(accuracy(net, Xt, yt))
            out["accuracy, precise statistics"].append(accuracy(precise_batchnorm(net, X), Xt, yt))
    return out


def probe_ch5_conv() -> dict[str, list]:
    from bnlib import data
    from bnlib.experiments import saved_run
    from bnlib.experiments.ch5_real import conv_experiment

    conv = saved_run("real_networks_full")["setup"]["conv"]
    X, Xt, y, yt = data.digits(seed=0)
    t = conv_experiment(X, y, Xt, yt, seeds=range(5), epochs=1, record=[1], progress=False,
                        batch_size=conv["batch_size"], lr=conv["lr"])
    return {f"{arm}: {col}": t[t["arm"] == arm][col].tolist() for arm in sorted(set(t["arm"]))
            for col in ("test_accuracy", "test_accuracy_precise")}


def probe_ch4_budgets() -> dict[str, list]:
    import bnlib
    from bnlib.experiments.ch4_noise import margin_experiment

    X, y = bnlib.data.moons(128, noise=0.2, seed=0)
    Xt, yt = bnlib.data.moons(1000, noise=0.2, seed=1)
    budgets = {"equal steps": dict(budget="steps", steps=300), "equal epochs": dict(budget="epochs", epochs=20),
               "matched loss": dict(budget="loss", epochs=128, target_loss=0.3)}
    out: dict[str, list] = {}
    for name, kw in budgets.items():
        t = margin_experiment(X, y, Xt, yt, widths=[2, 16, 16], arms=("plain", "bn"), batch_sizes=[4, 16, None],
                              seeds=range(10), progress=False, **kw)
        for col in ("margin", "margin_precise", "train_loss", "train_loss_precise", "test_accuracy", "steps"):
            if col in t:
                out[f"{name}: {col}"] = np.asarray(t[col], dtype=float).tolist()
    return out


def probe_cw_project() -> dict[str, list]:
    """The capstone's seeded check (coursework/project.ipynb, question 8's hidden test): a ResNet trained two
    epochs by the recipe, with and without BN, evaluated with running and with precise statistics; seeds 0-3."""
    import torch
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    import bnlib
    from bnlib.experiments.ch5_real import precise_conv

    X, Xt, y, yt = bnlib.data.digits(seed=0)
    scaler = StandardScaler().fit(X)
    x = torch.as_tensor(scaler.transform(X), dtype=torch.float32).reshape(-1, 1, 8, 8)
    xt = torch.as_tensor(scaler.transform(Xt), dtype=torch.float32).reshape(-1, 1, 8, 8)
    t, tt = torch.as_tensor(y), torch.as_tensor(yt)

    def train(model, seed):
        adam = torch.optim.Adam(model.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(2):
            perm = torch.randperm(len(x), generator=gen)
            for s in range(0, len(x) - 1, 32):
                adam.zero_grad()
                nn.functional.cross_entropy(model(x[perm[s:s + 32]]), t[perm[s:s + 32]]).backward()
                adam.step()
        return model

    out: dict[str, list] = {}
    for seed in range(4):
        bn = train(bnlib.nets.ResNet(batchnorm=True, seed=seed), seed)
        he = bnlib.nets.ResNet(batchnorm=False, seed=seed)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for m in [m for m in he.modules() if isinstance(m, nn.Conv2d)]:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.bias.zero_()
        he = train(he, seed)
        for name, model in {"bn_running": bn.eval(), "bn_precise": precise_conv(bn, x), "he": he.eval()}.items():
            with torch.no_grad():
                o = model(xt)
            out.setdefault(f"{name}: test accuracy", []).append(float((o.argmax(1) == tt).float().mean()))
            out.setdefault(f"{name}: test loss", []).append(float(nn.functional.cross_entropy(o, tt)))
    return out


PROBES = {"ch3_arms": probe_ch3_arms, "cw_project": probe_cw_project, "ch4_budgets": probe_ch4_budgets, "ch5_modes": probe_ch5_modes, "ch5_conv": probe_ch5_conv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", default=",".join(PROBES))
    parser.add_argument("--isas", default="native,baseline")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # probe, output file (child process)
    args = parser.parse_args()
    if args.one:
        import torch

        torch.set_num_threads(1)
        Path(args.one[1]).write_text(json.dumps(PROBES[args.one[0]]()))
        return
    probes, isas = args.probes.split(","), args.isas.split(",")
    if "native" not in isas or any(i not in ISAS for i in isas) or any(p not in PROBES for p in probes):
        raise SystemExit(f"probes from {list(PROBES)}, isas from {list(ISAS)} including native")
    tmp = Path(tempfile.mkdtemp(prefix="isa_spread_"))
    jobs = [(p, i) for p in probes for i in isas]
    procs = {}
    for p, i in jobs:  # two at a time (the machine's cores)
        procs[p, i] = subprocess.Popen([sys.executable, __file__, "--one", p, str(tmp / f"{p}-{i}.json")],
                                       env=isa_env(i))
        if len(procs) % (os.cpu_count() or 2) == 0:
            for proc in procs.values():
                proc.wait()
    for (p, i), proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"probe {p} under {i} failed")
    print(f"| probe | quantity | ISA | n | largest abs difference from native | 90th percentile |")
    print("|---|---|---|---|---|---|")
    for p in probes:
        ref = json.loads((tmp / f"{p}-native.json").read_text())
        for i in isas:
            if i == "native":
                continue
            got = json.loads((tmp / f"{p}-{i}.json").read_text())
            for key, values in ref.items():
                d = np.abs(np.asarray(values, dtype=float) - np.asarray(got[key], dtype=float))
                d = d[np.isfinite(d)]
                if len(d):
                    print(f"| {p} | {key} | {i} | {len(d)} | {d.max():.2g} | {np.quantile(d, 0.9):.2g} |")


if __name__ == "__main__":
    main()
