"""The flow stream, tracks refined on finer frames, the working size's pixel budget."""

import cv2
import numpy as np
import pytest

from insertanywhere.scene.flow import DISFlow, FlowStream, fb_consistency
from insertanywhere.scene.pipeline import _work_size
from insertanywhere.scene.tracks import track_points


def _texture(shape, seed=0, blur=2.0):
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), blur)
    return ((noise - noise.min()) / (noise.max() - noise.min()) * 255).astype(np.uint8)


def _sliding(n_frames, shape, step_xy, scale=1.0):
    """Frames of a texture sliding by -step_xy (x, y) fine pixels a frame, rendered by sub-pixel warps of one large
    texture, then downscaled by `scale` (INTER_AREA). Returns (T, h, w) uint8."""
    big = _texture((shape[0] + 80, shape[1] + 80), blur=1.2)
    frames = []
    for t in range(n_frames):
        shift = np.array([[1.0, 0.0, 40.0 - t * step_xy[0]], [0.0, 1.0, 40.0 - t * step_xy[1]]])
        frame = cv2.warpAffine(big, shift, (shape[1], shape[0]), flags=cv2.INTER_CUBIC)
        if scale != 1.0:
            frame = cv2.resize(frame, (round(shape[1] * scale), round(shape[0] * scale)), interpolation=cv2.INTER_AREA)
        frames.append(frame)
    return np.stack(frames)


def test_flow_stream_matches_serial_flows_and_their_consistency():
    grey = _sliding(4, (64, 96), (1.3, 0.7))
    frames = [np.repeat(g[..., None], 3, axis=2) for g in grey]
    stream = FlowStream(frames, DISFlow()).wait()
    serial = DISFlow()
    for t in range(3):
        np.testing.assert_allclose(stream.forward[t], serial(frames[t], frames[t + 1]), atol=1e-5)
        np.testing.assert_allclose(stream.backward[t], serial(frames[t + 1], frames[t]), atol=1e-5)
        np.testing.assert_array_equal(
            stream.consistent_forward[t], fb_consistency(stream.forward[t], stream.backward[t])
        )
        np.testing.assert_array_equal(
            stream.consistent_backward[t], fb_consistency(stream.backward[t], stream.forward[t])
        )
    assert len(stream.forward_pairs) == 3 and stream.forward_pairs[2] is not None


def test_flow_stream_hands_a_backend_error_to_the_reader():
    class Failing:
        name = "failing"

        def __call__(self, image_a, image_b):
            raise RuntimeError("backend broke")

    frames = [np.zeros((16, 16, 3), np.uint8)] * 3
    stream = FlowStream(frames, Failing())
    with pytest.raises(RuntimeError, match="backend broke"):
        stream.forward_pairs[0]
    with pytest.raises(RuntimeError, match="backend broke"):
        stream.wait()


def test_tracks_on_finer_frames_are_more_precise():
    """A texture slides 0.73 / 0.41 fine px a frame; tracks refined on the 2x frames follow it closer."""
    step = np.array([0.73, 0.41])
    motion_coarse = -step / 2.0
    fine = _sliding(12, (192, 256), step)
    coarse = _sliding(12, (192, 256), step, scale=0.5)
    flows = [np.full((*coarse.shape[1:], 2), motion_coarse, np.float32) for _ in range(11)]

    def error(tracks):
        motion = tracks.xy[1:] - tracks.xy[:-1]
        valid = np.isfinite(motion[..., 0])
        return float(np.median(np.linalg.norm(motion[valid] - motion_coarse, axis=1)))

    plain = track_points(list(coarse), flows)
    refined = track_points(list(coarse), flows, fine_grays=list(fine))
    assert refined.n_tracks > 20 and refined.visible.sum() > 0.5 * refined.visible.size
    assert error(refined) < 0.6 * error(plain), (error(refined), error(plain))


def test_work_size_keeps_a_pixel_budget():
    assert _work_size(832, 480, 416, 416 * 240) == (416, 240)
    width, height = _work_size(640, 480, 416, 416 * 240)
    assert (width, height) == (365, 274) and width * height <= 416 * 240 * 1.01
    assert _work_size(640, 480, 416) == (416, 312)
    assert _work_size(200, 100, 416, 416 * 240) == (200, 100)  # never upscaled
