"""Object assets: an RGBA image (becomes an upright card) or a textured mesh.

Loaded at the edge and validated; the core trusts an ObjectAsset.
Meshes are put in the object frame of ``insertanywhere.conventions``: +Y up
(glTF's convention), the base's lowest point at y = 0, centred in x and z
(origin = contact point). Their scale stays the file's: placement solves it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from insertanywhere.errors import InputError

IMAGE_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".off", ".stl")
MAX_TEXTURE_SIDE = 4096
"""Longer side a mesh texture is shrunk to: trimesh packs several materials into one atlas (the Cesium
milk truck becomes 4096x8192 RGBA, 128 MB), far more than a few-hundred-pixel object on screen needs."""
OPAQUE_ALPHA = 250
"""An image whose alpha is at least this everywhere has no cut-out (the background would be inserted)."""


@dataclass
class ObjectAsset:
    """An object to insert.

    Attributes:
        name: a human name (the file stem), used in prompts and reports.
        kind: "image" or "mesh".
        rgba: (h, w, 4) uint8 straight-alpha image (kind "image"; for a mesh, a
            reference view is filled in by the renderer when needed), or None.
        vertices: (V, 3) float64 object-frame positions (kind "mesh").
        faces: (F, 3) int64 triangle vertex indices.
        uv: (V, 2) float64 texture coordinates, OpenGL style: u right, v up, (0, 0) at the texture's
            bottom-left (trimesh flips glTF's v-down UVs on load), or None.
        texture: (th, tw, 4) uint8 RGBA base-colour texture (row 0 = top, so v = 1 - row / th), its
            material's base colour factor already multiplied in, longer side at most MAX_TEXTURE_SIDE; or None.
        vertex_colors: (V, 4) uint8 RGBA colours used when there is no texture, or None.
        source: the file it came from.
    """

    name: str
    kind: Literal["image", "mesh"]
    rgba: np.ndarray | None = None
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    source: Path | None = None

    @property
    def aspect(self) -> float:
        """Width over height of the image's opaque part (kind "image")."""
        assert self.rgba is not None
        return self.rgba.shape[1] / self.rgba.shape[0]


def load_object(path: str | os.PathLike[str]) -> ObjectAsset:
    """Load an RGBA image or a mesh by suffix; raise InputError with a fix when it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such object file")
    suffix = path.suffix.lower()
    if suffix in MESH_SUFFIXES:
        return load_mesh_object(path)
    if suffix in IMAGE_SUFFIXES or suffix in (".jpg", ".jpeg", ".bmp"):
        return load_image_object(path)
    raise InputError(
        f"{path}: unknown object type {suffix!r}; give an RGBA image (.png) or a mesh ({', '.join(MESH_SUFFIXES)})"
    )


def load_image_object(path: Path) -> ObjectAsset:
    """Load an RGBA image, cropped to its visible part (alpha > 0)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            rgba = np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: not a readable image ({err})") from None
    if not has_alpha:
        raise InputError(
            f"{path}: the image has no alpha channel; cut the object out first "
            "(e.g. `rembg i in.jpg out.png`) and save it as an RGBA PNG"
        )
    alpha = rgba[..., 3]
    if alpha.min() >= OPAQUE_ALPHA:
        raise InputError(
            f"{path}: the alpha channel is opaque everywhere, so the background would be inserted too; "
            "cut the object out (transparent background) and save it as an RGBA PNG"
        )
    if alpha.max() == 0:
        raise InputError(f"{path}: the image is fully transparent; nothing to insert")
    ys, xs = np.nonzero(alpha > 0)
    rgba = np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    return ObjectAsset(name=path.stem, kind="image", rgba=rgba, source=path)


def _one_line(err: BaseException) -> str:
    """``Type: first line of the message``, so a library's multi-line error stays one line."""
    text = str(err).strip().splitlines()
    return f"{err.__class__.__name__}: {text[0]}" if text else err.__class__.__name__


def _texture_array(image: object, base_color_factor: object) -> np.ndarray:
    """(th, tw, 4) uint8 RGBA from a PIL texture: shrunk to MAX_TEXTURE_SIDE, times the glTF base colour factor
    (glTF 2.0 spec, metallic-roughness material: base colour = factor * texture)."""
    from PIL import Image

    rgba_image = image.convert("RGBA")  # type: ignore[attr-defined]
    longest = max(rgba_image.size)
    if longest > MAX_TEXTURE_SIDE:
        scale = MAX_TEXTURE_SIDE / longest
        size = (max(1, round(rgba_image.size[0] * scale)), max(1, round(rgba_image.size[1] * scale)))
        rgba_image = rgba_image.resize(size, Image.Resampling.BOX)  # area average: right for shrinking, 20x faster
    texture = np.asarray(rgba_image)
    if base_color_factor is not None:
        factor = np.asarray(base_color_factor, dtype=np.float64).reshape(-1)[:4]
        if factor.max() > 1.0:  # trimesh stores factors as uint8 0..255
            factor = factor / 255.0
        if factor.size == 4 and not np.allclose(factor, 1.0):
            texture = np.clip(texture * factor + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(texture)


def load_mesh_object(path: Path) -> ObjectAsset:
    """Load a (textured) mesh through trimesh and put it in the object frame."""
    import trimesh

    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as err:  # trimesh raises many types for bad files; all mean "cannot read this mesh"
        raise InputError(f"{path}: not a readable mesh ({_one_line(err)})") from None
    if isinstance(loaded, trimesh.Scene):
        triangle_meshes = [g for g in loaded.geometry.values() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        if not triangle_meshes:
            raise InputError(f"{path}: the file holds no triangles (a point cloud or empty mesh cannot be rendered)")
        try:
            mesh = loaded.to_mesh() if hasattr(loaded, "to_mesh") else loaded.dump(concatenate=True)
        except Exception as err:  # mixed geometry kinds or materials trimesh cannot merge
            raise InputError(f"{path}: the scene's meshes cannot be merged into one ({_one_line(err)})") from None
    else:
        mesh = loaded
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError(f"{path}: the file holds no triangles (a point cloud or empty mesh cannot be rendered)")
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if faces.min() < 0 or faces.max() >= len(mesh.vertices):
        raise InputError(f"{path}: the mesh has faces that index missing vertices; re-export it")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if not np.all(np.isfinite(vertices)):
        raise InputError(f"{path}: the mesh has non-finite vertex positions")
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    if np.any(hi - lo <= 0) and np.count_nonzero(hi - lo > 0) < 2:
        raise InputError(f"{path}: the mesh is degenerate (no extent in two axes)")
    contact = np.array([(lo[0] + hi[0]) / 2.0, lo[1], (lo[2] + hi[2]) / 2.0])
    vertices = vertices - contact
    uv = texture = vertex_colors = None
    visual = mesh.visual
    if getattr(visual, "kind", None) == "texture" and getattr(visual, "uv", None) is not None:
        uv = np.asarray(visual.uv, dtype=np.float64)
        material = visual.material
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        if image is not None:
            texture = _texture_array(image, getattr(material, "baseColorFactor", None))
        else:
            color = getattr(material, "baseColorFactor", None)
            if color is None:
                color = getattr(material, "main_color", None)
            if color is not None:
                vertex_colors = np.tile(np.asarray(color, dtype=np.uint8)[:4], (len(vertices), 1))
    if texture is None and vertex_colors is None:
        try:
            # ColorVisuals (per-vertex colours) has no to_color(); TextureVisuals without an image has.
            color_visual = visual if getattr(visual, "kind", None) in ("vertex", "face") else visual.to_color()
            vertex_colors = np.asarray(color_visual.vertex_colors, dtype=np.uint8)
        except Exception:
            vertex_colors = np.full((len(vertices), 4), 180, dtype=np.uint8)
    return ObjectAsset(
        name=path.stem,
        kind="mesh",
        vertices=vertices,
        faces=faces,
        uv=uv,
        texture=texture,
        vertex_colors=vertex_colors,
        source=path,
    )
