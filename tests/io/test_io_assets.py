"""Object assets: every shared object loads; bad objects fail in one line with a fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from insertanywhere.errors import InputError
from insertanywhere.io.assets import MAX_TEXTURE_SIDE, load_object

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "objects"
IMAGES = sorted((DATA / "images").glob("*.png")) if DATA.is_dir() else []
MESHES = sorted((DATA / "meshes").glob("*.glb")) if DATA.is_dir() else []
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared test data absent")


@needs_data
@pytest.mark.parametrize("path", IMAGES, ids=[p.name for p in IMAGES])
def test_shared_images_load_cropped_with_transparency(path: Path) -> None:
    asset = load_object(path)
    assert asset.kind == "image" and asset.name == path.stem and asset.source == path
    rgba = asset.rgba
    assert rgba is not None and rgba.dtype == np.uint8 and rgba.ndim == 3 and rgba.shape[2] == 4
    alpha = rgba[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # a cut-out
    # Cropped to the visible part: every border row and column touches the object.
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()
    assert asset.aspect == pytest.approx(rgba.shape[1] / rgba.shape[0])


@needs_data
@pytest.mark.parametrize("path", MESHES, ids=[p.name for p in MESHES])
def test_shared_meshes_load_in_the_object_frame(path: Path) -> None:
    asset = load_object(path)
    assert asset.kind == "mesh"
    vertices, faces = asset.vertices, asset.faces
    assert vertices is not None and faces is not None
    assert vertices.dtype == np.float64 and vertices.shape[1] == 3 and faces.shape[1] == 3
    assert faces.min() >= 0 and faces.max() < len(vertices)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    assert lo[1] == pytest.approx(0.0, abs=1e-9)  # standing on y = 0 (object up = +Y)
    np.testing.assert_allclose([(lo[0] + hi[0]) / 2, (lo[2] + hi[2]) / 2], [0.0, 0.0], atol=1e-9)  # centred
    has_texture = asset.texture is not None and asset.uv is not None
    assert has_texture or asset.vertex_colors is not None
    if has_texture:
        assert asset.uv.shape == (len(vertices), 2)
        assert asset.texture.dtype == np.uint8 and asset.texture.shape[2] == 4
        assert max(asset.texture.shape[:2]) <= MAX_TEXTURE_SIDE


def _save_rgba(path: Path, alpha: np.ndarray) -> Path:
    rgb = np.full((*alpha.shape, 3), 120, np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    return path


def test_image_crop_to_visible_part(tmp_path: Path) -> None:
    alpha = np.zeros((20, 30), np.uint8)
    alpha[5:15, 10:16] = 255
    asset = load_object(_save_rgba(tmp_path / "o.png", alpha))
    assert asset.rgba.shape == (10, 6, 4)


def test_missing_alpha_suggests_cutting_out(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(path)
    with pytest.raises(InputError, match=r"no alpha channel.*cut the object out") as err:
        load_object(path)
    assert "\n" not in str(err.value)


def test_all_opaque_alpha_suggests_cutting_out(tmp_path: Path) -> None:
    path = _save_rgba(tmp_path / "opaque.png", np.full((8, 8), 255, np.uint8))
    with pytest.raises(InputError, match=r"opaque everywhere.*transparent background"):
        load_object(path)


def test_fully_transparent_image(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fully transparent"):
        load_object(_save_rgba(tmp_path / "empty.png", np.zeros((8, 8), np.uint8)))


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such object file"):
        load_object(tmp_path / "nope.png")
    (tmp_path / "object.docx").write_bytes(b"x")
    with pytest.raises(InputError, match="unknown object type"):
        load_object(tmp_path / "object.docx")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="not a readable image"):
        load_object(tmp_path / "broken.png")


def test_unreadable_mesh(tmp_path: Path) -> None:
    path = tmp_path / "broken.glb"
    path.write_bytes(b"glTF" + bytes(range(200)))
    with pytest.raises(InputError, match="not a readable mesh") as err:
        load_object(path)
    assert "\n" not in str(err.value)


def test_empty_mesh(tmp_path: Path) -> None:
    path = tmp_path / "empty.obj"
    path.write_text("# nothing here\n")
    with pytest.raises(InputError, match=r"no triangles|not a readable mesh"):
        load_object(path)


def test_point_cloud_is_not_a_mesh(tmp_path: Path) -> None:
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(InputError, match="no triangles"):
        load_object(path)


def test_degenerate_mesh(tmp_path: Path) -> None:
    path = tmp_path / "line.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    with pytest.raises(InputError, match="degenerate"):
        load_object(path)


def test_obj_mesh_is_moved_to_the_contact_point(tmp_path: Path) -> None:
    path = tmp_path / "tri.obj"
    path.write_text("v 1 2 3\nv 3 2 3\nv 2 5 4\nf 1 2 3\n")
    asset = load_object(path)
    np.testing.assert_allclose(asset.vertices, [[-1, 0, -0.5], [1, 0, -0.5], [0, 3, 0.5]])
    assert asset.vertex_colors is not None and asset.vertex_colors.shape == (3, 4)


def test_huge_texture_is_shrunk_and_base_colour_factor_applied(tmp_path: Path) -> None:
    trimesh = pytest.importorskip("trimesh")
    box = trimesh.creation.box(extents=(1, 1, 1))
    texture = Image.fromarray(np.full((16, MAX_TEXTURE_SIDE * 2, 3), 200, np.uint8))
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=texture, baseColorFactor=[0.5, 1.0, 1.0, 1.0])
    uv = np.random.default_rng(0).uniform(0, 1, (len(box.vertices), 2))
    box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    path = tmp_path / "box.glb"
    box.export(path)
    asset = load_object(path)
    assert asset.texture.shape[1] == MAX_TEXTURE_SIDE
    assert abs(int(asset.texture[4, 100, 0]) - 100) <= 2 and abs(int(asset.texture[4, 100, 1]) - 200) <= 2
