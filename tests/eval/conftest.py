"""A tiny hand-made GT case (known answers) and a fake insert that copies its GT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from insertanywhere.conventions import Camera, ObjectTrack, TrackFrame, intrinsics_from_fov
from insertanywhere.eval.cases import BenchCase
from insertanywhere.io.images import write_sequence_frame
from insertanywhere.io.video import write_video

WIDTH, HEIGHT, N_FRAMES = 64, 48, 6
OBJECT_BOX = (24, 16, 36, 32)  # x0, y0, x1, y1
PARTLY, FULLY = 3, 4


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 4, width // 4, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def gt_cameras() -> list[Camera]:
    K = intrinsics_from_fov(WIDTH, HEIGHT, 60.0)
    cameras = []
    for t in range(N_FRAMES):
        cam_from_world = np.eye(4)
        cam_from_world[0, 3] = -0.05 * t  # camera slides along +x
        cameras.append(Camera(K, cam_from_world))
    return cameras


def gt_object_pose() -> np.ndarray:
    pose = np.eye(4)
    pose[:3, 3] = [0.0, 0.5, 4.0]
    return pose


def make_gt_case(folder: Path) -> Path:
    """Write a synthetic-format case: background.mp4, object.png, placement.json, meta.json, gt/."""
    folder.mkdir(parents=True, exist_ok=True)
    wide = _texture(HEIGHT, WIDTH + 2 * N_FRAMES, seed=0)
    obj_w, obj_h = OBJECT_BOX[2] - OBJECT_BOX[0], OBJECT_BOX[3] - OBJECT_BOX[1]
    object_rgb = _texture(obj_h, obj_w, seed=1)
    object_rgb[..., 0] = np.maximum(object_rgb[..., 0], 200)
    backgrounds, gts = [], []
    x0, y0, x1, y1 = OBJECT_BOX
    for t in range(N_FRAMES):
        background = np.ascontiguousarray(wide[:, t : t + WIDTH])
        gt = background.copy()
        shadow = np.zeros((HEIGHT, WIDTH), np.float32)
        shadow[y1 : y1 + 4, x0 - 2 : x1 + 4] = 0.4
        gt = (gt * (1 - shadow[..., None])).astype(np.uint8)
        visible = np.zeros((HEIGHT, WIDTH), bool)
        visible[y0:y1, x0:x1] = True
        gt[y0:y1, x0:x1] = object_rgb
        if t == PARTLY:
            visible[:, : (x0 + x1) // 2] = False
            gt[:, : (x0 + x1) // 2][np.ix_(range(y0, y1))] = background[y0:y1, : (x0 + x1) // 2] // 2
        if t == FULLY:
            visible[:] = False
            gt[y0 - 2 : y1 + 2, x0 - 2 : x1 + 2] = 30
        backgrounds.append(background)
        gts.append(gt)
        write_sequence_frame(folder / "gt" / "masks", t, visible)
        write_sequence_frame(folder / "gt" / "shadow", t, (shadow * 255).astype(np.uint8))
    write_video(folder / "background.mp4", np.stack(backgrounds), 24)
    write_video(folder / "gt" / "inserted.mp4", np.stack(gts), 24)
    rgba = np.zeros((obj_h, obj_w, 4), np.uint8)
    rgba[..., :3] = object_rgb
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # an alpha channel that is not opaque everywhere
    from PIL import Image

    Image.fromarray(rgba, "RGBA").save(folder / "object.png")
    (folder / "placement.json").write_text(json.dumps({"frame": 0, "box": list(OBJECT_BOX), "yaw_deg": 0.0}))
    (folder / "meta.json").write_text(
        json.dumps({"family": "handmade", "partly_occluded_frames": [PARTLY], "fully_occluded_frames": [FULLY]})
    )
    cameras = gt_cameras()
    (folder / "gt" / "cameras.json").write_text(json.dumps(ObjectTrack.from_cameras(WIDTH, HEIGHT, cameras).to_dict()))
    poses = {"frames": [{"index": t, "world_from_object": gt_object_pose().tolist()} for t in range(N_FRAMES)]}
    (folder / "gt" / "object_poses.json").write_text(json.dumps(poses))
    return folder


def copy_gt_insert(case: BenchCase, out: Path, mask_shift_px: int = 0) -> Path:
    """A fake insert that writes the case's GT as the output (optionally with masks shifted right)."""
    from insertanywhere.io.images import read_sequence

    assert case.gt is not None
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(case.gt.gt_video, out / "inserted.mp4")
    for t, mask in enumerate(read_sequence(case.gt.masks_dir, "mask")):
        write_sequence_frame(out / "masks", t, np.roll(mask, mask_shift_px, axis=1))
    shutil.copytree(case.gt.shadow_dir, out / "shadow", dirs_exist_ok=True)
    frames = [TrackFrame(t, camera, gt_object_pose()) for t, camera in enumerate(gt_cameras())]
    (out / "track.json").write_text(json.dumps(ObjectTrack(WIDTH, HEIGHT, frames).to_dict()))
    report = {"inputs": {"video": str(case.video), "object": str(case.object_path)}}
    (out / "report.json").write_text(json.dumps(report))
    return out


@pytest.fixture(scope="session")
def gt_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_gt_case(tmp_path_factory.mktemp("cases") / "handmade")
