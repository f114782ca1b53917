"""bnlib: the small library behind the book "Batch Normalization Explained".

A torch model -> its float64 affine pieces (:mod:`bnlib.nets`) -> the exact partition of
a 2-D box into linear regions (:mod:`bnlib.partition`) -> pictures (:mod:`bnlib.plot`)
and explorations (:mod:`bnlib.widgets`), on teaching data (:mod:`bnlib.data`).
"""

from .nets import MLP, AffineLayer, affine_layers, forward, preactivations
from .partition import Partition, Segments, distance_to_segments, partition
from . import counting, data, frames, geometry, initialization, noise, plot, train, widgets
from .plot import plot_layers, plot_partition, use_style

__all__ = [
    "MLP",
    "AffineLayer",
    "affine_layers",
    "forward",
    "preactivations",
    "Partition",
    "Segments",
    "distance_to_segments",
    "partition",
    "plot_partition",
    "plot_layers",
    "use_style",
    "counting",
    "data",
    "frames",
    "geometry",
    "initialization",
    "noise",
    "train",
    "plot",
    "widgets",
]
