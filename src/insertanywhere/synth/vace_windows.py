"""Overlapping temporal windows for clips longer than one VACE generation (pure, no torch).

Wan generates 4k+1 frames at once (its causal VAE packs frame 0 alone, then 4 frames per latent). A longer clip is cut
into windows of ``window`` frames that overlap by ``overlap``; in each window after the first, the overlapping
frames are the previous window's output given as known (mask black), so the model continues rather than restarts and
colour does not drift from window to window. The last window is pulled back to end on the clip's last frame, so every
window has the full length; a clip shorter than one window is padded (by repeating its last frame) to 4k+1.
"""

from __future__ import annotations

from dataclasses import dataclass

from insertanywhere.errors import UserError


@dataclass(frozen=True)
class Window:
    """Frames ``[start, stop)`` of the (padded) clip, of which the first ``known`` are given to the model as known."""

    start: int
    stop: int
    known: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def valid_frame_count(n_frames: int) -> int:
    """The smallest 4k+1 frame count >= ``n_frames`` (Wan's VAE takes 1 + 4k frames)."""
    return 1 + 4 * max(0, -(-(n_frames - 1) // 4))


def check_window(window: int, overlap: int) -> None:
    """Raise UserError unless ``window`` is 4k+1 >= 5 and ``0 < overlap < window``."""
    if window < 5 or (window - 1) % 4 != 0:
        raise UserError(f"VACE window must be 4k+1 frames and at least 5 (e.g. 49 or 81), got {window}")
    if not 0 < overlap < window:
        raise UserError(f"VACE window overlap must be between 1 and window-1 ({window - 1}), got {overlap}")


def plan_windows(n_frames: int, window: int, overlap: int) -> tuple[list[Window], int]:
    """Cut ``n_frames`` into overlapping windows.

    Args:
        n_frames: frames in the clip (>= 1).
        window: frames per window, 4k+1.
        overlap: frames each window shares with the previous one (given to it as known).

    Returns:
        ``(windows, padded_frames)``: windows cover ``[0, padded_frames)`` in order; ``padded_frames`` is
        ``n_frames`` for clips of at least one window, else the 4k+1 count the single window is padded to.
        The first window's ``known`` is 0: the first-frame anchor is the caller's business.
    """
    check_window(window, overlap)
    if n_frames <= window:
        padded = valid_frame_count(n_frames)
        return [Window(0, padded, 0)], padded
    windows = [Window(0, window, 0)]
    step = window - overlap
    while windows[-1].stop < n_frames:
        start = min(windows[-1].start + step, n_frames - window)
        windows.append(Window(start, start + window, windows[-1].stop - start))
    return windows, n_frames
