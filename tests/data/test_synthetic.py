"""Synthetic ground-truth scenes: every family renders, the output is deterministic, and the ground truth
agrees with itself (masks vs the reprojected card, depth across frames, shadows, occlusion)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insertanywhere.conventions import Camera, invert_pose, transform_points
from insertanywhere.data.synthetic import (
    FAMILIES,
    SynthError,
    load_synthetic_case,
    render_case_cached,
    render_scene_to_folder,
)
from insertanywhere.data.synthetic.textures import _bilinear, photo_texture, sample_texture
from insertanywhere.errors import InputError
from insertanywhere.io.images import read_png

CONTRACT_FILES = [
    "background.mp4",
    "object.png",
    "object_texture.png",
    "placement.json",
    "meta.json",
    "gt/inserted.mp4",
    "gt/cameras.json",
    "gt/object_poses.json",
    "gt/masks/00000.png",
    "gt/alpha/00000.png",
    "gt/shadow/00000.png",
    "gt/depth/00000.png",
    "gt/dynamic/00000.png",
]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_case(request):
    return load_synthetic_case(render_case_cached(request.param, seed=0, small=True))


def _case(family: str, seed: int = 0):
    return load_synthetic_case(render_case_cached(family, seed=seed, small=True))


# ----------------------------------------------------------------------------- reference rasteriser


def card_coverage(camera: Camera, world_from_object: np.ndarray, texture_rgba: np.ndarray, size_m, shape, ss=4):
    """Independent reference: (H, W) float coverage of the card, by casting ss x ss rays per pixel onto the
    card's plane (object z = 0) and reading the texture's alpha at the nearest texel."""
    height, width = shape
    card_w, card_h = size_m
    offsets = (np.arange(ss) + 0.5) / ss
    xs = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)
    ys = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
    grid_x, grid_y = np.meshgrid(xs, ys)
    pixels = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    object_from_cam = invert_pose(world_from_object) @ camera.world_from_cam
    rays = camera.pixel_rays_cam(pixels) @ object_from_cam[:3, :3].T
    origin = object_from_cam[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origin[2] / rays[:, 2]
    points = origin + rays * t[:, None]
    u = (points[:, 0] + card_w / 2) / card_w
    v = (card_h - points[:, 1]) / card_h
    inside = (t > 0) & (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    th, tw = texture_rgba.shape[:2]
    alpha = np.zeros(len(u))
    alpha[inside] = texture_rgba[(v[inside] * th).astype(int), (u[inside] * tw).astype(int), 3] / 255.0
    return alpha.reshape(height, ss, width, ss).mean(axis=(1, 3))


# ----------------------------------------------------------------------------- every family


def test_family_renders_the_contract(family_case):
    case = family_case
    meta = case.meta
    for name in CONTRACT_FILES:
        assert (case.folder / name).is_file(), name
    T, H, W = meta["n_frames"], meta["height"], meta["width"]
    assert (W, H, T) == (160, 96, 9) or meta["family"] == "demo"
    assert case.background.shape == (T, H, W, 3)
    assert case.masks.shape == case.alpha.shape == case.shadow.shape == case.depth.shape == (T, H, W)
    assert len(case.cameras) == len(case.world_from_object) == T
    assert meta["units"] == "metric" and meta["fps"] == 24.0
    assert meta["camera_model"] in {"static", "rotation", "general"}
    assert abs(np.linalg.norm(meta["light"]["direction"]) - 1.0) < 1e-6
    # The object is wholly visible in frame 0 and the placement box is its silhouette's tight box.
    assert case.visible_fraction[0] > 0.99
    x0, y0, x1, y1 = case.placement.box
    ys, xs = np.nonzero(case.masks[0])
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    assert (x1 - x0) >= 8 and (y1 - y0) >= 16
    obj = read_png(case.paths["object"], "rgba")
    assert obj.shape[:2] == (y1 - y0, x1 - x0)
    assert obj[..., 3].max() == 255
    # Depth: metric, positive where the scene is hit.
    assert np.median(case.depth[case.depth > 0]) > 1.0
    assert (case.depth > 0).mean() > 0.9


def test_family_masks_match_the_reprojected_card(family_case):
    """GT masks agree with the card geometry reprojected by the GT cameras and object poses."""
    case = family_case
    texture = read_png(case.paths["object_texture"], "rgba")
    size = (case.meta["object"]["width_m"], case.meta["object"]["height_m"])
    checked = 0
    for index in range(case.n_frames):
        if case.visible_fraction[index] < 0.98:
            continue
        coverage = card_coverage(
            case.cameras[index], case.world_from_object[index], texture, size, case.masks.shape[1:]
        )
        expected = coverage >= 0.5
        iou = (expected & case.masks[index]).sum() / max((expected | case.masks[index]).sum(), 1)
        assert iou > 0.9, f"frame {index}: IoU {iou:.3f}"
        checked += 1
    assert checked >= 1


def test_family_shadow_next_to_contact(family_case):
    case = family_case
    contact = transform_points(case.world_from_object[0], np.zeros((1, 3)))
    (x, y), _ = case.cameras[0].project(contact)[0][0], None
    h, w = case.shadow.shape[1:]
    x0, x1 = int(max(x - 20, 0)), int(min(x + 20, w))
    y0, y1 = int(max(y - 12, 0)), int(min(y + 12, h))
    assert case.shadow[0, y0:y1, x0:x1].max() > 0.15
    # The matte is zero on the object itself and almost everywhere far from it.
    assert case.shadow[0][case.masks[0]].max() == 0
    assert (case.shadow[0] > 0.05).mean() < 0.25


# ----------------------------------------------------------------------------- geometry checks


@pytest.mark.parametrize("family", ["orbit", "dolly", "moving_support"])
def test_depth_agrees_across_frames(family):
    """Unproject frame i's static pixels with GT depth, reproject into frame j: depth j agrees (< 1 %)."""
    import cv2

    case = _case(family)
    i, j = 0, case.n_frames - 1
    depth_i, depth_j = case.depth[i], case.depth[j]
    # Interior pixels only: a 3x3 neighbourhood of equal-ish depth and no moving body.
    near_edge = cv2.dilate((np.abs(cv2.Laplacian(depth_i, cv2.CV_32F)) > 0.05).astype(np.uint8), np.ones((3, 3)))
    valid = (depth_i > 0) & ~case.dynamic[i] & (near_edge == 0)
    ys, xs = np.nonzero(valid)
    pixels = np.stack([xs + 0.5, ys + 0.5], axis=1)
    world = case.cameras[i].unproject(pixels, depth_i[ys, xs])
    projected, z = case.cameras[j].project(world)
    h, w = depth_j.shape
    inside = (z > 0) & (projected[:, 0] > 1) & (projected[:, 0] < w - 1) & (projected[:, 1] > 1)
    inside &= projected[:, 1] < h - 1
    map_x = (projected[inside, 0] - 0.5).astype(np.float32)[None]
    map_y = (projected[inside, 1] - 0.5).astype(np.float32)[None]
    sampled = cv2.remap(depth_j, map_x, map_y, cv2.INTER_LINEAR)[0]
    static_j = cv2.remap(case.dynamic[j].astype(np.float32), map_x, map_y, cv2.INTER_NEAREST)[0] == 0
    keep = (sampled > 0) & static_j
    relative = np.abs(sampled[keep] - z[inside][keep]) / z[inside][keep]
    assert keep.sum() > 0.3 * valid.sum()
    assert np.median(relative) < 0.01


def test_cameras_follow_the_family_motion():
    static, pan, orbit = _case("static"), _case("pan"), _case("orbit")
    assert all(np.allclose(c.cam_from_world, static.cameras[0].cam_from_world) for c in static.cameras)
    centers = np.array([c.center_world for c in pan.cameras])
    assert np.allclose(centers, centers[0], atol=1e-9)
    assert not np.allclose(pan.cameras[0].cam_from_world[:3, :3], pan.cameras[-1].cam_from_world[:3, :3])
    # Orbit: constant distance to the object, 30-40 degrees of azimuth.
    target = orbit.world_from_object[0][:3, 3]
    rel = np.array([c.center_world - target for c in orbit.cameras])
    radius = np.linalg.norm(rel[:, :2], axis=1)
    assert np.ptp(radius) < 1e-6
    angle = np.degrees(np.arccos(np.clip(rel[0, :2] @ rel[-1, :2] / radius[0] ** 2, -1, 1)))
    assert 30.0 - 1e-6 <= angle <= 40.0 + 1e-6
    assert (static.meta["camera_model"], pan.meta["camera_model"], orbit.meta["camera_model"]) == (
        "static", "rotation", "general")  # fmt: skip


def test_moving_occluder_hides_the_object_completely():
    case = _case("moving_occluder")
    fully = case.meta["fully_occluded_frames"]
    assert len(fully) >= 1
    for index in fully:
        assert case.masks[index].sum() == 0 and case.visible_fraction[index] < 0.01
    assert case.visible_fraction[0] > 0.99
    assert any(case.dynamic[index].any() for index in fully)


def test_static_occluder_hides_part_of_the_object():
    case = _case("static_occluder")
    partly = case.meta["partly_occluded_frames"]
    assert partly and not case.meta["fully_occluded_frames"]
    assert min(case.visible_fraction) < 0.9
    assert not case.dynamic.any()


def test_moving_support_carries_the_object():
    case = _case("moving_support")
    assert case.meta["support_moves"] is True and case.dynamic.any()
    first, last = case.world_from_object[0], case.world_from_object[-1]
    motion = last @ invert_pose(first)
    assert np.linalg.norm(motion[:3, 3]) > 0.1
    turn = np.degrees(np.arctan2(motion[1, 0], motion[0, 0]))
    assert 15.0 < abs(turn) < 40.0
    assert np.allclose(motion[2, :3], [0, 0, 1], atol=1e-9)  # it turns about the vertical only
    # The support plane passes through the contact point at frame 0.
    plane = case.meta["support_plane"]
    assert np.allclose(plane["point"], first[:3, 3], atol=1e-9) and np.allclose(plane["normal"], [0, 0, 1])


def test_low_light_is_dim_with_a_long_shadow():
    low, normal = _case("low_light"), _case("static")
    assert low.meta["light"]["elevation_deg"] < 15.0
    assert low.background.mean() < 0.7 * normal.background.mean()
    assert (low.shadow[0] > 0.1).sum() > (normal.shadow[0] > 0.1).sum()


def test_shadow_matte_explains_inserted_minus_background():
    """Outside the object, inserted ~= background darkened by the matte (in linear light)."""
    case = _case("static")
    inserted = case.inserted()[0].astype(np.float32) / 255.0
    background = case.background[0].astype(np.float32) / 255.0
    shadow = case.shadow[0]
    zone = (shadow > 0.2) & ~case.masks[0] & (case.alpha[0] == 0)
    assert zone.sum() > 5
    predicted = (background**2.2 * (1.0 - shadow[..., None])) ** (1 / 2.2)
    assert np.median(np.abs(predicted - inserted)[zone]) < 0.05
    untouched = (shadow == 0) & (case.alpha[0] == 0)
    assert np.median(np.abs(inserted - background)[untouched]) < 0.01


def test_two_by_two_supersampling_path_is_consistent():
    """Frames larger than --small render with 2x2 rays per pixel; their masks still match the card."""
    from insertanywhere.data.synthetic.writer import default_supersample

    assert default_supersample(240, 144) == 2
    case = load_synthetic_case(render_case_cached("orbit", seed=1, small=False, width=240, height=144, n_frames=3))
    assert case.meta["renderer"]["supersample"] == 2
    texture = read_png(case.paths["object_texture"], "rgba")
    size = (case.meta["object"]["width_m"], case.meta["object"]["height_m"])
    for index in range(case.n_frames):
        expected = card_coverage(case.cameras[index], case.world_from_object[index], texture, size, (144, 240)) >= 0.5
        iou = (expected & case.masks[index]).sum() / max((expected | case.masks[index]).sum(), 1)
        assert iou > 0.9, f"frame {index}: IoU {iou:.3f}"


def test_object_png_is_the_lit_object_of_frame_0():
    """object.png's opaque pixels are the object as it appears in gt/inserted.mp4 frame 0."""
    case = _case("orbit")
    obj = read_png(case.paths["object"], "rgba")
    x0, y0, x1, y1 = (int(v) for v in case.placement.box)
    inserted = case.inserted()[0][y0:y1, x0:x1]
    opaque = obj[..., 3] == 255
    assert opaque.sum() > 20
    difference = np.abs(obj[..., :3].astype(int) - inserted.astype(int))[opaque]
    assert np.median(difference) <= 4


def test_cached_scene_is_reused():
    first = render_case_cached("static", seed=0, small=True)
    stamp = (first / "meta.json").stat().st_mtime_ns
    assert render_case_cached("static", seed=0, small=True) == first
    assert (first / "meta.json").stat().st_mtime_ns == stamp


# ----------------------------------------------------------------------------- determinism and errors


def _arrays(folder):
    case = load_synthetic_case(folder)
    return [case.background, case.masks, case.alpha, case.shadow, case.depth, case.dynamic]


def test_same_seed_same_scene_and_other_seed_differs(tmp_path):
    a = render_scene_to_folder(tmp_path / "a", family="demo", seed=3, small=True, n_frames=2)
    b = render_scene_to_folder(tmp_path / "b", family="demo", seed=3, small=True, n_frames=2)
    c = render_scene_to_folder(tmp_path / "c", family="demo", seed=4, small=True, n_frames=2)
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        assert np.array_equal(x, y)
    for name in ["placement.json", "gt/cameras.json", "gt/object_poses.json", "meta.json"]:
        assert json.loads((a / name).read_text()) == json.loads((b / name).read_text())
    assert not np.array_equal(_arrays(a)[0], _arrays(c)[0])
    assert not np.array_equal(_arrays(a)[4], _arrays(c)[4])


def test_bad_requests_say_what_to_fix(tmp_path):
    with pytest.raises(SynthError, match="unknown scene family"):
        render_scene_to_folder(tmp_path / "x", family="nope", small=True)
    with pytest.raises(SynthError, match="even width"):
        render_scene_to_folder(tmp_path / "x", family="static", width=161, height=96, n_frames=1)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        render_scene_to_folder(foreign, family="static", small=True, n_frames=1)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_cli_synth_writes_a_scene(tmp_path):
    from typer.testing import CliRunner

    from insertanywhere.cli import app

    result = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--scene", "pan", "--small", "--frames", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s" / "meta.json").read_text())["n_frames"] == 2
    listing = CliRunner().invoke(app, ["synth", "--list"])
    assert listing.exit_code == 0 and all(name in listing.output for name in FAMILIES)


# ----------------------------------------------------------------------------- texture lookups


def _reference_bilinear(image, u, v, wrap):
    """Slow, plain bilinear lookup (texel centres at +0.5) to check the cv2.remap fast path against."""
    h, w, _ = image.shape
    x, y = u * w - 0.5, v * h - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    if wrap:
        x1, y1, x0, y0 = (x0 + 1) % w, (y0 + 1) % h, x0 % w, y0 % h
    else:
        x1, y1 = np.clip(x0 + 1, 0, w - 1), np.clip(y0 + 1, 0, h - 1)
        x0, y0 = np.clip(x0, 0, w - 1), np.clip(y0, 0, h - 1)
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    return top * (1 - fy) + (image[y1, x0] * (1 - fx) + image[y1, x1] * fx) * fy


@pytest.mark.parametrize("wrap", [True, False])
def test_bilinear_matches_the_reference(wrap):
    rng = np.random.default_rng(0)
    image = rng.random((7, 9, 4), dtype=np.float32)
    u, v = rng.uniform(-1.5, 2.5, 5000), rng.uniform(-1.5, 2.5, 5000)
    assert np.abs(_bilinear(image, u, v, wrap) - _reference_bilinear(image, u, v, wrap)).max() < 1e-4


def test_mip_levels_average_the_texture():
    texture = photo_texture("brick")
    coarse = sample_texture(texture, np.array([0.3]), np.array([0.6]), np.array([50.0]), wrap=True)
    assert np.allclose(coarse[0], texture.levels[-1].mean(axis=(0, 1)), atol=0.05)
