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
"""

from . import ch1_counting, ch2_partition, ch3_initialization, ch4_noise, ch5_real

__all__ = ["ch1_counting", "ch2_partition", "ch3_initialization", "ch4_noise", "ch5_real"]
