"""Synthetic ground-truth scenes (``insertanywhere synth``): the project's test, benchmark and training data.

A numpy ray caster renders textured boxes and rectangles under a directional sun, with and without an
inserted cut-out card, and writes the background video, the object, the placement and the ground truth
(masks, alpha, shadow matte, depth, dynamic masks, cameras, object poses). See docs/synthetic.md.
"""

from insertanywhere.data.synthetic.families import FAMILIES, SMALL_SIZE, build_scene
from insertanywhere.data.synthetic.loader import SyntheticCase, load_synthetic_case, render_case_cached
from insertanywhere.data.synthetic.writer import SynthError, render_scene_to_folder

__all__ = [
    "FAMILIES",
    "SMALL_SIZE",
    "SynthError",
    "SyntheticCase",
    "build_scene",
    "load_synthetic_case",
    "render_case_cached",
    "render_scene_to_folder",
]
