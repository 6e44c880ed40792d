"""Per-frame cost of the CPU renderer, shadows and compositing on an 832x480 frame. Prints JSON.

Objects: a card (an RGBA photo), real glTF meshes, and a 10k-triangle textured sphere, each drawn at two
screen heights. Run: ``python benchmarks/bench_render.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from insertanywhere.conventions import Camera, intrinsics_from_fov, make_pose
from insertanywhere.io.assets import load_object
from insertanywhere.render import Light, SupportPlane, object_mesh, render_object, render_shadow
from insertanywhere.render.mesh import TexturedMesh
from insertanywhere.synth.composite import CompositeConfig, Compositor

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
W, H = 832, 480


def camera() -> Camera:
    pitch = math.radians(25)
    forward = np.array([0.0, -math.sin(pitch), math.cos(pitch)])
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    down = np.cross(forward, right)
    world_from_cam = make_pose(np.stack([right, down, forward], 1), np.array([0.0, 1.6, -3.5]))
    return Camera(intrinsics_from_fov(W, H, 60), np.linalg.inv(world_from_cam))


def uv_sphere(n_faces: int) -> TexturedMesh:
    """A textured UV sphere standing on y = 0 with about n_faces triangles."""
    rings = int(math.sqrt(n_faces / 2))
    segments = n_faces // (2 * rings)
    theta = np.linspace(0, math.pi, rings + 1)
    phi = np.linspace(0, 2 * math.pi, segments + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    vertices = np.stack([np.sin(t) * np.cos(p), 1.0 + np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3) * 0.5
    uv = np.stack([p / (2 * math.pi), 1 - t / math.pi], -1).reshape(-1, 2)
    idx = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (256, 512, 4), dtype=np.uint8)
    texture[..., 3] = 255
    return TexturedMesh(vertices, faces.astype(np.int64), uv=uv, texture=texture)


def timed(fn, repeats: int) -> dict[str, float]:
    """Median wall-clock and mean process CPU milliseconds per call (CPU time is less hurt by a busy machine)."""
    fn()  # warm caches (texture pyramid, normals)
    walls = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu_start) / repeats
    return {"wall_ms": round(1000.0 * float(np.median(walls)), 1), "cpu_ms": round(1000.0 * cpu, 1)}


def contact_on_floor(cam: Camera, pixel: tuple[float, float]) -> np.ndarray:
    """(3,) world point of the floor y = 0 seen at a pixel."""
    ray = cam.pixel_rays_cam(np.array([pixel]))[0] @ cam.world_from_cam[:3, :3].T
    origin = cam.center_world
    return origin + ray * (-origin[1] / ray[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cam = camera()
    support = SupportPlane(contact_on_floor(cam, (W / 2, 0.85 * H)), np.array([0.0, 1.0, 0.0]))
    light = Light.from_angles(60, 45, support.normal_world, cam, strength=0.6, softness=0.04)
    meshes = {"sphere_10k": uv_sphere(10_000)}
    for name in ("images/teapot_colorful.png", "meshes/duck.glb", "meshes/cesium_milk_truck.glb"):
        if (DATA / "objects" / name).is_file():
            meshes[Path(name).stem] = object_mesh(load_object(DATA / "objects" / name))
    frame = np.random.default_rng(0).integers(90, 170, (H, W, 3), dtype=np.uint8)
    results = []
    for name, mesh in meshes.items():
        for screen_height in (120, 240):
            depth = float((cam.cam_from_world @ np.append(support.point_world, 1.0))[2])
            scale = screen_height * depth / cam.K[1, 1] / mesh.height
            pose = np.diag([scale, scale, scale, 1.0])
            pose[:3, 3] = support.point_world
            layer = render_object(mesh, cam, pose, W, H, light=light)
            matte = render_shadow(mesh, cam, pose, support, light, W, H)
            compositor = Compositor(CompositeConfig(), frame, layer)
            velocity = np.array([4.0, 1.0], np.float32)
            results.append(
                {
                    "object": name,
                    "faces": len(mesh.faces),
                    "target_height_px": screen_height,
                    "bbox": layer.bbox,
                    "render": timed(lambda: render_object(mesh, cam, pose, W, H, light=light), args.repeats),  # noqa: B023
                    "shadow": timed(lambda: render_shadow(mesh, cam, pose, support, light, W, H), args.repeats),  # noqa: B023
                    "composite": timed(
                        lambda: compositor.composite(frame, layer, layer.alpha, matte, velocity),  # noqa: B023
                        args.repeats,
                    ),
                }
            )
    report = {"frame": [W, H], "supersample": 2, "load_average": list(os.getloadavg()), "results": results}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
