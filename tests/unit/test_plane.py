"""Unit tests of bnlib.Plane and of partitions of planes through high-dimensional inputs.

The oracle is torch: a float64 deep copy of the model (BN in eval mode, or with the statistics
torch's training mode computes on the batch, read with forward pre-hooks), its pre-activations at
every ReLU/LeakyReLU call, and the argmax of every MaxPool2d call read from torch's own
``return_indices``, turned into the position inside the window. Points of the plane are turned
into inputs by plain linear algebra written out here (origin + basis @ ab), checked against the
three inputs the plane was made through. No expected value comes from bnlib.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bnlib
from bnlib.arrangement import RegionBudgetExceeded
from bnlib.nets import ConvNet, Residual, ResNet, read_network
from _oracles import box_area, signed_edge_distances, uniform

BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _digits():
    X, _, _, _ = bnlib.data.digits(seed=0)
    return X


class PlaneOracle:
    """Torch's patterns and outputs at plane points: activation signs, one-hot max-pool winners."""

    def __init__(self, model: nn.Module, plane_points: np.ndarray, batch=None):
        self.shape = plane_points.shape[1:]
        flat = plane_points.reshape(3, -1).astype(np.float64)
        # the plane written out: Gram-Schmidt of the two differences, origin at the centroid
        e1 = flat[1] - flat[0]
        e1 /= np.linalg.norm(e1)
        e2 = flat[2] - flat[0] - ((flat[2] - flat[0]) @ e1) * e1
        e2 /= np.linalg.norm(e2)
        self.origin, self.U = flat.mean(0), np.stack([e1, e2], 1)
        self.model = copy.deepcopy(model).double()
        bns = [m for m in self.model.modules() if isinstance(m, BN)]
        if batch is not None and bns:
            stats = {}

            def grab(mod, inp):
                x = inp[0].detach()
                dims = (0,) if x.ndim == 2 else (0, 2, 3)
                stats[id(mod)] = (x.mean(dims).clone(), x.var(dims, unbiased=False).clone())

            hooks = [bn.register_forward_pre_hook(grab) for bn in bns]
            self.model.train()
            with torch.no_grad():
                self.model(torch.as_tensor(np.asarray(batch, dtype=np.float64).reshape((-1,) + self.shape)))
            for h in hooks:
                h.remove()
            for bn in bns:
                bn.running_mean, bn.running_var = stats[id(bn)]
        self.model.eval()
        self._cols: list[torch.Tensor] = []
        for m in self.model.modules():
            if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
                m.register_forward_pre_hook(lambda mod, inp: self._cols.append(inp[0].reshape(len(inp[0]), -1) > 0))
            elif isinstance(m, nn.MaxPool2d):
                m.register_forward_pre_hook(lambda mod, inp: self._cols.append(self._winners(mod, inp[0])))

    @staticmethod
    def _winners(m, x):
        _, idx = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, return_indices=True)
        kh, kw = nn.modules.utils._pair(m.kernel_size)
        sh, sw = nn.modules.utils._pair(m.stride or m.kernel_size)
        ph, pw = nn.modules.utils._pair(m.padding)
        dh, dw = nn.modules.utils._pair(m.dilation)
        Ho, Wo = idx.shape[2:]
        h, w = idx // x.shape[3], idx % x.shape[3]
        top = torch.arange(Ho)[:, None] * sh - ph
        left = torch.arange(Wo)[None, :] * sw - pw
        pos = ((h - top) // dh) * kw + (w - left) // dw
        return F.one_hot(pos.reshape(len(x), -1), kh * kw).reshape(len(x), -1).bool()

    def inputs(self, ab):
        return torch.as_tensor((self.origin + np.asarray(ab) @ self.U.T).reshape((-1,) + self.shape))

    def __call__(self, ab):
        self._cols = []
        with torch.no_grad():
            out = self.model(self.inputs(ab))
        return torch.cat(self._cols, 1).numpy() if self._cols else np.zeros((len(ab), 0), bool), out.numpy()

    def pattern(self, ab):
        return self(ab)[0]

    def output(self, ab):
        return self(ab)[1]


def _seeded(seed, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build()
        for m in net.modules():  # non-trivial running statistics and affine parameters
            if isinstance(m, BN):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.3, 0.3)
    return net


def _strided():
    """Stride, padding, dilation, a leaky slope, BatchNorm2d and an average pool."""
    return nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(3, 4, 2, dilation=2),
                         nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4, 3))


def _overlapping_maxpool():
    """Overlapping, padded 3x3 windows after a ReLU: dead units tie at 0 (the lowest position wins)."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
                         nn.Flatten(), nn.Linear(32, 2))


def _residual_mlp():
    return nn.Sequential(nn.Linear(64, 10), nn.ReLU(), Residual(nn.Sequential(
        nn.Linear(10, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Linear(10, 10))), nn.LeakyReLU(0.2), nn.Dropout(),
        nn.Linear(10, 3))


# name -> () -> (model, plane points, batch, box scale (a fraction of the default box) )
CASES = {
    "mlp": lambda: (bnlib.MLP([64, 16, 16, 16], n_classes=10, seed=0), slice(0, 3), None, 1.0),
    "mlp-bn-batch": lambda: (bnlib.MLP([64, 16, 16], batchnorm=True, n_classes=10, seed=1), slice(3, 6), 100, 1.0),
    "conv-maxpool": lambda: (ConvNet(seed=0), slice(0, 3), None, 1.0),
    "conv-maxpool-bn-batch": lambda: (ConvNet(batchnorm=True, seed=1), slice(6, 9), 100, 0.5),
    "conv-maxpool-bn-eval": lambda: (_seeded(2, lambda: ConvNet(batchnorm=True, seed=2)), slice(0, 3), None, 0.5),
    "conv-strided-avgpool-bn-batch": lambda: (_seeded(3, _strided), slice(9, 12), 50, 1.0),
    "conv-overlapping-maxpool": lambda: (_seeded(4, _overlapping_maxpool), slice(12, 15), None, 1.0),
    "resnet": lambda: (ResNet(seed=0), slice(0, 3), None, 1.0),
    "resnet-bn-batch": lambda: (ResNet(batchnorm=True, seed=1), slice(3, 6), 100, 0.4),
    "residual-mlp-bn-batch": lambda: (_seeded(5, _residual_mlp), slice(15, 18), 80, 1.0),
}


@functools.lru_cache(maxsize=None)
def build(name):
    model, rows, n_batch, scale = CASES[name]()
    X = _digits()
    image = any(isinstance(m, nn.Conv2d) for m in model.modules())
    pts = X[rows].reshape((3, 1, 8, 8) if image else (3, 64))
    batch = None if n_batch is None else X[100 : 100 + n_batch].reshape((-1,) + pts.shape[1:])
    plane = bnlib.Plane.through(torch.as_tensor(pts) if image else pts)
    xmin, xmax, ymin, ymax = plane.default_box()
    cx, cy, hx, hy = (xmin + xmax) / 2, (ymin + ymax) / 2, scale * (xmax - xmin) / 2, scale * (ymax - ymin) / 2
    box = (cx - hx, cx + hx, cy - hy, cy + hy)
    part = bnlib.partition(model, box, plane=plane, batch=batch)
    return model, pts, batch, box, part, PlaneOracle(model, pts, batch)


NAMES = list(CASES)


# ----------------------------------------------------------------------------------------
# the plane


def test_plane_through_points_is_orthonormal_and_centred():
    X = _digits()
    P = X[:3].reshape(3, 1, 8, 8)
    plane = bnlib.Plane.through(torch.as_tensor(P))
    assert plane.shape == (1, 8, 8) and plane.basis.shape == (64, 2) and plane.origin.shape == (64,)
    np.testing.assert_allclose(plane.basis.T @ plane.basis, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(plane.origin, P.reshape(3, -1).mean(0), atol=1e-12)
    # the anchors map back to the three images, and distances in the plane are input distances
    back = plane.to_input(plane.anchors)
    assert back.shape == (3, 1, 8, 8)
    np.testing.assert_allclose(back, P, atol=1e-12)
    d_plane = np.linalg.norm(plane.anchors[:, None] - plane.anchors[None], axis=2)
    d_input = np.linalg.norm(P.reshape(3, 1, -1) - P.reshape(1, 3, -1), axis=2)
    np.testing.assert_allclose(d_plane, d_input, atol=1e-12)
    np.testing.assert_allclose(plane.anchors.mean(0), 0, atol=1e-12)
    # projection: coordinates of to_input is the identity; of an off-plane point, its foot
    ab = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(plane.coordinates(plane.to_input(ab)), ab, atol=1e-12)
    x = plane.to_input(ab).reshape(5, -1)
    normal = X[50] - plane.origin - plane.basis @ (plane.basis.T @ (X[50] - plane.origin))
    np.testing.assert_allclose(plane.coordinates(x + normal), ab, atol=1e-12)
    # the default box: the anchors' bounding box and half of its size on each side
    lo, hi = plane.anchors.min(0), plane.anchors.max(0)
    xmin, xmax, ymin, ymax = plane.default_box()
    np.testing.assert_allclose([xmin, xmax], [lo[0] - (hi[0] - lo[0]) / 2, hi[0] + (hi[0] - lo[0]) / 2])
    np.testing.assert_allclose([ymin, ymax], [lo[1] - (hi[1] - lo[1]) / 2, hi[1] + (hi[1] - lo[1]) / 2])


@pytest.mark.parametrize(
    "points, match",
    [
        (np.zeros((3, 5)), "span a plane.*coincide"),
        (np.array([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]]), "span a plane.*one line"),
        (np.array([[0.0, 0, 0], [1, 1, 1], [3, 3, 3 + 1e-13]]), "span a plane"),
        (np.zeros((2, 5)), "three inputs"),
        (np.zeros((4, 5)), "three inputs"),
        (np.zeros(3), "three inputs"),
        (np.array([[0.0, np.nan], [1, 0], [0, 1]]), "finite"),
        (np.array([[0.0, np.inf], [1, 0], [0, 1]]), "finite"),
        ("abc", "three inputs"),
    ],
)
def test_plane_through_bad_points_raises(points, match):
    with pytest.raises(ValueError, match=match) as err:
        bnlib.Plane.through(points)
    assert "'points' parameter of Plane.through" in str(err.value)


# ----------------------------------------------------------------------------------------
# regions against torch


@pytest.mark.parametrize("name", NAMES)
def test_codes_equal_torch_patterns_at_interior_points(name):
    _, _, _, box, part, oracle = build(name)
    assert part.n_regions > 1
    inner = part.interior_points()
    for poly, p in zip(part.polygons[:2000], inner[:2000]):
        assert (signed_edge_distances(poly, p[None]) > 0).all()
    want = oracle.pattern(inner)
    assert part.codes.shape == want.shape and part.codes.dtype == bool
    np.testing.assert_array_equal(part.codes, want)
    np.testing.assert_array_equal(part.locate(inner), np.arange(part.n_regions))
    # one region per code: max-pooling splits only where an argmax changes (no over-splitting)
    assert len(np.unique(np.packbits(part.codes, axis=1), axis=0)) == part.n_regions
    assert part.unit_layer.shape == (part.codes.shape[1],) and part.depth == part.unit_layer.max()


@pytest.mark.parametrize("name", NAMES)
def test_areas_sum_to_the_box(name):
    _, _, _, box, part, _ = build(name)
    areas = part.areas()
    assert (areas > 0).all()
    assert abs(areas.sum() - box_area(box)) <= 1e-9 * box_area(box)
    assert part.box == box and part.plane is not None


@pytest.mark.parametrize("name", NAMES)
def test_locate_and_affine_maps_agree_with_torch(name):
    _, _, _, box, part, oracle = build(name)
    pts = uniform(box, 3000, seed=1)
    idx = part.locate(pts)
    assert (idx >= 0).all()
    pattern, out = oracle(pts)
    np.testing.assert_array_equal(part.codes[idx], pattern)
    mine = np.einsum("rij,rj->ri", part.affine_A[idx], pts) + part.affine_c[idx]
    np.testing.assert_allclose(mine, out, rtol=1e-9, atol=1e-9 * np.abs(out).max())
    want = out.argmax(1) if out.shape[1] > 1 else (out[:, 0] > 0).astype(int)
    np.testing.assert_array_equal(part.predict(pts), want)


@pytest.mark.parametrize("name", ["conv-maxpool", "resnet", "conv-overlapping-maxpool"])
def test_boundaries_separate_patterns_and_decision_boundary(name):
    _, _, _, box, part, oracle = build(name)
    seg = part.boundaries()
    assert len(seg) > 0 and set(np.unique(seg.layer)) <= set(range(1, part.depth + 1))
    long = seg.lengths() > 1e-3 * np.hypot(box[1] - box[0], box[3] - box[2])
    mid, d = seg.points[long].mean(1), seg.points[long, 1] - seg.points[long, 0]
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.linalg.norm(d, axis=1)[:, None]
    eps = 1e-7 * np.hypot(box[1] - box[0], box[3] - box[2])
    # across the middle of every boundary segment the pattern of its layer changes
    plus, minus = oracle.pattern(mid + eps * normal), oracle.pattern(mid - eps * normal)
    for lay in np.unique(seg.layer[long]):
        cols = part.unit_layer == lay
        rows = seg.layer[long] == lay
        assert (plus[rows][:, cols] != minus[rows][:, cols]).any(1).all()
    dist = part.distance_to_boundary(uniform(box, 50, seed=2))
    assert np.isfinite(dist).all() and (dist > 0).all()
    dec = part.decision_boundary()
    if len(dec):
        mid = dec.mean(1)
        dd = dec[:, 1] - dec[:, 0]
        ok = np.linalg.norm(dd, axis=1) > 1e-3 * np.hypot(box[1] - box[0], box[3] - box[2])
        n = np.stack([-dd[ok, 1], dd[ok, 0]], 1) / np.linalg.norm(dd[ok], axis=1)[:, None]
        assert (oracle.output(mid[ok] + eps * n).argmax(1) != oracle.output(mid[ok] - eps * n).argmax(1)).all()


@pytest.mark.parametrize("name", ["conv-maxpool-bn-batch", "conv-strided-avgpool-bn-batch", "resnet-bn-batch",
                                  "residual-mlp-bn-batch"])
def test_batch_statistics_match_torch_training_mode(name):
    model, pts, batch, _, _, _ = build(name)
    ref = copy.deepcopy(model).double().train()
    for m in ref.modules():
        if isinstance(m, nn.Dropout):
            m.eval()  # bnlib reads Dropout as the identity; only BN uses the batch
    with torch.no_grad():
        want = ref(torch.as_tensor(batch)).numpy()
    net = read_network(model, pts.shape[1:], batch=batch)
    np.testing.assert_allclose(net.forward(batch.reshape(len(batch), -1)), want, rtol=1e-9, atol=1e-9)


def test_two_input_residual_net_without_a_plane():
    """A 2-input net that is not a plain MLP goes through the general reader, box required."""
    net = _seeded(6, lambda: nn.Sequential(nn.Linear(2, 6), nn.ReLU(), Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU())),
                                            nn.Linear(6, 2)))
    box = (-2.0, 2.0, -2.0, 2.0)
    part = bnlib.partition(net, box)
    pts = uniform(box, 2000, seed=3)
    oracle_model = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        out = oracle_model(torch.as_tensor(pts)).numpy()
    idx = part.locate(pts)
    np.testing.assert_allclose(np.einsum("rij,rj->ri", part.affine_A[idx], pts) + part.affine_c[idx], out,
                               rtol=1e-9, atol=1e-9)
    assert abs(part.areas().sum() - 16.0) < 1e-9


def test_mlp_on_a_plane_keeps_affine_layers():
    """An MLP on a plane is still a list of AffineLayer (plane composed into the first)."""
    part = build("mlp")[4]
    assert part.layers is not None and part.layers[0].W.shape[1] == 2 and part.network is None


# ----------------------------------------------------------------------------------------
# bad input and budget


@pytest.mark.parametrize(
    "module, match",
    [(nn.LayerNorm(16), "LayerNorm.*not continuous piecewise-affine"), (nn.GELU(), "GELU.*not continuous"),
     (nn.Softmax(dim=1), "Softmax.*not continuous"), (nn.Sigmoid(), "Sigmoid"), (nn.Hardtanh(), "Hardtanh")],
)
def test_unsupported_modules_raise(module, match):
    net = nn.Sequential(nn.Linear(64, 16), module, nn.Linear(16, 2))
    plane = bnlib.Plane.through(_digits()[:3])
    with pytest.raises(ValueError, match=match):
        bnlib.partition(net, plane=plane)


def test_groupnorm_in_a_conv_net_raises():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.ReLU())
    with pytest.raises(ValueError, match="GroupNorm.*not continuous piecewise-affine"):
        bnlib.partition(net, plane=bnlib.Plane.through(_digits()[:3].reshape(3, 1, 8, 8)))


def test_wrong_shapes_and_values_raise():
    X = _digits()
    image_plane = bnlib.Plane.through(X[:3].reshape(3, 1, 8, 8))
    flat_plane = bnlib.Plane.through(X[:3])
    with pytest.raises(ValueError, match=r"Conv2d needs inputs of shape \(C, H, W\)"):
        bnlib.partition(ConvNet(), plane=flat_plane)
    with pytest.raises(ValueError, match="Linear expects 16"):
        bnlib.partition(bnlib.MLP([16, 4]), plane=flat_plane)
    with pytest.raises(ValueError, match="Linear expects 64.*Flatten"):
        bnlib.partition(bnlib.MLP([64, 4]), plane=image_plane)
    with pytest.raises(ValueError, match="'batch' parameter of partition.*shape"):
        bnlib.partition(ConvNet(batchnorm=True), plane=image_plane, batch=X[:10, :32])
    bad = X[:10].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        bnlib.partition(ConvNet(batchnorm=True), plane=image_plane, batch=bad)
    with pytest.raises(ValueError, match="at least 2"):
        bnlib.partition(ConvNet(batchnorm=True), plane=image_plane, batch=X[:1])
    with pytest.raises(ValueError, match="box"):
        bnlib.partition(bnlib.MLP([2, 4]))
    with pytest.raises(ValueError, match="'plane' parameter"):
        bnlib.partition(ConvNet(), plane=X[:3])
    with pytest.raises(ValueError, match="xmin < xmax"):
        bnlib.partition(ConvNet(), (1, 0, 0, 1), plane=image_plane)
    with pytest.raises(ValueError, match="'ab' parameter of Plane.to_input"):
        image_plane.to_input(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="'x' parameter of Plane.coordinates"):
        image_plane.coordinates(np.zeros((4, 63)))
    with pytest.raises(ValueError, match="orthonormal"):
        bnlib.Plane(np.zeros(3), np.ones((3, 2)), (3,))


def test_region_budget_raises_before_it_is_exceeded():
    part = build("conv-maxpool")[4]
    with pytest.raises(RegionBudgetExceeded, match="max_regions=100"):
        bnlib.partition(ConvNet(seed=0), part.box, plane=part.plane, max_regions=100)
    with pytest.raises(ValueError, match="budget"):  # a ValueError too
        bnlib.partition(bnlib.MLP([2, 16, 16, 16], seed=0), (-3, 3, -3, 3), max_regions=50)
