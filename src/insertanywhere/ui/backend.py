"""What the page asks of the insertion pipeline, behind a small Protocol.

The server talks to an ``InsertBackend``; the default one calls
``insertanywhere.pipeline`` (``run_insert`` and ``preview_frames``), imported
lazily so that the page starts, and says so in one line, even where the
pipeline or one of its optional dependencies is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from insertanywhere.conventions import Placement
from insertanywhere.errors import MissingDependencyError
from insertanywhere.progress import Progress

SynthName = Literal["composite", "vace"]


@dataclass(frozen=True)
class InsertRequest:
    """One insertion as the page describes it (paths are inside the work folder).

    Attributes:
        video: the stored video file.
        object_path: the stored object file (RGBA image or mesh).
        placement: box in video pixels (pixel-corner origin) on ``placement.frame``, and yaw.
        out: the output folder (docs/design.md contract).
        synth: "composite" (CPU) or "vace" (GPU, weights).
        depth, flow: backend names of the reconstruction.
        light: (azimuth_deg, elevation_deg) of the key light, or None to estimate it.
    """

    video: Path
    object_path: Path
    placement: Placement
    out: Path
    synth: SynthName = "composite"
    depth: str = "classical"
    flow: str = "dis"
    light: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class InsertBackend(Protocol):
    """The two calls the page needs."""

    def available(self) -> str | None:
        """None when usable, else one line saying what is missing."""

    def run(self, request: InsertRequest, progress: Progress) -> dict[str, Any]:
        """Write the output folder of ``request.out``; return report.json's content (may be empty)."""

    def preview(self, request: InsertRequest, frame_indices: list[int], progress: Progress) -> dict[int, np.ndarray]:
        """Quick composites: frame index -> (H, W, 3) uint8 RGB at the video's full size.

        ``progress`` reports the stages (the first preview of a video builds its scene)."""


DEFAULT_RECONSTRUCTION = {"depth": "classical", "flow": "dis", "dynamic": "residual"}


class PipelineBackend:
    """The project's pipeline: ``insertanywhere.pipeline.run_insert`` / ``preview_frames``.

    Args:
        reconstruction: the server's reconstruction options (``insertanywhere ui --depth ... --model-path ...
            --device ...``): keys ``depth``, ``flow``, ``dynamic``, ``model_path``, ``device``. They apply to every
            page job; a request that names a backend other than the built-in default keeps its own.
    """

    def __init__(self, reconstruction: dict[str, Any] | None = None) -> None:
        self.reconstruction = dict(reconstruction or {})

    def _pipeline(self) -> Any:
        try:
            from insertanywhere import pipeline
        except ImportError as err:
            raise MissingDependencyError(
                f"the insertion pipeline cannot be imported ({err}); "
                "install the project with its dependencies: pip install -e '.[ui]'"
            ) from None
        return pipeline

    def available(self) -> str | None:
        try:
            self._pipeline()
        except MissingDependencyError as err:
            return str(err)
        return None

    def _config(self, request: InsertRequest) -> Any:
        pipeline = self._pipeline()
        from insertanywhere.scene.config import LEARNED_BACKENDS

        chosen = {"depth": request.depth, "flow": request.flow, "dynamic": DEFAULT_RECONSTRUCTION["dynamic"]}
        for stage, default in DEFAULT_RECONSTRUCTION.items():
            if chosen[stage] == default:
                chosen[stage] = self.reconstruction.get(stage) or default
        learned = any(name in LEARNED_BACKENDS for name in chosen.values())
        return pipeline.InsertConfig(
            video=request.video,
            object_path=request.object_path,
            placement=request.placement,
            out=request.out,
            synth=request.synth,
            light=request.light,
            overwrite=False,
            model_path=self.reconstruction.get("model_path") if learned else None,
            device=self.reconstruction.get("device") or "auto",
            **chosen,
            **request.extra,
        )

    def run(self, request: InsertRequest, progress: Progress) -> dict[str, Any]:
        pipeline = self._pipeline()
        result = pipeline.run_insert(self._config(request), progress=progress)
        return dict(getattr(result, "report", None) or {})

    def preview(self, request: InsertRequest, frame_indices: list[int], progress: Progress) -> dict[int, np.ndarray]:
        pipeline = self._pipeline()
        return dict(pipeline.preview_frames(self._config(request), list(frame_indices), progress=progress))
