"""Pictures of a result: the contact sheet ``preview.png`` (frames with the mask outline, depth, shadow)."""

from __future__ import annotations

import cv2
import numpy as np

SHEET_COLUMNS = 6
THUMB_WIDTH = 320


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 turbo image of (H, W) z-depth (near = warm); unknown (0/nan/inf) is black."""
    depth = np.asarray(depth, np.float32)
    known = np.isfinite(depth) & (depth > 0)
    out = np.zeros((*depth.shape, 3), np.uint8)
    if not known.any():
        return out
    inverse = np.zeros_like(depth)
    inverse[known] = 1.0 / depth[known]
    lo, hi = np.percentile(inverse[known], [2, 98])
    scaled = np.clip((inverse - lo) / max(hi - lo, 1e-12), 0, 1)
    colored = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    out[known] = colored[known]
    return out


def outline(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (40, 255, 80)) -> np.ndarray:
    """(H, W, 3) uint8 copy of ``image`` with the outline of the (H, W) bool ``mask`` drawn on it."""
    out = image.copy()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, image.shape[1] // 400)
    cv2.drawContours(out, contours, -1, color, thickness, lineType=cv2.LINE_AA)
    return out


def shadow_overlay(image: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the frame dimmed, the (H, W) float [0, 1] shadow matte shown in magenta."""
    base = (image.astype(np.float32) * 0.45).astype(np.float32)
    tint = np.array([255, 0, 200], np.float32)
    alpha = np.clip(shadow, 0, 1)[..., None] * 0.9
    return np.clip(base * (1 - alpha) + tint * alpha, 0, 255).astype(np.uint8)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    scale = max(0.35, image.shape[1] / 700)
    cv2.putText(out, text, (6, int(18 * scale / 0.5)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, int(18 * scale / 0.5)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(rows: list[list[np.ndarray]], labels: list[list[str]] | None = None) -> np.ndarray:
    """Tile images (each (H, W, 3) uint8, resized to THUMB_WIDTH wide) into one (H', W', 3) uint8 sheet."""
    tiles = []
    for r, row in enumerate(rows):
        row_tiles = []
        for c, image in enumerate(row):
            height = round(image.shape[0] * THUMB_WIDTH / image.shape[1])
            tile = cv2.resize(image, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
            if labels is not None:
                tile = _label(tile, labels[r][c])
            row_tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=255))
        tiles.append(np.concatenate(row_tiles, axis=1))
    return np.concatenate(tiles, axis=0)


def preview_indices(n_frames: int, count: int = SHEET_COLUMNS) -> list[int]:
    """Evenly spaced frame indices, first and last included."""
    return sorted({round(i) for i in np.linspace(0, n_frames - 1, min(count, n_frames))})
