"""Occlusion: static depth, the support-plane exemption, ground-contact ordering of movers, edge refinement."""

import cv2
import numpy as np

from insertanywhere.conventions import Camera
from insertanywhere.geometry.planes import Plane
from insertanywhere.place.occlusion import FrameGeometry, refine_against_image, visible_alpha

from .conftest import HEIGHT, WIDTH, build_scene, orbit_cameras


def _frame(intrinsics):
    cameras = orbit_cameras(intrinsics, 1, 0.0)
    scene = build_scene(cameras + cameras, [np.eye(4)] * 2)
    camera: Camera = cameras[0]
    plane = Plane.from_point_normal(np.zeros(3), np.array([0, 1.0, 0]))
    contact = np.zeros(3)
    depth = np.array(scene.depth[0])
    geometry = FrameGeometry(
        camera, depth, np.zeros((HEIGHT, WIDTH), bool), plane, contact, np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    )
    contact_px, contact_z = camera.project(contact[None])
    # An object: a 20x30 px patch standing above the contact at the contact's depth.
    coverage = np.zeros((HEIGHT, WIDTH), np.float32)
    cx, cy = contact_px[0].astype(int)
    coverage[cy - 30 : cy, cx - 10 : cx + 10] = 1.0
    object_depth = np.where(coverage > 0, contact_z[0], np.inf).astype(np.float32)
    bbox = (cx - 10, cy - 30, cx + 10, cy)
    return geometry, coverage, object_depth, bbox, (cx, cy), float(contact_z[0])


def test_unoccluded_object_stays_whole_on_its_support(intrinsics):
    geometry, coverage, object_depth, bbox, _, _ = _frame(intrinsics)
    alpha = visible_alpha(geometry, coverage, object_depth, bbox, refine=False)
    # Floor pixels at the object's base are nearer than parts of the object but are its support.
    assert np.array_equal(alpha, coverage)


def test_static_occluder_hides_the_pixels_it_covers(intrinsics):
    geometry, coverage, object_depth, bbox, (cx, cy), z = _frame(intrinsics)
    geometry.scene_depth[cy - 30 : cy - 15, cx - 10 : cx] = 0.5 * z  # a pole in front, top-left quarter
    alpha = visible_alpha(geometry, coverage, object_depth, bbox, refine=False, segment_snap=False)
    assert alpha[cy - 30 : cy - 15, cx - 10 : cx].max() == 0.0
    assert alpha[cy - 14 : cy, :].sum() == coverage[cy - 14 : cy, :].sum()
    geometry.scene_depth[cy - 30 : cy - 15, cx - 10 : cx] = 2.0 * z  # now behind: nothing hidden
    assert np.array_equal(visible_alpha(geometry, coverage, object_depth, bbox, refine=False), coverage)


def test_depth_bleeding_across_an_image_edge_is_snapped_back(intrinsics):
    geometry, coverage, object_depth, bbox, (cx, cy), z = _frame(intrinsics)
    # A near post occupies the image left of x = cx - 4 (dark); its densified depth bleeds 6 px to the right.
    geometry.image[:, : cx - 4] = 30
    geometry.scene_depth[:, : cx + 2] = 0.5 * z
    alpha = visible_alpha(geometry, coverage, object_depth, bbox, refine=False)
    assert alpha[cy - 20, cx - 8] == 0.0  # behind the post
    assert alpha[cy - 20, cx - 2] == 1.0  # bled depth, but the image says it is not the post


def test_a_mover_lends_no_depth_to_the_background_it_shares_a_segment_with(intrinsics):
    geometry, coverage, object_depth, bbox, (cx, cy), z = _frame(intrinsics)
    # One flat-coloured segment: a near mover with known depth on the left, the far wall behind the object.
    geometry.scene_depth[: cy - 10, :] = 2.0 * z
    geometry.scene_depth[: cy - 10, : cx - 4] = 0.5 * z
    geometry.dynamic_mask[: cy - 10, : cx - 4] = True
    alpha = visible_alpha(geometry, coverage, object_depth, bbox, refine=False)
    assert alpha[cy - 20, cx - 8] == 0.0  # the mover is in front
    assert alpha[cy - 20, cx + 2 : cx + 10].min() == 1.0  # the wall is behind, whatever the segment says


def test_mover_without_depth_is_ordered_by_ground_contact(intrinsics):
    geometry, coverage, object_depth, bbox, (cx, cy), _ = _frame(intrinsics)
    mover = np.zeros((HEIGHT, WIDTH), bool)
    mover[cy - 40 : cy + 10, cx - 5 : cx + 5] = True  # touches the floor below (nearer than) the object's contact
    geometry.dynamic_mask[:] = mover
    geometry.scene_depth[mover] = 0.0
    alpha = visible_alpha(geometry, coverage, object_depth, bbox, refine=False)
    assert alpha[cy - 20, cx] == 0.0 and alpha[cy - 20, cx - 8] == 1.0
    mover[:] = False
    mover[cy - 60 : cy - 10, cx - 5 : cx + 5] = True  # its contact is above (behind) the object's contact
    geometry.dynamic_mask[:] = mover
    geometry.cache.clear()  # a FrameGeometry caches its movers' order: changed in place, it must be told
    assert np.array_equal(visible_alpha(geometry, coverage, object_depth, bbox, refine=False), coverage)


def test_a_mover_mask_where_the_picture_has_not_changed_hides_nothing(intrinsics):
    """Residual masks spread over a textureless table: a mover "in front" by its ground contact hides the
    object only where the picture differs from the placement frame (seen through the support's plane)."""
    geometry, coverage, object_depth, bbox, (cx, cy), _ = _frame(intrinsics)
    mover = np.zeros((HEIGHT, WIDTH), bool)
    mover[cy - 40 : cy + 10, cx - 5 : cx + 5] = True  # ordered in front by its contact (see above)
    geometry.dynamic_mask[:] = mover
    geometry.scene_depth[mover] = 0.0
    geometry.reference = (geometry.image.astype(np.float32), geometry.camera, geometry.support_plane, np.eye(4))
    assert np.array_equal(visible_alpha(geometry, coverage, object_depth, bbox, refine=False), coverage)
    geometry.image = geometry.image.copy()
    geometry.image[mover] = 40  # now something dark stands there
    geometry.cache.clear()
    alpha = visible_alpha(geometry, coverage, object_depth, bbox, refine=False)
    assert alpha[cy - 20, cx] == 0.0 and alpha[cy - 20, cx - 8] == 1.0


def test_a_moving_supports_own_body_in_the_mover_mask_hides_nothing(intrinsics):
    """The mover mask takes in the cart under the object: its picture is the placement frame's, carried by the
    support's motion, so it is not an occluder; a different picture there is."""
    from insertanywhere.conventions import make_pose

    geometry, coverage, object_depth, bbox, (cx, cy), _ = _frame(intrinsics)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8), (0, 0), 2.0)
    motion = make_pose(np.eye(3), np.array([0.05, 0.0, 0.0]))  # the cart slid along the floor
    camera, plane = geometry.camera, geometry.support_plane
    plane_cam = plane.transformed(camera.cam_from_world)
    b_from_a = camera.cam_from_world @ motion @ camera.world_from_cam
    homography = camera.K @ (b_from_a[:3, :3] - np.outer(b_from_a[:3, 3], plane_cam.normal) / plane_cam.offset)
    homography = homography @ np.linalg.inv(camera.K)
    geometry.image = cv2.warpPerspective(texture, homography, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
    cart = np.zeros((HEIGHT, WIDTH), bool)
    cart[cy - 40 : cy + 10, cx - 30 : cx + 30] = True  # its floor contact is nearer than the object's
    geometry.dynamic_mask[:] = cart
    geometry.scene_depth[cart] = 0.0
    geometry.support_moves = True
    geometry.support_region = np.zeros((HEIGHT, WIDTH), bool)  # its flow test failed in this frame
    geometry.reference = (texture.astype(np.float32), camera, plane, motion)
    assert np.array_equal(visible_alpha(geometry, coverage, object_depth, bbox, refine=False), coverage)
    geometry.image = geometry.image.copy()
    geometry.image[cart] = 255 - geometry.image[cart]  # something else stands there
    geometry.cache.clear()
    assert visible_alpha(geometry, coverage, object_depth, bbox, refine=False)[cy - 20, cx] == 0.0


def test_refinement_snaps_a_mask_to_the_image_edge():
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    mask = np.zeros((40, 40), bool)
    mask[:, 17:] = True  # 3 px off the image edge at x = 20
    image = np.repeat((guide * 255).astype(np.uint8)[..., None], 3, axis=2)
    refined = refine_against_image(image, mask, radius=4, eps=1e-3)
    assert refined[:, 25:].min() > 0.9 and refined[:, :12].max() < 0.1
    # Inside the flat dark region the soft mask is smooth, the jump happens at the image edge.
    assert refined[20, 21] - refined[20, 18] > 0.2


def test_snap_mover_edges_pulls_a_leading_mask_back_to_the_mover():
    """A residual mask that runs 10 px ahead of a blue panel over a grey, textured wall is cut back to the panel."""
    from insertanywhere.place.occlusion import snap_mover_edges

    rng = np.random.default_rng(0)
    image = np.repeat(rng.integers(100, 160, (80, 120, 1), dtype=np.uint8), 3, axis=2)  # the wall
    image[:, :50] = (30, 40, 150)  # the panel, its edge at x = 50
    leading = np.zeros((80, 120), bool)
    leading[:, :60] = True
    snapped = snap_mover_edges(image, leading, band=16)
    columns = snapped.mean(axis=0)
    assert columns[:48].min() == 1.0 and columns[52:].max() == 0.0
    # Evidence that cannot be trusted (a result far from the mask) leaves the mask as it was.
    flat = np.zeros_like(image)
    np.testing.assert_array_equal(snap_mover_edges(flat, leading, band=16), leading)
