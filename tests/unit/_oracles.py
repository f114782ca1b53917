"""Independent oracles for the bnlib tests: torch forward passes and plain geometry.

Nothing here calls bnlib: activation patterns and outputs come from torch itself (float64
deep copies, forward hooks), and the geometry (point in convex polygon, point-segment
distance, polygon area) is written out from scratch.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)


def cluster(n=300, centre=(1.5, 1.0), std=(0.6, 0.2), seed=0) -> np.ndarray:
    """A non-isotropic Gaussian cluster away from the origin (float64, (n, 2))."""
    rng = np.random.default_rng(seed)
    return np.asarray(centre) + rng.normal(size=(n, 2)) * np.asarray(std)


class TorchOracle:
    """A float64 deep copy of a torch model that reports pre-activations and outputs.

    ``batch=None``: every BatchNorm1d uses its running statistics (torch eval mode).
    ``batch=X``: every BatchNorm1d uses the statistics torch's *training* mode computes on
    ``X`` (read with forward pre-hooks during a train-mode pass of ``X`` through another deep
    copy, biased variance), then frozen so that any point can be evaluated.
    """

    def __init__(self, model: nn.Module, batch=None):
        self.model = copy.deepcopy(model).double()
        bns = [m for m in self.model.modules() if isinstance(m, nn.BatchNorm1d)]
        if batch is not None and bns:
            stats = {}

            def grab(mod, inp):
                x = inp[0].detach()
                stats[id(mod)] = (x.mean(0).clone(), x.var(0, unbiased=False).clone())

            hooks = [bn.register_forward_pre_hook(grab) for bn in bns]
            self.model.train()
            with torch.no_grad():
                self.model(torch.as_tensor(np.asarray(batch), dtype=torch.float64))
            for h in hooks:
                h.remove()
            for bn in bns:
                bn.running_mean, bn.running_var = stats[id(bn)]
                bn.track_running_stats = True
        self.model.eval()
        self._pre: list[torch.Tensor] = []
        for m in self.model.modules():
            if isinstance(m, ACTIVATIONS):
                m.register_forward_pre_hook(lambda mod, inp: self._pre.append(inp[0].detach().clone()))

    def __call__(self, x):
        """(list of pre-activation arrays, one per activation module call; output array)."""
        self._pre = []
        with torch.no_grad():
            out = self.model(torch.as_tensor(np.asarray(x, dtype=np.float64)))
        return [p.numpy() for p in self._pre], out.numpy()

    def preactivations(self, x) -> np.ndarray:
        pre, _ = self(x)
        return np.concatenate(pre, axis=1)

    def pattern(self, x) -> np.ndarray:
        return self.preactivations(x) > 0

    def output(self, x) -> np.ndarray:
        return self(x)[1]

    def predict(self, x) -> np.ndarray:
        out = self.output(x)
        return (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else out.argmax(1)


def train_mode_preactivations(model: nn.Module, X, double=True) -> list[np.ndarray]:
    """Pre-activations of a train-mode forward pass of ``X`` through a deep copy (pure torch)."""
    m = copy.deepcopy(model)
    m = m.double() if double else m.float()
    m.train()
    pre = []
    for mod in m.modules():
        if isinstance(mod, ACTIVATIONS):
            mod.register_forward_pre_hook(lambda mod, inp: pre.append(inp[0].detach().clone()))
    with torch.no_grad():
        m(torch.as_tensor(np.asarray(X), dtype=torch.float64 if double else torch.float32))
    return [p.double().numpy() for p in pre]


def grid(box, n=400) -> np.ndarray:
    xmin, xmax, ymin, ymax = box
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, n), np.linspace(ymin, ymax, n))
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def uniform(box, n, seed=0) -> np.ndarray:
    xmin, xmax, ymin, ymax = box
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)], axis=1)


def diameter(box) -> float:
    xmin, xmax, ymin, ymax = box
    return float(np.hypot(xmax - xmin, ymax - ymin))


def box_area(box) -> float:
    xmin, xmax, ymin, ymax = box
    return (xmax - xmin) * (ymax - ymin)


def shoelace(poly: np.ndarray) -> float:
    """Signed area, computed relative to the first vertex (accurate far from the origin)."""
    rel = poly - poly[0]
    x, y = rel[:, 0], rel[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def perimeter(poly: np.ndarray) -> float:
    return float(np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1).sum())


def signed_edge_distances(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(n, m): signed distance of each point to the line of each edge (> 0: to the left)."""
    v0 = poly
    v1 = np.roll(poly, -1, axis=0)
    e = v1 - v0
    length = np.linalg.norm(e, axis=1)
    rel = pts[:, None, :] - v0[None]
    cross = e[None, :, 0] * rel[..., 1] - e[None, :, 1] * rel[..., 0]
    return cross / length[None]


def in_convex_polygon(poly: np.ndarray, pts: np.ndarray, tol: float) -> np.ndarray:
    """Points inside (or within ``tol`` of) a counter-clockwise convex polygon."""
    return (signed_edge_distances(poly, np.atleast_2d(pts)) >= -tol).all(axis=1)


def point_segment_distance(pts: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Brute-force distance (n,) from points to the nearest segment of (k, 2, 2).

    Written differently from bnlib: the perpendicular distance where the foot of the
    perpendicular falls on the segment, otherwise the nearer endpoint.
    """
    out = np.full(len(pts), np.inf)
    for (x0, y0), (x1, y1) in segs:
        dx, dy = x1 - x0, y1 - y0
        length = np.hypot(dx, dy)
        d_end = np.minimum(np.hypot(pts[:, 0] - x0, pts[:, 1] - y0), np.hypot(pts[:, 0] - x1, pts[:, 1] - y1))
        if length > 0:
            along = ((pts[:, 0] - x0) * dx + (pts[:, 1] - y0) * dy) / length
            perp = np.abs((pts[:, 0] - x0) * dy - (pts[:, 1] - y0) * dx) / length
            d = np.where((along >= 0) & (along <= length), perp, d_end)
        else:
            d = d_end
        out = np.minimum(out, d)
    return out


def nearest_point_on_segments(p: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """The nearest point to ``p`` (2,) on the union of segments (k, 2, 2)."""
    best, best_d = None, np.inf
    for a, b in segs:
        d = b - a
        t = 0.0 if not d.any() else min(1.0, max(0.0, float(np.dot(p - a, d) / np.dot(d, d))))
        q = a + t * d
        dist = float(np.hypot(*(p - q)))
        if dist < best_d:
            best, best_d = q, dist
    return best


def in_box(box, pts, margin=0.0) -> np.ndarray:
    xmin, xmax, ymin, ymax = box
    return (
        (pts[:, 0] >= xmin + margin)
        & (pts[:, 0] <= xmax - margin)
        & (pts[:, 1] >= ymin + margin)
        & (pts[:, 1] <= ymax - margin)
    )


def pattern_keys(patterns: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(patterns, dtype=bool)}


def randomize_batchnorm(net):
    """Give every BatchNorm1d non-trivial running statistics and affine parameters (in place).

    Draws from torch's global generator: call it inside a seeded ``fork_rng``.
    """
    from torch import nn

    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d) and m.track_running_stats:
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 2.0)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
    return net
