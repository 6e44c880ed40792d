"""Scene4D on disk: round trip through memmaps, crash safety, stale files, inconsistent folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import insertanywhere.io.scene_store as scene_store
from insertanywhere.conventions import Camera, Scene4D, SceneMeta, intrinsics_from_fov, make_pose
from insertanywhere.errors import InputError
from insertanywhere.io.scene_store import load_scene, save_scene, scene_exists
from insertanywhere.upsampled import UpsampledStack


def _scene(with_flow: bool = True, with_points: bool = True) -> Scene4D:
    n_frames, height, width = 3, 4, 5
    rng = np.random.default_rng(0)
    K = intrinsics_from_fov(width, height, 60.0)
    cameras = [Camera(K, make_pose(np.eye(3), [0.1 * t, 0.0, 0.0])) for t in range(n_frames)]
    flow = rng.normal(0, 3, (n_frames - 1, height, width, 2)).astype(np.float32) if with_flow else None
    return Scene4D(
        meta=SceneMeta(width, height, 29.97, n_frames, "metric", "general", {"flow": "dis"}),
        cameras=cameras,
        depth=rng.uniform(1, 5, (n_frames, height, width)).astype(np.float32),
        depth_confidence=rng.uniform(0, 1, (n_frames, height, width)).astype(np.float32),
        dynamic_mask=rng.uniform(0, 1, (n_frames, height, width)) > 0.5,
        flow_forward=flow,
        flow_backward=None if flow is None else -flow,
        points_world=rng.normal(size=(7, 3)) if with_points else None,
        points_color=rng.integers(0, 256, (7, 3), dtype=np.uint8) if with_points else None,
    )


def test_round_trip_through_memmaps(tmp_path: Path) -> None:
    scene = _scene()
    save_scene(scene, tmp_path / "scene")
    assert scene_exists(tmp_path / "scene")
    loaded = load_scene(tmp_path / "scene")
    assert isinstance(loaded.depth, np.memmap) and not loaded.depth.flags.writeable
    assert loaded.meta == scene.meta
    np.testing.assert_array_equal(loaded.depth, scene.depth)
    np.testing.assert_allclose(loaded.depth_confidence, scene.depth_confidence, atol=1e-3)  # float16 on disk
    assert loaded.dynamic_mask.dtype == bool
    np.testing.assert_array_equal(loaded.dynamic_mask, scene.dynamic_mask)
    np.testing.assert_allclose(loaded.flow_forward, scene.flow_forward, atol=0.01)
    np.testing.assert_allclose(loaded.flow_backward, scene.flow_backward, atol=0.01)
    np.testing.assert_array_equal(loaded.points_world, scene.points_world)
    np.testing.assert_array_equal(loaded.points_color, scene.points_color)
    for original, back in zip(scene.cameras, loaded.cameras, strict=True):
        np.testing.assert_array_equal(back.cam_from_world, original.cam_from_world)
        np.testing.assert_array_equal(back.K, original.K)


def test_working_resolution_stacks_are_stored_small_and_read_back_alike(tmp_path: Path) -> None:
    """A reconstruction's stacks (UpsampledStack) go to disk at the working size and come back as stacks that
    upsample to the very values the in-memory scene gives."""
    scene = _scene()
    size = (scene.meta.width * 4, scene.meta.height * 4)
    scene.meta.width, scene.meta.height = size
    scene.depth = UpsampledStack(scene.depth, "depth", size)
    scene.depth_confidence = UpsampledStack(scene.depth_confidence, "confidence", size)
    scene.dynamic_mask = UpsampledStack(scene.dynamic_mask, "mask", size)
    scene.flow_forward = UpsampledStack(scene.flow_forward, "flow", size)
    scene.flow_backward = UpsampledStack(scene.flow_backward, "flow", size)
    save_scene(scene, tmp_path)
    assert np.load(tmp_path / "depth.npy", mmap_mode="r").shape == (3, 4, 5)
    assert np.load(tmp_path / "flow_forward.npy", mmap_mode="r").shape == (2, 4, 5, 2)
    loaded = load_scene(tmp_path)
    for name in ("depth", "depth_confidence", "dynamic_mask", "flow_forward", "flow_backward"):
        original, back = getattr(scene, name), getattr(loaded, name)
        assert isinstance(back, UpsampledStack) and back.shape == original.shape and back.dtype == original.dtype
        for t in range(len(original)):
            np.testing.assert_array_equal(back[t], original[t])


def test_frames_larger_than_the_scene_are_refused(tmp_path: Path) -> None:
    scene = _scene()
    save_scene(scene, tmp_path)
    np.save(tmp_path / "depth.npy", np.zeros((3, 8, 10), np.float32))
    with pytest.raises(InputError, match="do not fit"):
        load_scene(tmp_path)


def test_pinned_json_files(tmp_path: Path) -> None:
    save_scene(_scene(), tmp_path)
    meta = json.loads((tmp_path / "scene.json").read_text())
    assert set(meta) == {"width", "height", "fps", "n_frames", "units", "camera_model", "backends"}
    cameras = json.loads((tmp_path / "cameras.json").read_text())
    assert list(cameras) == ["width", "height", "frames"]
    assert set(cameras["frames"][0]) == {"index", "K", "cam_from_world"}


def test_uint8_mask_is_saved_as_bool(tmp_path: Path) -> None:
    scene = _scene()
    scene.dynamic_mask = scene.dynamic_mask.astype(np.uint8) * 255
    save_scene(scene, tmp_path)
    assert load_scene(tmp_path).dynamic_mask.sum() == np.count_nonzero(scene.dynamic_mask)


def test_resave_without_optional_parts_removes_stale_files(tmp_path: Path) -> None:
    save_scene(_scene(), tmp_path)
    save_scene(_scene(with_flow=False, with_points=False), tmp_path)
    loaded = load_scene(tmp_path)
    assert loaded.flow_forward is None and loaded.flow_backward is None and loaded.points_world is None


def test_crash_mid_save_leaves_an_incomplete_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_scene(_scene(), tmp_path)
    real_save_array = scene_store.save_array
    calls = []

    def failing_save_array(path: Path, array: np.ndarray, dtype: object = None) -> None:
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full")
        real_save_array(path, array, dtype)

    monkeypatch.setattr(scene_store, "save_array", failing_save_array)
    with pytest.raises(OSError, match="disk full"):
        save_scene(_scene(), tmp_path)
    assert not scene_exists(tmp_path)  # not mistaken for a complete scene mixing old and new arrays
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(InputError, match="not a saved scene"):
        load_scene(tmp_path)


def test_inconsistent_arrays_are_refused(tmp_path: Path) -> None:
    scene = _scene()
    scene.depth = scene.depth[:, :2]
    with pytest.raises(ValueError, match="depth has shape"):
        save_scene(scene, tmp_path)
    save_scene(_scene(), tmp_path)
    np.save(tmp_path / "depth.npy", np.zeros((2, 4, 5), np.float32))  # edited by hand: wrong frame count
    with pytest.raises(InputError, match="inconsistent"):
        load_scene(tmp_path)
    (tmp_path / "depth.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable"):
        load_scene(tmp_path)
