"""ReconstructConfig and the backend registries (by name, nerfstudio-style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from insertanywhere.errors import InputError
from insertanywhere.models.device import check_device_name, resolve_torch_device
from insertanywhere.scene.cameras import CameraConfig
from insertanywhere.scene.dynamic import ResidualConfig
from insertanywhere.scene.tracks import TrackerConfig

FLOW_NAMES = ("dis", "raft")
DEPTH_NAMES = ("classical", "depth-anything-v2", "files:DIR")
DYNAMIC_NAMES = ("residual", "sam2")
LEARNED_BACKENDS = ("raft", "depth-anything-v2", "sam2")


@dataclass
class ReconstructConfig:
    """Everything that decides a reconstruction (a folder is reused only when this matches).

    Attributes:
        flow: "dis" | "raft".
        depth: "classical" | "depth-anything-v2" | "files:DIR".
        dynamic: "residual" | "sam2" (the residual masks prompt SAM 2, see docs/reconstruction.md).
        fov_deg: horizontal field of view in degrees, or None.
        K: ``(fx, fy, cx, cy)`` full-resolution pixels, or None (self-calibrated).
        model_path: local folder or cached hub id of the learned backend's weights (raft, depth-anything-v2
            or sam2; one at a time).
        work_long_side: long side in pixels of the working resolution for flow, depth and dynamic masks.
        work_max_pixels: the working resolution's pixel budget (width x height): a 4:3 clip works at
            365x274 rather than 416x312, so every clip costs about what a 16:9 one does.
        track_long_side: long side of the finer frames the point tracks are refined on (capped at the clip's);
            0 (the default) tracks on the working frames. 832 makes the cameras of textured general-motion
            clips more precise, but it turned a real pan (paraglider) into "general": see docs/reconstruction.md.
        dis_preset: "ultrafast" | "fast" | "medium".
        device: torch device of the learned backend: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:N"
            or "mps". It does not decide the result (a folder made on the GPU is reused on the CPU): the
            fingerprint leaves it out, and ``backends`` records where the model ran.
    """

    flow: str = "dis"
    depth: str = "classical"
    dynamic: str = "residual"
    fov_deg: float | None = None
    K: tuple[float, float, float, float] | None = None
    model_path: str | None = None
    work_long_side: int = 416
    work_max_pixels: int = 416 * 240
    track_long_side: int = 0
    dis_preset: str = "medium"
    device: str = "auto"
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    cameras: CameraConfig = field(default_factory=CameraConfig)
    residual: ResidualConfig = field(default_factory=ResidualConfig)

    def validate(self) -> ReconstructConfig:
        """Raise InputError (one line) for an unknown backend name or an unusable value."""
        if self.flow not in FLOW_NAMES:
            raise InputError(f"unknown flow backend {self.flow!r}; choose one of {', '.join(FLOW_NAMES)}")
        if self.depth not in DEPTH_NAMES[:2] and not self.depth.startswith("files:"):
            raise InputError(f"unknown depth backend {self.depth!r}; choose one of {', '.join(DEPTH_NAMES)}")
        if self.depth.startswith("files:") and not Path(self.depth[len("files:") :]).is_dir():
            raise InputError(f"--depth {self.depth}: the folder does not exist")
        if self.dynamic not in DYNAMIC_NAMES:
            raise InputError(f"unknown dynamic backend {self.dynamic!r}; choose one of {', '.join(DYNAMIC_NAMES)}")
        if self.work_long_side < 64:
            raise InputError(f"work_long_side {self.work_long_side} is too small; use at least 64 pixels")
        if self.work_max_pixels < 64 * 64:
            raise InputError(f"work_max_pixels {self.work_max_pixels} is too small; use at least 4096")
        check_device_name(self.device)
        learned = self.learned_backends
        if learned and not self.model_path:
            raise InputError(f"the {learned[0]} backend needs --model-path (a local weights folder or a hub id)")
        if self.model_path and not learned:
            raise InputError(
                "--model-path is for a learned backend, and none is chosen: add --depth depth-anything-v2, "
                "--flow raft or --dynamic sam2"
            )
        if len(learned) > 1:
            raise InputError(
                f"one --model-path cannot serve {' and '.join(learned)}; use one learned backend at a time"
            )
        if learned:
            # Before any stage runs: --device cuda without a usable GPU is one line, not a late traceback.
            resolve_torch_device(self.device)
        return self

    @property
    def learned_backends(self) -> list[str]:
        """The learned backends this config names (at most one passes ``validate``)."""
        return [name for name in (self.flow, self.depth, self.dynamic) if name in LEARNED_BACKENDS]

    def torch_device(self) -> str:
        """The torch device the learned backend runs on here (``device`` resolved; InputError if unusable)."""
        return resolve_torch_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["K"] = list(self.K) if self.K is not None else None
        return data

    @property
    def backends(self) -> dict[str, str]:
        """The stages' backends by name, and the device the learned one runs on (when there is one)."""
        names = {"flow": self.flow, "depth": self.depth, "dynamic": self.dynamic, "cameras": "tracks+ba"}
        return {**names, "device": self.torch_device()} if self.learned_backends else names
