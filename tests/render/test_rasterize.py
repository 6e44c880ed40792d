"""The fast rasteriser against the slow reference, and the barycentric maths against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.geometry.raster import barycentric_planes, perspective_correct, sample_index_range
from insertanywhere.render.rasterize import rasterize, rasterize_reference


def test_barycentric_planes_hand_case() -> None:
    triangle = np.array([[[0.0, 0.0], [4.0, 0.0], [0.0, 2.0]]])
    planes, valid = barycentric_planes(triangle)
    assert valid.all()
    point = np.array([1.0, 0.5, 1.0])  # (x, y, 1)
    lam = planes[0] @ point
    np.testing.assert_allclose(lam, [1 - 0.25 - 0.25, 0.25, 0.25])


def test_barycentric_planes_flag_degenerate() -> None:
    _, valid = barycentric_planes(np.array([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]]))
    assert not valid[0]


def test_sample_index_range_uses_pixel_centres() -> None:
    first, last = sample_index_range(np.array([0.4, 0.6, -3.0]), np.array([1.5, 1.4, 100.0]), 10)
    np.testing.assert_array_equal(first, [0, 1, 0])
    np.testing.assert_array_equal(last, [1, 0, 9])  # second: empty (no centre in [0.6, 1.4])


def test_perspective_correct_midpoint_of_receding_edge() -> None:
    # Screen midpoint between z=1 and z=3 is at 1/z = (1 + 1/3)/2 -> z = 1.5, world weight 1/3 on the far end.
    bary, depth = perspective_correct(np.array([[0.5, 0.5, 0.0]]), np.array([[1.0, 3.0, 2.0]]))
    np.testing.assert_allclose(depth, [1.5])
    np.testing.assert_allclose(bary, [[0.75, 0.25, 0.0]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_matches_reference_on_random_triangles(seed: int) -> None:
    rng = np.random.default_rng(seed)
    grid_w, grid_h = 23, 17
    n_faces = 12
    vertices = rng.uniform([-4, -4], [grid_w + 4, grid_h + 4], size=(3 * n_faces, 2))
    depth = rng.uniform(0.5, 5.0, size=3 * n_faces)
    faces = np.arange(3 * n_faces).reshape(n_faces, 3)
    fast = rasterize(vertices, depth, faces, grid_w, grid_h)
    slow = rasterize_reference(vertices, depth, faces, grid_w, grid_h)
    assert slow.sample_index.size > 50
    # Coverage identical (ties on exact edges are measure-zero for random floats).
    np.testing.assert_array_equal(fast.covered, slow.covered)
    same_face = fast.dense_face_index() == slow.dense_face_index()
    assert same_face.mean() > 0.995  # float32 depth ties between crossing triangles may pick either
    both = fast.covered & same_face
    np.testing.assert_allclose(fast.dense_depth()[both], slow.dense_depth()[both], rtol=1e-6)
    np.testing.assert_allclose(fast.dense_bary()[both], slow.dense_bary()[both], atol=1e-6)


def test_shared_edge_has_no_cracks() -> None:
    # A quad split along its diagonal, drawn on a grid where sample centres fall exactly on the diagonal.
    vertices = np.array([[0.0, 0.0], [8.0, 0.0], [8.0, 8.0], [0.0, 8.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    visibility = rasterize(vertices, np.ones(4), faces, 8, 8)
    assert visibility.covered.all()


def test_chunking_does_not_change_the_result() -> None:
    rng = np.random.default_rng(5)
    vertices = rng.uniform(0, 40, size=(60, 2))
    depth = rng.uniform(1.0, 2.0, size=60)
    faces = np.arange(60).reshape(20, 3)
    whole = rasterize(vertices, depth, faces, 40, 40)
    chunked = rasterize(vertices, depth, faces, 40, 40, max_fragments=50)
    np.testing.assert_array_equal(whole.dense_face_index(), chunked.dense_face_index())


def test_faces_behind_the_near_plane_are_dropped() -> None:
    vertices = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    visibility = rasterize(vertices, np.array([1.0, -1.0, 1.0]), np.array([[0, 1, 2]]), 10, 10)
    assert visibility.sample_index.size == 0


def test_pixel_resolve_matches_the_reference_samples() -> None:
    from insertanywhere.render.rasterize import rasterize_pixels

    rng = np.random.default_rng(7)
    width, height, s = 12, 9, 2
    vertices_px = rng.uniform([-2, -2], [width + 2, height + 2], size=(24, 2))
    depth = rng.uniform(1.0, 4.0, size=24)
    faces = np.arange(24).reshape(8, 3)
    pixels = rasterize_pixels(vertices_px, depth, faces, width, height, supersample=s)
    samples = rasterize_reference(vertices_px * s, depth, faces, width * s, height * s)
    covered = samples.covered.reshape(height, s, width, s)
    expected_coverage = covered.mean(axis=(1, 3)).ravel()
    expected_depth = samples.dense_depth().reshape(height, s, width, s).min(axis=(1, 3)).ravel()
    got_coverage = np.zeros(width * height)
    got_coverage[pixels.pixel_index] = pixels.coverage
    np.testing.assert_allclose(got_coverage, expected_coverage)
    np.testing.assert_allclose(pixels.depth, expected_depth[pixels.pixel_index], rtol=1e-6)
    np.testing.assert_allclose(pixels.bary.sum(axis=1), 1.0)
    assert (pixels.bary >= 0).all()
