import numpy as np

from insertanywhere.scene.flow import DISFlow, fb_consistency
from insertanywhere.upsampled import resize_flow


def _texture(seed=0, shape=(96, 128)):
    rng = np.random.default_rng(seed)
    import cv2

    noise = cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min()) * 255
    return np.repeat(noise.astype(np.uint8)[..., None], 3, axis=2)


def test_dis_recovers_a_translation():
    image = _texture()
    shifted = np.roll(image, (2, 3), axis=(0, 1))  # content moves +3 in x, +2 in y
    flow = DISFlow("medium")(image, shifted)
    centre = flow[20:-20, 20:-20]
    np.testing.assert_allclose(np.median(centre.reshape(-1, 2), axis=0), [3.0, 2.0], atol=0.2)


def test_fb_consistency_flags_inconsistent_pixels():
    forward = np.full((20, 30, 2), 2.0, np.float32)
    backward = -forward.copy()
    assert fb_consistency(forward, backward).all()
    backward[:, :15] = 3.0
    consistent = fb_consistency(forward, backward)
    assert not consistent[:, :10].any() and consistent[:, 20:].all()


def test_resize_flow_scales_vectors():
    flow = np.ones((10, 20, 2), np.float32)
    up = resize_flow(flow, 40, 30)
    assert up.shape == (30, 40, 2)
    np.testing.assert_allclose(up[..., 0], 2.0)
    np.testing.assert_allclose(up[..., 1], 3.0)


def test_to_float16_flushes_subnormals_and_keeps_values():
    from insertanywhere.upsampled import to_float16

    values = np.array([1e-7, -3e-5, 0.25, -12.5, 7e-5], np.float32)
    out = to_float16(values)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out[:2], 0.0)
    np.testing.assert_allclose(out[2:], values[2:], rtol=1e-3)
    # Normal values round exactly as numpy's cast does (OpenCV converts), whatever the shape.
    flows = np.random.default_rng(0).normal(0.0, 20.0, (3, 24, 32, 2)).astype(np.float32)
    flows[np.abs(flows) < 1e-3] = 1e-3
    converted = to_float16(flows)
    assert converted.shape == flows.shape
    np.testing.assert_array_equal(converted.view(np.uint16), flows.astype(np.float16).view(np.uint16))
