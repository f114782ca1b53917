"""The kernel-free player the book embeds is byte-identical across runs and thread counts.

A test of bnlib.widgets, kept with the book checks rather than in tests/unit: it starts three fresh
interpreters (torch imported in each, about 30 s), which the unit tests' under-a-minute loop cannot
afford. It is the players' share of the book's promise of the same output on every run, on 1 or 2
threads (see the nbval run of `make test`).
"""

import os
import subprocess
import sys

_PLAYER_SCRIPT = """
import hashlib, matplotlib
matplotlib.use("Agg")
import torch
torch.set_num_threads({threads})
from bnlib import frames, widgets
html = widgets.player_html(frames.random_partition_frame, widgets.sweep(dict(depth=3, width=6), seed=[0, 1]))
print(hashlib.sha256(html.encode()).hexdigest())
"""


def test_player_is_identical_across_runs_and_thread_counts():
    digests = set()
    for threads in (1, 2, 1):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
        out = subprocess.run(
            [sys.executable, "-c", _PLAYER_SCRIPT.format(threads=threads)],
            capture_output=True, text=True, env=env, check=True,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1, digests
