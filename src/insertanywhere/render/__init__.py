"""Rendering the inserted object: geometry, a CPU rasteriser, shading, shadows and light.

Public API (see docs/rendering.md)::

    mesh = object_mesh(asset)                       # TexturedMesh in the object frame
    layer = render_object(mesh, camera, world_from_object, width, height, supersample=2, light=None)
    matte = render_shadow(mesh, camera, world_from_object, support, light, width, height)
    light = estimate_light(frame, scene, frame_index, support_plane, contact_world)  # or None
"""

from insertanywhere.render.layer import ObjectLayer, render_object
from insertanywhere.render.light import Light, default_light, estimate_light, parse_light_angles
from insertanywhere.render.mesh import TexturedMesh, card_mesh, object_mesh
from insertanywhere.render.shadow import ShadowConfig, SupportPlane, render_shadow

__all__ = [
    "Light",
    "ObjectLayer",
    "ShadowConfig",
    "SupportPlane",
    "TexturedMesh",
    "card_mesh",
    "default_light",
    "estimate_light",
    "object_mesh",
    "parse_light_angles",
    "render_object",
    "render_shadow",
]
