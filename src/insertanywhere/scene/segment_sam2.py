"""The ``sam2`` dynamic backend: the flow-residual masks prompt SAM 2, whose video propagation gives
clean object masks (whole objects, sharp edges, kept while an object pauses).

The residual masks say *where* something moves; SAM 2 (``models/sam2.py``) says *which pixels* belong
to it. Components of the residual mask are turned into box + point prompts on the first frame where
they are not already covered by a tracked object, and each frame's mask is the union of the tracked
objects. See docs/reconstruction.md for the limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from insertanywhere.models.sam2 import Sam2Prompt, Sam2Settings, Sam2VideoSegmenter


@dataclass
class Sam2Dynamic:
    """A DynamicBackend (scene/dynamic.py) running SAM 2 on the working-resolution frames.

    Attributes:
        segmenter: the SAM 2 wrapper (model + prompting settings).
        last_prompts: the prompts of the latest call (frame, object id, box, point), for reports and tests.
    """

    segmenter: Sam2VideoSegmenter
    name: str = "sam2"
    last_prompts: list[Sam2Prompt] = field(default_factory=list)

    @classmethod
    def from_model(cls, model: Any, device: str = "cpu", settings: Sam2Settings | None = None) -> Sam2Dynamic:
        """Wrap a loaded ``Sam2VideoModel`` (``models.sam2.load_sam2``)."""
        return cls(Sam2VideoSegmenter(model, device=device, settings=settings or Sam2Settings()))

    def __call__(self, frames_work: list[np.ndarray], scores: np.ndarray, coarse_masks: np.ndarray) -> np.ndarray:
        """Args: frames_work T x (h, w, 3) uint8 RGB at the working resolution; scores (T, h, w) float32
        normalised residual (unused: the hysteresis masks already carry it); coarse_masks (T, h, w) bool.

        Returns:
            (T, h, w) bool masks.
        """
        result = self.segmenter(frames_work, coarse_masks)
        self.last_prompts = result.prompts
        return result.masks
