"""bnlib: the small library behind the book "Batch Normalization Explained".

A torch model -> its float64 affine pieces (:mod:`bnlib.nets`, the one reader of BN) -> the exact
partition of a 2-D box into linear regions (:mod:`bnlib.partition`) -> geometry
(:mod:`bnlib.geometry`, :mod:`bnlib.density`, :mod:`bnlib.noise`) -> numbers
(:mod:`bnlib.stats`) and pictures (:mod:`bnlib.plot`, :mod:`bnlib.frames`,
:mod:`bnlib.widgets`), on teaching data (:mod:`bnlib.data`). The chapters' experiments are
:mod:`bnlib.experiments`, one module per chapter.
"""

from .nets import MLP, AffineLayer, activation_patterns, affine_layers, forward, preactivations, read_batchnorm
from .partition import Partition, Plane, Segments, distance_to_segments, partition
from . import (book, data, density, experiments, frames, geometry, initialization, noise, plot, stats,
               train, widgets)
from .plot import plot_layers, plot_partition, use_style

__all__ = [
    "MLP",
    "AffineLayer",
    "activation_patterns",
    "affine_layers",
    "forward",
    "preactivations",
    "read_batchnorm",
    "Partition",
    "Plane",
    "Segments",
    "distance_to_segments",
    "partition",
    "plot_partition",
    "plot_layers",
    "use_style",
    "data",
    "density",
    "experiments",
    "frames",
    "geometry",
    "initialization",
    "noise",
    "plot",
    "stats",
    "train",
    "widgets",
]
