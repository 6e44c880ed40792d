"""Backends by name: one place that turns a ReconstructConfig into stage objects.

Adding a backend means one new file and one entry here.
"""

from __future__ import annotations

from pathlib import Path

from insertanywhere.scene.config import ReconstructConfig
from insertanywhere.scene.depth import DepthPrior, FileDepthPrior
from insertanywhere.scene.dynamic import DYNAMIC_BACKENDS, DynamicBackend
from insertanywhere.scene.flow import FLOW_BACKENDS, DISFlow, FlowBackend


def make_flow_backend(config: ReconstructConfig) -> FlowBackend:
    """The flow backend named by ``config.flow`` ("dis" or "raft")."""
    if config.flow == "dis":
        return DISFlow(preset=config.dis_preset)
    if config.flow == "raft":
        from insertanywhere.models.raft import RaftFlow, load_raft

        device = config.torch_device()

        return RaftFlow(load_raft(config.model_path, device=device), device=device)
    return FLOW_BACKENDS[config.flow]()


def make_depth_prior(config: ReconstructConfig) -> DepthPrior:
    """The depth prior named by ``config.depth`` ("depth-anything-v2" or "files:DIR")."""
    if config.depth.startswith("files:"):
        return FileDepthPrior(Path(config.depth[len("files:") :]))
    if config.depth == "depth-anything-v2":
        from insertanywhere.models.depth_anything import DepthAnythingPrior, load_depth_anything

        device = config.torch_device()
        model, settings = load_depth_anything(config.model_path, device=device)
        return DepthAnythingPrior(model, settings, device=device)
    raise ValueError(f"{config.depth} has no depth prior")


def make_dynamic_backend(config: ReconstructConfig) -> DynamicBackend:
    """The dynamic-region backend named by ``config.dynamic`` ("residual" or "sam2")."""
    if config.dynamic == "sam2":
        from insertanywhere.models.sam2 import load_sam2
        from insertanywhere.scene.segment_sam2 import Sam2Dynamic

        device = config.torch_device()
        return Sam2Dynamic.from_model(load_sam2(config.model_path, device=device), device=device)
    return DYNAMIC_BACKENDS[config.dynamic]()
