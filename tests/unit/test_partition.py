"""Unit tests of bnlib.partition against independent oracles.

The oracles (tests/unit/_oracles.py) are torch forward passes of float64 deep copies (activation
patterns, outputs; BN in eval mode or with train-mode batch statistics) and plain geometry
written out here (shoelace area, point in convex polygon, point-segment distance). No
expected value is copied from bnlib.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

import bnlib
from bnlib.partition import TOLERANCE
from _oracles import (
    TorchOracle,
    box_area,
    cluster,
    diameter,
    grid,
    in_box,
    in_convex_polygon,
    nearest_point_on_segments,
    pattern_keys,
    perimeter,
    point_segment_distance,
    randomize_batchnorm,
    shoelace,
    signed_edge_distances,
    uniform,
)

# ----------------------------------------------------------------------------------------
# the networks


def _seeded(seed, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = randomize_batchnorm(build())
    return net


def _nested_bn() -> nn.Sequential:
    """Nested Sequentials, an Identity, a bias-free Linear and a BatchNorm without affine part."""
    return nn.Sequential(
        nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4)), nn.ReLU(), nn.Identity(),
        nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6, affine=False), nn.LeakyReLU(0.05)),
        nn.Linear(6, 1))


def _trained_bn(seed):
    net = bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, n_classes=1, seed=seed)
    with torch.no_grad():
        for s in range(4):
            net(torch.as_tensor(cluster(64, seed=100 + s), dtype=torch.float32))
    return net


DATA_BOX = (-1.0, 4.0, -1.0, 3.0)  # around the cluster centred at (1.5, 1.0)


def _zoom_on_mean(seed, half_width=1e-6):
    """A BN net (beta = 0) seen in a tiny box around the batch mean, where its lines meet."""
    X = cluster(300, seed=seed)
    (mx, my) = X.mean(0)
    box = (mx - half_width, mx + half_width, my - half_width, my + half_width)
    return bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, seed=seed), box, X


def _far_from_origin(centre):
    """An MLP translated so that its interesting part lies around (centre, centre)."""
    shift = nn.Linear(2, 2)
    with torch.no_grad():
        shift.weight.copy_(torch.eye(2))
        shift.bias.fill_(-centre)
    model = nn.Sequential(shift, bnlib.MLP([2, 6, 6, 6, 6], seed=0))
    return model, (centre - 3, centre + 3, centre - 3, centre + 3), None

# name -> () -> (model, box, batch)
CASES = {
    "mlp6x4-s0": lambda: (bnlib.MLP([2, 6, 6, 6, 6], seed=0), (-3, 3, -3, 3), None),
    "mlp6x4-s1-nonsquare": lambda: (bnlib.MLP([2, 6, 6, 6, 6], seed=1), (-2.5, 4.0, -2.0, 3.0), None),
    "mlp6x4-relu-s2": lambda: (bnlib.MLP([2, 6, 6, 6, 6], negative_slope=0, seed=2), (-3, 3, -3, 3), None),
    "mlp6x4-bn-batch-s0": lambda: (bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, seed=0), DATA_BOX, cluster(300, seed=0)),
    "mlp6x4-bn-batch-s1-widebox": lambda: (
        bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, seed=1), (-3, 3, -3, 3), cluster(300, seed=1)),
    "mlp6x4-bn-batch-zoom-on-mean": lambda: _zoom_on_mean(0),
    "mlp6x4-far-from-origin": lambda: _far_from_origin(1000.0),
    "mlp6x4-bn-eval-trained-1out": lambda: (_trained_bn(3), DATA_BOX, None),
    "mlp-3classes-relu": lambda: (bnlib.MLP([2, 8, 7], negative_slope=0, n_classes=3, seed=4), (-2, 2, -2, 2), None),
    "mlp-2classes-bn-batch": lambda: (
        bnlib.MLP([2, 6, 6], batchnorm=True, n_classes=2, seed=6), DATA_BOX, cluster(200, seed=6)),
    "mlp-1class-bn-batch": lambda: (
        bnlib.MLP([2, 8, 8], batchnorm=True, n_classes=1, seed=5), DATA_BOX, cluster(200, seed=5)),
    "hand-relu-widths-ends-in-activation": lambda: (
        _seeded(0, lambda: nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3), nn.LeakyReLU(0.2),
                                         nn.Linear(3, 7), nn.ReLU())),
        (-2, 2, -2, 2), None),
    "hand-nested-identity-nobias-bn-eval-1out": lambda: (_seeded(1, _nested_bn), (-2, 2, -2, 2), None),
    "hand-nested-identity-nobias-bn-batch-1out": lambda: (
        _seeded(1, _nested_bn), DATA_BOX, cluster(150, seed=2)),
    "hand-two-linears-inplace-relu-3out": lambda: (
        _seeded(2, lambda: nn.Sequential(nn.Linear(2, 5), nn.Linear(5, 4), nn.ReLU(inplace=True),
                                         nn.Linear(4, 4), nn.LeakyReLU(0.1), nn.Linear(4, 3))),
        (-3, 3, -3, 3), None),
    "hand-bn-on-inputs-batch-3out": lambda: (
        _seeded(3, lambda: nn.Sequential(
            nn.BatchNorm1d(2), nn.Linear(2, 6), nn.LeakyReLU(0.3), nn.Linear(6, 6), nn.BatchNorm1d(6, eps=1e-3),
            nn.ReLU(), nn.Linear(6, 3), nn.Identity())),
        DATA_BOX, cluster(120, seed=3)),
    "hand-bn-on-inputs-eval-3out": lambda: (
        _seeded(3, lambda: nn.Sequential(
            nn.BatchNorm1d(2), nn.Linear(2, 6), nn.LeakyReLU(0.3), nn.Linear(6, 6), nn.BatchNorm1d(6, eps=1e-3),
            nn.ReLU(), nn.Linear(6, 3), nn.Identity())),
        (-2, 2, -2, 2), None),
}
CASE_NAMES = list(CASES)
CLASSIFIERS = [n for n in CASE_NAMES if any(k in n for k in ("1out", "3out", "class"))]


@functools.lru_cache(maxsize=None)
def build(name):
    """(model, box, batch, partition, oracle) of a case; cached, so tests must not mutate them."""
    model, box, batch = CASES[name]()
    part = bnlib.partition(model, box, batch=batch)
    return model, box, batch, part, TorchOracle(model, batch=batch)


def _polygon_tol(box):
    return 1e-9 * diameter(box)


# ----------------------------------------------------------------------------------------
# regions, codes, locate


@pytest.mark.parametrize("name", CASE_NAMES)
def test_codes_equal_torch_patterns_at_interior_points(name):
    model, box, batch, part, oracle = build(name)
    assert part.n_regions > 1
    n_units = sum(p.shape[1] for p in oracle(np.zeros((1, 2)))[0])
    assert part.codes.shape == (part.n_regions, n_units) and part.codes.dtype == bool
    # unit_layer: one column per unit, layer by layer, 1-based
    widths = [p.shape[1] for p in oracle(np.zeros((1, 2)))[0]]
    np.testing.assert_array_equal(part.unit_layer, np.repeat(np.arange(1, len(widths) + 1), widths))
    inner = part.interior_points()
    assert inner.shape == (part.n_regions, 2)
    for poly, p in zip(part.polygons, inner):  # strictly inside its own polygon
        assert (signed_edge_distances(poly, p[None]) > 0).all()
    np.testing.assert_array_equal(part.codes, oracle.pattern(inner))
    np.testing.assert_array_equal(part.locate(inner), np.arange(part.n_regions))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_codes_are_unique(name):
    part = build(name)[3]
    assert len(pattern_keys(part.codes)) == part.n_regions


@pytest.mark.parametrize("name", CASE_NAMES)
def test_polygons_convex_ccw_and_tile_the_box(name):
    _, box, _, part, _ = build(name)
    polys = part.polygons
    assert len(polys) == part.n_regions
    xmin, xmax, ymin, ymax = box
    tol = _polygon_tol(box)
    areas = np.array([shoelace(p) for p in polys])
    assert (areas > 0).all()
    assert abs(areas.sum() - box_area(box)) <= 1e-9 * box_area(box)
    for p in polys:
        assert p.dtype == np.float64 and p.ndim == 2 and p.shape[1] == 2 and len(p) >= 3
        assert (p[:, 0] >= xmin - tol).all() and (p[:, 0] <= xmax + tol).all()
        assert (p[:, 1] >= ymin - tol).all() and (p[:, 1] <= ymax + tol).all()
        e = np.roll(p, -1, axis=0) - p
        turn = e[:, 0] * np.roll(e[:, 1], -1) - e[:, 1] * np.roll(e[:, 0], -1)
        # every turn is a left turn (or straight, to rounding): convex and counter-clockwise
        assert (turn >= -1e-12 * diameter(box) ** 2).all()
        assert (np.linalg.norm(e, axis=1) > 0).all()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_areas_match_shoelace(name):
    """Partition.areas() against a shoelace taken relative to each polygon's first vertex."""
    _, box, _, part, _ = build(name)
    areas = part.areas()
    assert areas.shape == (part.n_regions,)
    np.testing.assert_allclose(areas, [shoelace(p) for p in part.polygons], rtol=1e-9, atol=1e-15 * box_area(box))
    assert (areas > 0).all()
    assert abs(areas.sum() - box_area(box)) <= 1e-9 * box_area(box)


def test_areas_far_from_the_origin():
    """Minimal case: a box of side 6 centred at (1e6, 1e6); areas() must not lose digits."""
    model, box, _ = _far_from_origin(1e6)
    part = bnlib.partition(model, box)
    exact = np.array([shoelace(p) for p in part.polygons])
    assert (exact > 0).all()
    np.testing.assert_allclose(part.areas(), exact, rtol=1e-6)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_regions_are_disjoint_and_cover(name):
    _, box, _, part, _ = build(name)
    pts = uniform(box, 2000, seed=11)
    tol = _polygon_tol(box)
    inside_loose = np.zeros(len(pts), dtype=int)
    inside_strict = np.zeros(len(pts), dtype=int)
    for poly in part.polygons:
        d = signed_edge_distances(poly, pts).min(axis=1)
        inside_loose += d >= -tol
        inside_strict += d > tol
    assert (inside_loose >= 1).all()  # covered
    assert (inside_strict <= 1).all()  # no overlaps
    near_boundary = inside_loose > 1
    assert near_boundary.mean() < 0.01  # only a few points lie within tol of an edge


@pytest.mark.parametrize("name", CASE_NAMES)
def test_locate_agrees_with_torch_and_geometry(name):
    _, box, _, part, oracle = build(name)
    pts = uniform(box, 4000, seed=5)
    idx = part.locate(pts)
    assert idx.dtype.kind == "i" and idx.shape == (4000,)
    assert (idx >= 0).all() and (idx < part.n_regions).all()
    np.testing.assert_array_equal(part.codes[idx], oracle.pattern(pts))
    tol = _polygon_tol(box)
    polys = part.polygons
    for r in np.unique(idx):
        assert in_convex_polygon(polys[r], pts[idx == r], tol).all()
    # torch tensors and lists are accepted too
    np.testing.assert_array_equal(part.locate(torch.as_tensor(pts[:10])), idx[:10])
    np.testing.assert_array_equal(part.locate(pts[:3].tolist()), idx[:3])


@pytest.mark.parametrize("name", ["mlp6x4-s0", "mlp6x4-bn-batch-s0"])
def test_locate_outside_the_box_and_on_its_edges(name):
    _, box, _, part, _ = build(name)
    xmin, xmax, ymin, ymax = box
    w, h = xmax - xmin, ymax - ymin
    outside = np.array([[xmin - 1e-9 * w, ymin + h / 2], [xmax + 0.5, ymin], [xmin, ymax + 1e-7], [1e6, -1e6]])
    np.testing.assert_array_equal(part.locate(outside), -1)
    corners = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax], [xmin, ymin + h / 3]])
    idx = part.locate(corners)
    assert (idx >= 0).all()
    for p, r in zip(corners, idx):
        assert in_convex_polygon(part.polygons[r], p[None], _polygon_tol(box)).all()
    assert part.locate(np.zeros((0, 2))).shape == (0,)


@pytest.mark.parametrize("name", ["mlp6x4-s0", "mlp6x4-bn-batch-s1-widebox", "hand-two-linears-inplace-relu-3out"])
def test_locate_points_on_boundaries(name):
    """A point on a boundary segment gets a region that touches it."""
    _, box, _, part, _ = build(name)
    seg = part.boundaries().points
    polys = part.polygons
    for t in (0.0, 0.3, 0.5, 1.0):
        pts = (1 - t) * seg[:, 0] + t * seg[:, 1]  # exactly the endpoints for t = 0, 1
        idx = part.locate(pts)
        assert (idx >= 0).all()
        for r in np.unique(idx):
            assert in_convex_polygon(polys[r], pts[idx == r], 1e-7 * diameter(box)).all()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_grid_codes_are_a_subset_of_the_exact_codes(name):
    _, box, _, part, oracle = build(name)
    found = pattern_keys(oracle.pattern(grid(box, 400)))
    exact = pattern_keys(part.codes)
    assert found <= exact
    # a 400x400 grid finds nearly every region (the missing ones are tiny)
    areas = part.areas()
    missing = [r for r, c in enumerate(part.codes) if c.tobytes() not in found]
    cell = box_area(box) / 399**2
    assert all(areas[r] < 20 * cell or areas[r] / perimeter(part.polygons[r]) < 2 * np.sqrt(cell) for r in missing)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_stages_regions_per_layer(name):
    _, box, _, part, oracle = build(name)
    assert part.depth == int(part.unit_layer.max())
    np.testing.assert_array_equal(part.regions(0)[0][[0, 2]], np.array([[box[0], box[2]], [box[1], box[3]]]))
    assert len(part.regions(0)) == 1
    assert all(np.array_equal(a, b) for a, b in zip(part.regions(), part.polygons))
    assert all(np.array_equal(a, b) for a, b in zip(part.regions(part.depth), part.polygons))
    previous = 1
    for layer in range(1, part.depth + 1):
        polys = part.regions(layer)
        assert abs(sum(shoelace(p) for p in polys) - box_area(box)) <= 1e-9 * box_area(box)
        prefix = part.codes[:, part.unit_layer <= layer]
        assert len(polys) == len(pattern_keys(prefix)) >= previous
        previous = len(polys)
        # each stage-l polygon: torch's pattern of layers 1..l at an interior point is one of the prefixes
        inner = np.array([p.mean(0) for p in polys])
        cols = oracle.pattern(inner)[:, part.unit_layer <= layer]
        assert pattern_keys(cols) == pattern_keys(prefix)


# ----------------------------------------------------------------------------------------
# affine maps and outputs


@pytest.mark.parametrize("name", CASE_NAMES)
def test_affine_maps_equal_torch_output(name):
    _, box, _, part, oracle = build(name)
    pts = uniform(box, 3000, seed=8)
    idx = part.locate(pts)
    out = oracle.output(pts)
    assert part.affine_A.shape == (part.n_regions, out.shape[1], 2)
    assert part.affine_c.shape == (part.n_regions, out.shape[1])
    mine = np.einsum("rij,rj->ri", part.affine_A[idx], pts) + part.affine_c[idx]
    np.testing.assert_allclose(mine, out, rtol=1e-9, atol=1e-9 * np.abs(out).max())


@pytest.mark.parametrize("name", CASE_NAMES)
def test_predict_equals_torch(name):
    _, box, _, part, oracle = build(name)
    pts = uniform(box, 3000, seed=9)
    out = oracle.output(pts)
    want = (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else out.argmax(1)
    np.testing.assert_array_equal(part.predict(pts), want)


# ----------------------------------------------------------------------------------------
# boundaries and distances


def _unit_columns(part):
    first = {l: int(np.flatnonzero(part.unit_layer == l)[0]) for l in np.unique(part.unit_layer)}
    return first


@pytest.mark.parametrize("name", CASE_NAMES)
def test_boundary_segments_lie_on_zero_sets(name):
    _, box, _, part, oracle = build(name)
    seg = part.boundaries()
    assert seg.points.shape == (len(seg), 2, 2) and len(seg) > 0
    assert seg.layer.shape == seg.unit.shape == (len(seg),)
    assert set(np.unique(seg.layer)) <= set(range(1, part.depth + 1))
    np.testing.assert_allclose(seg.lengths(), np.linalg.norm(seg.points[:, 1] - seg.points[:, 0], axis=1))
    tol = _polygon_tol(box)
    xmin, xmax, ymin, ymax = box
    assert (seg.points[..., 0] >= xmin - tol).all() and (seg.points[..., 0] <= xmax + tol).all()
    assert (seg.points[..., 1] >= ymin - tol).all() and (seg.points[..., 1] <= ymax + tol).all()
    scale = np.abs(oracle.preactivations(grid(box, 60))).max(axis=0) + 1e-300
    col = _unit_columns(part)
    cols = np.array([col[l] + u for l, u in zip(seg.layer, seg.unit)])
    assert (part.unit_layer[cols] == seg.layer).all()
    t = np.linspace(0, 1, 9)
    pts = (seg.points[:, None, 0] + t[None, :, None] * (seg.points[:, None, 1] - seg.points[:, None, 0])).reshape(-1, 2)
    pre = oracle.preactivations(pts).reshape(len(seg), len(t), -1)
    h = pre[np.arange(len(seg)), :, cols]  # (segments, t)
    assert (np.abs(h) <= 1e-9 * scale[cols][:, None]).all()
    # and every segment separates: its unit changes sign across the middle of the segment
    mid = seg.points.mean(1)
    d = seg.points[:, 1] - seg.points[:, 0]
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.linalg.norm(d, axis=1)[:, None]
    eps = 1e-6 * diameter(box)
    ok = seg.lengths() > 1e-4 * diameter(box)
    hp = oracle.preactivations(mid + eps * normal)[np.arange(len(seg)), cols]
    hm = oracle.preactivations(mid - eps * normal)[np.arange(len(seg)), cols]
    assert (np.sign(hp[ok]) * np.sign(hm[ok]) < 0).all()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_region_edges_are_covered_by_boundaries(name):
    """Every polygon edge not on the box's edges lies on some boundary segment."""
    _, box, _, part, _ = build(name)
    seg = part.boundaries().points
    xmin, xmax, ymin, ymax = box
    tol = 1e-9 * diameter(box)
    mids = np.concatenate([(p + np.roll(p, -1, axis=0)) / 2 for p in part.polygons])
    on_box = (
        (np.abs(mids[:, 0] - xmin) < tol) | (np.abs(mids[:, 0] - xmax) < tol)
        | (np.abs(mids[:, 1] - ymin) < tol) | (np.abs(mids[:, 1] - ymax) < tol)
    )
    assert (point_segment_distance(mids[~on_box], seg) < 1e-8 * diameter(box)).all()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_distance_to_boundary_brute_force(name):
    _, box, _, part, _ = build(name)
    pts = np.concatenate([uniform(box, 1500, seed=3), uniform(box, 20, seed=4) * 3])  # some outside the box
    seg = part.boundaries()
    d = part.distance_to_boundary(pts)
    assert d.shape == (len(pts),)
    np.testing.assert_allclose(d, point_segment_distance(pts, seg.points), rtol=1e-9, atol=1e-12)
    per_layer = []
    for layer in range(1, part.depth + 1):
        dl = part.distance_to_boundary(pts, layer=layer)
        mine = point_segment_distance(pts, seg.points[seg.layer == layer])
        np.testing.assert_allclose(dl, mine, rtol=1e-9, atol=1e-12)
        assert (dl >= d - 1e-12).all()
        per_layer.append(dl)
    np.testing.assert_allclose(np.min(per_layer, axis=0), d, rtol=1e-12, atol=0)
    # dense sampling of the drawn segments bounds the exact distance from above, tightly
    t = np.linspace(0, 1, 200)
    dense = (seg.points[:, None, 0] + t[None, :, None] * (seg.points[:, None, 1] - seg.points[:, None, 0])).reshape(-1, 2)
    sub = pts[:50]
    brute = np.sqrt(((sub[:, None, :] - dense[None]) ** 2).sum(2)).min(1)
    step = seg.lengths().max() / 199
    assert (brute >= d[:50] - 1e-12).all() and (brute <= d[:50] + step).all()


def _circle(p, r, n=96):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return p + r * np.stack([np.cos(a), np.sin(a)], axis=1)


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("layer", [None, 1, "deepest"])
def test_distance_is_the_radius_of_a_pattern_constant_disk(name, layer):
    """Inside radius d the pattern (of layer l) is constant; just past the nearest point it changes."""
    _, box, _, part, oracle = build(name)
    if layer == "deepest":  # the deepest layer that draws a boundary in the box
        layer = int(part.boundaries().layer.max())
    cols = slice(None) if layer is None else part.unit_layer == layer
    seg = part.boundaries(layer).points
    pts = uniform(box, 120, seed=21)
    d = part.distance_to_boundary(pts, layer=layer)
    assert np.isfinite(d).all() and (d > 0).all()
    centre = oracle.pattern(pts)[:, cols]
    rings = np.stack([_circle(p, 0.999 * dist) for p, dist in zip(pts, d)])  # (n, 96, 2)
    ring_pattern = oracle.pattern(rings.reshape(-1, 2))[:, cols].reshape(len(pts), rings.shape[1], -1)
    same = (ring_pattern == centre[:, None, :]).all(axis=2)
    assert same[in_box(box, rings.reshape(-1, 2)).reshape(same.shape)].all()
    # the nearest boundary point is on the zero set of a unit of that layer
    near = np.array([nearest_point_on_segments(p, seg) for p in pts])
    np.testing.assert_allclose(np.linalg.norm(near - pts, axis=1), d, rtol=1e-9, atol=1e-9 * diameter(box))
    scale = np.abs(oracle.preactivations(grid(box, 60))).max(axis=0)[cols]
    assert (np.abs(oracle.preactivations(near)[:, cols]).min(axis=1) <= 1e-9 * scale.max()).all()
    if layer is None:
        # the region of p is convex and holds the disk, so its supporting line at the nearest
        # point is tangent to the disk: just beyond that point lies another region
        beyond = pts + 1.001 * (near - pts)
        ok = in_box(box, beyond)
        assert ok.sum() > 60
        assert (oracle.pattern(beyond[ok]) != centre[ok]).any(axis=1).all()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_layers_without_boundaries_have_infinite_distance(name):
    """A layer whose units keep their sign on the whole box draws nothing: distance inf."""
    _, box, _, part, oracle = build(name)
    pattern = oracle.pattern(grid(box, 200))
    for layer in range(1, part.depth + 1):
        constant = (pattern[:, part.unit_layer == layer] == pattern[:1, part.unit_layer == layer]).all()
        drawn = len(part.boundaries(layer)) > 0
        assert drawn != constant
        if not drawn:
            assert np.isinf(part.distance_to_boundary(uniform(box, 10), layer=layer)).all()


def test_box_edges_are_not_boundaries():
    # two lines, x = -10 and y = -10, both outside the box: one region, no boundary
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.copy_(torch.tensor([10.0, 10.0]))
    part = bnlib.partition(net, (-1, 1, -1, 1))
    assert part.n_regions == 1 and len(part.boundaries()) == 0
    np.testing.assert_array_equal(part.codes, [[True, True]])
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.3], [0.99, -0.99]])
    assert np.isinf(part.distance_to_boundary(pts)).all()
    assert np.isinf(part.distance_to_boundary(pts, layer=1)).all()
    # one line x = 0.25 inside: distances are to it, never to the box's edges
    with torch.no_grad():
        net[0].bias.copy_(torch.tensor([-0.25, 10.0]))
    part = bnlib.partition(net, (-1, 1, -1, 1))
    assert part.n_regions == 2 and len(part.boundaries()) == 1
    np.testing.assert_allclose(part.boundaries().points[0][np.argsort(part.boundaries().points[0][:, 1])],
                               [[0.25, -1.0], [0.25, 1.0]], atol=1e-12)
    np.testing.assert_allclose(part.distance_to_boundary(pts), [0.25, 0.75, 1.25, 0.74], atol=1e-12)
    np.testing.assert_allclose(sorted(part.areas()), [1.5, 2.5], rtol=1e-12)


# ----------------------------------------------------------------------------------------
# decision boundary


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_decision_boundary(name):
    _, box, _, part, oracle = build(name)
    segs = part.decision_boundary()
    assert segs.ndim == 3 and segs.shape[1:] == (2, 2)
    n_out = part.affine_A.shape[1]
    g = grid(box, 300)
    cls = oracle.predict(g)
    if len(np.unique(cls)) >= 2:
        assert len(segs) > 0
    if len(segs) == 0:
        return
    scale = np.abs(oracle.output(g)).max()
    lengths = np.linalg.norm(segs[:, 1] - segs[:, 0], axis=1)
    assert (lengths > 0).all()
    t = np.linspace(0, 1, 7)
    along = (segs[:, None, 0] + t[None, :, None] * (segs[:, None, 1] - segs[:, None, 0])).reshape(-1, 2)
    out = oracle.output(along)
    if n_out == 1:
        assert (np.abs(out[:, 0]) <= 1e-9 * scale).all()
    else:
        top = np.sort(out, axis=1)
        assert (top[:, -1] - top[:, -2] <= 1e-9 * scale).all()
    # either side of the middle of each (not tiny) segment: two different classes
    ok = lengths > 1e-4 * diameter(box)
    mid = segs[ok].mean(1)
    dvec = segs[ok, 1] - segs[ok, 0]
    normal = np.stack([-dvec[:, 1], dvec[:, 0]], 1) / np.linalg.norm(dvec, axis=1)[:, None]
    eps = 1e-6 * diameter(box)
    assert (oracle.predict(mid + eps * normal) != oracle.predict(mid - eps * normal)).all()
    # wherever two neighbouring grid points differ in class, a decision segment runs between them
    n = 300
    C = cls.reshape(n, n)
    P = g.reshape(n, n, 2)
    h = max((box[1] - box[0]), (box[3] - box[2])) / (n - 1)
    mids = np.concatenate([
        ((P[:, 1:] + P[:, :-1]) / 2)[C[:, 1:] != C[:, :-1]],
        ((P[1:, :] + P[:-1, :]) / 2)[C[1:, :] != C[:-1, :]],
    ])
    assert len(mids) > 0
    assert (point_segment_distance(mids, segs) <= h / 2 + 1e-12).all()
    # segments lie in the box
    assert in_box(box, segs.reshape(-1, 2), margin=-1e-9 * diameter(box)).all()


def test_decision_boundary_of_a_linear_model():
    net = nn.Sequential(nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        net[0].bias.copy_(torch.tensor([-0.5]))
    part = bnlib.partition(net, (-1, 1, -1, 1))
    assert part.n_regions == 1
    (seg,) = part.decision_boundary()
    np.testing.assert_allclose(sorted(map(tuple, seg)), [(-0.5, 1.0), (1.0, -0.5)], atol=1e-12)
    np.testing.assert_allclose(part.affine_A[0], [[1.0, 1.0]])
    np.testing.assert_array_equal(part.predict([[0.9, 0.9], [-0.9, 0.0]]), [1, 0])


def test_locate_on_a_model_without_hidden_layer():
    """A Sequential of one Linear is a valid model: one region, and locate must find it."""
    net = nn.Sequential(nn.Linear(2, 1))
    part = bnlib.partition(net, (-1, 1, -1, 1))
    assert part.n_regions == 1 and part.codes.shape == (1, 0)
    np.testing.assert_array_equal(part.locate([[0.1, 0.2], [5.0, 5.0]]), [0, -1])
    assert np.isinf(part.distance_to_boundary([[0.1, 0.2]])).all()


@pytest.mark.parametrize("name", ["hand-relu-widths-ends-in-activation", "mlp6x4-s0"])
def test_decision_boundary_needs_an_output_linear(name):
    part = build(name)[3]
    with pytest.raises(ValueError, match="Linear"):
        part.decision_boundary()


# ----------------------------------------------------------------------------------------
# degeneracy: BN with beta = 0 makes every first-layer line pass through the batch mean


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bn_concurrent_lines_make_no_slivers(seed):
    model = bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, seed=seed)
    X = cluster(300, seed=seed)
    box = DATA_BOX
    part = bnlib.partition(model, box, batch=X)
    mean = X.mean(0)
    oracle = TorchOracle(model, batch=X)
    # the oracle's first-layer pre-activations all vanish at the batch mean
    pre1 = oracle(mean[None])[0][0]
    assert np.abs(pre1).max() < 1e-12
    # six distinct lines through one point: exactly 12 sectors after layer 1
    stage1 = part.regions(1)
    assert len(stage1) == 12
    for poly in stage1:
        assert np.linalg.norm(poly - mean, axis=1).min() < 1e-9 * diameter(box)
    areas = part.areas()
    assert areas.min() > 1e-12 * box_area(box)
    widths = np.array([a / perimeter(p) for a, p in zip(areas, part.polygons)])
    assert widths.min() > TOLERANCE * diameter(box)
    assert abs(areas.sum() - box_area(box)) <= 1e-9 * box_area(box)
    # the regions meeting at the mean are the patterns torch sees on a tiny circle around it
    r = 1e-7 * diameter(box)
    around = pattern_keys(oracle.pattern(_circle(mean, r, 20000)))
    touching = [k for k, p in enumerate(part.polygons) if np.linalg.norm(p - mean, axis=1).min() < r / 10]
    assert around == pattern_keys(part.codes[touching])
    assert len(touching) >= 12


@pytest.mark.parametrize("offset", [0.0, 1e-14, 3e-13])
def test_exactly_and_nearly_concurrent_lines(offset):
    """Four lines through (or within ~1e-13 of) the origin: 8 sectors, never tiny triangles."""
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    with torch.no_grad():
        net = net.double()
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]], dtype=torch.float64))
        net[0].bias.copy_(torch.tensor([0.0, offset, -offset, 2 * offset], dtype=torch.float64))
    part = bnlib.partition(net, (-1, 1, -1, 1))
    assert part.n_regions == 8
    np.testing.assert_allclose(part.areas(), 0.5, rtol=1e-9)
    assert len(pattern_keys(part.codes)) == 8
    np.testing.assert_array_equal(part.codes, TorchOracle(net).pattern(part.interior_points()))


def test_duplicate_and_opposite_units():
    """Three units on one line (same and opposite orientation): still two regions."""
    net = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.1), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2.0], [1.0, 2.0], [-2.0, -4.0]]))
        net[0].bias.copy_(torch.tensor([0.5, 0.5, -1.0]))
    part = bnlib.partition(net, (-1, 1, -1, 1))
    assert part.n_regions == 2
    np.testing.assert_allclose(part.areas().sum(), 4.0, rtol=1e-12)
    assert pattern_keys(part.codes) == pattern_keys(np.array([[True, True, False], [False, False, True]]))
    np.testing.assert_array_equal(part.codes, TorchOracle(net).pattern(part.interior_points()))


# ----------------------------------------------------------------------------------------
# regioncam (soft oracle, float32)


@pytest.mark.parametrize(
    "widths, batchnorm, seed",
    [([2, 6, 6, 6, 6], False, 0), ([2, 6, 6, 6, 6], False, 1), ([2, 6, 6, 6, 6], False, 2),
     ([2, 12, 12, 12], False, 3), ([2, 8, 8, 8], True, 4), ([2, 6, 6, 6, 6], True, 5)],
)
def test_region_count_matches_regioncam(widths, batchnorm, seed):
    rc = pytest.importorskip("regioncam")
    model = bnlib.MLP(widths, batchnorm=batchnorm, seed=seed)
    if batchnorm:  # random beta: BN without the deliberate concurrency, which float32 regioncam splinters
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for m in model.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.bias.uniform_(-1, 1)
    batch = cluster(200, seed=seed) if batchnorm else None
    size = 3.0
    part = bnlib.partition(model, (-size, size, -size, size), batch=batch)
    cam = rc.Regioncam(size)
    for L in bnlib.affine_layers(model, batch=batch):
        cam.linear(L.W.T.astype(np.float32).copy(), L.b.astype(np.float32).copy())
        cam.leaky_relu(L.slope)
    assert abs(part.n_regions - cam.num_faces) <= 0.005 * cam.num_faces


# ----------------------------------------------------------------------------------------
# determinism


def _arrays(part):
    seg = part.boundaries()
    return [part.vertices, part.counts, part.codes, part.unit_layer, part.affine_A, part.affine_c,
            seg.points, seg.layer, seg.unit, part.areas(),
            part.decision_boundary() if not part.layers[-1].has_activation else np.zeros(0)]


@pytest.mark.parametrize("name", ["mlp6x4-bn-batch-s0", "mlp-3classes-relu"])
def test_deterministic(name):
    model, box, batch = CASES[name]()
    a = _arrays(bnlib.partition(model, box, batch=batch))
    b = _arrays(bnlib.partition(model, box, batch=batch))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        c = _arrays(bnlib.partition(model, box, batch=batch))
        torch.set_num_threads(2)
        d = _arrays(bnlib.partition(model, box, batch=batch))
    finally:
        torch.set_num_threads(threads)
    for x, y, z, w in zip(a, b, c, d):
        assert np.array_equal(x, y) and np.array_equal(x, z) and np.array_equal(x, w)


# ----------------------------------------------------------------------------------------
# bad input


@pytest.fixture(scope="module")
def part6():
    return bnlib.partition(bnlib.MLP([2, 6, 6, 6, 6], n_classes=3, seed=0), (-3, 3, -3, 3))


@pytest.mark.parametrize(
    "box, match",
    [
        ((1, 1, 0, 1), "xmin < xmax and ymin < ymax"),
        ((0, 1, 2, -2), "xmin < xmax and ymin < ymax"),
        ((1, 0, 0, 1), "xmin < xmax and ymin < ymax"),
        ((0, 1, 0), "xmin < xmax"),
        ((0, 1, 0, 1, 2), "xmin < xmax"),
        (3.0, "four finite numbers"),
        ((0, np.nan, 0, 1), "finite"),
        ((0, np.inf, 0, 1), "finite"),
        (("a", 1, 0, 1), "four finite numbers"),
    ],
)
def test_bad_box_raises(box, match):
    with pytest.raises(ValueError, match=match):
        bnlib.partition(bnlib.MLP([2, 4]), box)


def test_model_with_three_inputs_raises():
    with pytest.raises(ValueError, match="2-D|2 inputs|3 inputs"):
        bnlib.partition(bnlib.MLP([3, 4, 4]), (-1, 1, -1, 1))
    with pytest.raises(ValueError, match="2-D|3 inputs"):
        bnlib.partition(bnlib.affine_layers(bnlib.MLP([3, 4])), (-1, 1, -1, 1))


@pytest.mark.parametrize("model", [[], None, "net", [np.eye(2)], 3.0], ids=["empty", "None", "str", "arrays", "float"])
def test_model_that_is_neither_module_nor_affine_layers_raises(model):
    with pytest.raises(ValueError, match="model|layer"):
        bnlib.partition(model, (-1, 1, -1, 1))


def test_batch_with_affine_layers_raises():
    layers = bnlib.affine_layers(bnlib.MLP([2, 4]))
    with pytest.raises(ValueError, match="batch"):
        bnlib.partition(layers, (-1, 1, -1, 1), batch=cluster(10))


@pytest.mark.parametrize("method", ["locate", "distance_to_boundary", "predict", "activation_patterns"])
@pytest.mark.parametrize(
    "points, match",
    [
        (np.zeros((5, 3)), r"\(n, 2\)"),
        (np.zeros(2), r"\(n, 2\)"),
        (np.zeros((2, 2, 2)), r"\(n, 2\)"),
        (np.array([[0.0, np.nan]]), "NaN|finite"),
        (np.array([[np.inf, 0.0]]), "NaN|finite"),
    ],
)
def test_bad_points_raise(part6, method, points, match):
    with pytest.raises(ValueError, match=match):
        getattr(part6, method)(points)


@pytest.mark.parametrize("layer", [-1, 5, 100])
def test_layer_out_of_range_raises(part6, layer):
    with pytest.raises(ValueError, match="layer"):
        part6.boundaries(layer)
    with pytest.raises(ValueError, match="layer"):
        part6.distance_to_boundary([[0.0, 0.0]], layer=layer)
    with pytest.raises(ValueError, match="layer"):
        part6.regions(layer)


def test_layer_zero_is_not_a_hidden_layer(part6):
    """Hidden layers are 1-based; boundaries(0) silently returning nothing hides a 0-based slip."""
    assert len(part6.regions(0)) == 1  # the box itself: documented for regions()
    with pytest.raises(ValueError, match="layer"):
        part6.boundaries(0)
    with pytest.raises(ValueError, match="layer"):
        part6.distance_to_boundary([[0.0, 0.0]], layer=0)
