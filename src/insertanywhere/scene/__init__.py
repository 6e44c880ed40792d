"""4D scene reconstruction from a monocular video (Uni4D-style): flow, tracks, cameras, depth, dynamics.

Public API::

    from insertanywhere.scene import ReconstructConfig, reconstruct, reconstruct_to_folder
"""

from insertanywhere.scene.config import ReconstructConfig
from insertanywhere.scene.pipeline import reconstruct, reconstruct_to_folder

__all__ = ["ReconstructConfig", "reconstruct", "reconstruct_to_folder"]
