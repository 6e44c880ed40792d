"""Bringing a video or an object into the work folder: validate, record, make what the page shows.

A video becomes display frames (JPEG, scaled to ``Limits.max_display_width``),
so scrubbing works for any codec ffmpeg reads, whatever the browser plays. An
object becomes a thumbnail PNG (the RGBA image itself, or a shaded front view of
a mesh) that the page draws into the box for instant feedback.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.errors import InputError, UserError
from insertanywhere.io.assets import ObjectAsset, load_object
from insertanywhere.io.images import frame_name
from insertanywhere.io.video import VideoReader
from insertanywhere.ui.workspace import Limits, TooLargeError

THUMB_SIZE = 256
JPEG_QUALITY = 90


def _rename_in_message(err: UserError, path: Path, shown_name: str) -> UserError:
    """The same error with the stored (generated) path replaced by the name the user knows."""
    message = str(err).replace(str(path), shown_name)
    return type(err)(message)


def _frame_count_hint(path: Path) -> int | None:
    """A cheap upper estimate of a video's frame count from its container metadata, or None."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if stream.duration is not None and stream.time_base and stream.average_rate:
                return math.ceil(float(stream.duration * stream.time_base * stream.average_rate))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        return None  # VideoReader gives the proper one-line message
    return None


def prepare_video(folder: Path, source: Path, shown_name: str, limits: Limits) -> dict[str, Any]:
    """Validate a video already saved in ``folder`` and write its display frames and ``info.json``.

    Args:
        folder: ``WORKDIR/videos/<id>/``.
        source: the stored file (``folder/source.<ext>``).
        shown_name: the name the user gave it (for messages and the page only).
        limits: frame and display limits.

    Returns:
        The info record: width, height, fps, n_frames (ClipInfo), name, display_width/height.

    Raises:
        InputError: not a readable video (message names ``shown_name``, not the stored path).
        TooLargeError: more frames than ``limits.max_frames``.
    """
    import cv2

    hint = _frame_count_hint(source)
    if hint is not None and hint > limits.max_frames * 2:
        raise TooLargeError(
            f"{shown_name}: about {hint} frames, over the limit of {limits.max_frames}; "
            "trim the clip or start the page with a higher --max-frames"
        )
    try:
        reader = VideoReader(source)
    except InputError as err:
        raise _rename_in_message(err, source, shown_name) from None
    info = reader.info
    if info.n_frames > limits.max_frames:
        raise TooLargeError(
            f"{shown_name}: {info.n_frames} frames, over the limit of {limits.max_frames}; "
            "trim the clip or start the page with a higher --max-frames"
        )
    scale = min(1.0, limits.max_display_width / info.width)
    display_size = (max(2, round(info.width * scale)), max(2, round(info.height * scale)))
    frames_dir = folder / "frames"
    frames_dir.mkdir(exist_ok=True)
    n_written = 0
    try:
        for index, frame in enumerate(reader):
            if scale < 1.0:
                frame = cv2.resize(frame, display_size, interpolation=cv2.INTER_AREA)
            ok, encoded = cv2.imencode(
                ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            )
            if not ok:
                raise InputError(f"{shown_name}: frame {index} cannot be encoded for display")
            (frames_dir / frame_name(index).replace(".png", ".jpg")).write_bytes(encoded.tobytes())
            n_written += 1
    except InputError as err:
        raise _rename_in_message(err, source, shown_name) from None
    except Exception as err:  # a decoder failure mid-file: report it as the user's file, in one line
        raise InputError(f"{shown_name}: decoding stopped at frame {n_written} ({err.__class__.__name__})") from None
    record = info.to_dict()
    record.update(
        {
            "n_frames": n_written,
            "name": shown_name,
            "source": source.name,
            "display_width": display_size[0],
            "display_height": display_size[1],
        }
    )
    return record


def mesh_front_view(asset: ObjectAsset, yaw_deg: float = 0.0, size: int = THUMB_SIZE) -> np.ndarray:
    """A shaded orthographic view of a mesh, seen from its front (+Z) after a turn about +Y.

    Painter's algorithm over faces sorted far to near; Lambert shading with a light
    from the viewer's upper left. Only a thumbnail: the renderer draws the real thing.

    Args:
        asset: kind "mesh", vertices (V, 3) in the object frame (+Y up, front +Z).
        yaw_deg: turn about +Y, degrees, counter-clockwise seen from above (Placement.yaw_deg).
        size: side of the square output, pixels.

    Returns:
        (size, size, 4) uint8 straight-alpha RGBA, the mesh filling the square, transparent elsewhere.
    """
    import cv2

    assert asset.vertices is not None and asset.faces is not None
    angle = math.radians(yaw_deg)
    rotation = np.array(
        [[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0], [-math.sin(angle), 0.0, math.cos(angle)]]
    )
    vertices = asset.vertices @ rotation.T
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    extent = max(hi[0] - lo[0], hi[1] - lo[1], 1e-9)
    margin = 4
    scale = (size - 2 * margin) / extent
    # Image x right = object +X, image y down = object -Y; centred in the square.
    xs = (vertices[:, 0] - (lo[0] + hi[0]) / 2) * scale + size / 2
    ys = -(vertices[:, 1] - (lo[1] + hi[1]) / 2) * scale + size / 2
    faces = asset.faces
    corners = vertices[faces]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    light = np.array([-0.4, 0.5, 0.77])
    shade = 0.35 + 0.65 * np.abs(normals @ (light / np.linalg.norm(light)))
    if asset.vertex_colors is not None:
        base = asset.vertex_colors[faces][:, :, :3].mean(axis=1)
    elif asset.texture is not None:
        base = np.tile(asset.texture[..., :3].reshape(-1, 3).mean(axis=0), (len(faces), 1))
    else:
        base = np.full((len(faces), 3), 180.0)
    colors = np.clip(base * shade[:, None], 0, 255)
    order = np.argsort(corners[:, :, 2].mean(axis=1))  # far (small z) first: the viewer sits at +Z
    canvas = np.zeros((size, size, 4), dtype=np.uint8)
    points = np.stack([xs, ys], axis=1)
    for face_index in order:
        polygon = np.round(points[faces[face_index]] * 16).astype(np.int32)
        color = (*[int(c) for c in colors[face_index]], 255)
        cv2.fillConvexPoly(canvas, polygon, color, lineType=cv2.LINE_AA, shift=4)
    return canvas


def prepare_object(folder: Path, source: Path, shown_name: str) -> dict[str, Any]:
    """Validate an object already saved in ``folder`` with the project's loader; write ``thumb.png``.

    Returns:
        The info record: name, kind ("image" | "mesh"), source, thumb size, aspect.

    Raises:
        InputError: the loader's one-line message, naming ``shown_name``.
    """
    import cv2

    try:
        asset = load_object(source)
    except InputError as err:
        raise _rename_in_message(err, source, shown_name) from None
    if asset.kind == "image":
        assert asset.rgba is not None
        rgba = asset.rgba
        scale = min(1.0, THUMB_SIZE / max(rgba.shape[:2]))
        if scale < 1.0:
            rgba = cv2.resize(rgba, (max(1, round(rgba.shape[1] * scale)), max(1, round(rgba.shape[0] * scale))))
        thumb = rgba
    else:
        thumb = crop_to_alpha(mesh_front_view(asset))
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(thumb, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise InputError(f"{shown_name}: cannot make a thumbnail")
    (folder / "thumb.png").write_bytes(encoded.tobytes())
    return {
        "name": shown_name,
        "kind": asset.kind,
        "source": source.name,
        "thumb_width": int(thumb.shape[1]),
        "thumb_height": int(thumb.shape[0]),
    }


def crop_to_alpha(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 cropped to the pixels with alpha > 0 (unchanged when none)."""
    ys, xs = np.nonzero(rgba[..., 3] > 0)
    if len(xs) == 0:
        return rgba
    return np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def copy_into(source: Path, target: Path) -> None:
    """Bring a library file into the work folder under its generated name.

    A copy, not a link: the user may edit the library file later, and a run must keep its inputs.
    """
    shutil.copyfile(source, target)
