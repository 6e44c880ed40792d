"""SAM 2 video segmentation (Ravi et al. 2024) through transformers' ``Sam2VideoModel``.

PyPI ``sam2`` needs torchvision, which cannot be installed beside this project's torch build, and
transformers' SAM 2 image/video processors are torchvision-backed too. So this module uses the model
classes only and does its own (small) preprocessing: each frame is resized to the model's square input
(``config.image_size``, 1024 for the released checkpoints), scaled to [0, 1] and normalised with the
ImageNet mean and std, as the upstream processors do; prompt coordinates are scaled by the same factors.

One loader, ``load_sam2(path_or_hub_id)``: a local folder (config.json + weights) or a hub id already in
the local cache; nothing downloads.

``Sam2VideoSegmenter`` turns coarse per-frame masks (the flow-residual backend's) into SAM 2 object masks:
it walks the clip forward once; on the first frame where a connected component of the coarse mask is not
covered by the objects already tracked, it prompts SAM 2 there with the component's box and an interior
point (a new object, or a re-prompt of the tracked object whose last box overlaps it), and every frame's
output is the union of all tracked objects' masks. Memory stays bounded: frames are preprocessed lazily
(one 1024x1024 float tensor at a time, one frame of image features cached) and per-object memory
outputs older than SAM 2's memory window are dropped as the walk proceeds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from insertanywhere.errors import MissingDependencyError, require

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

# Modules of Sam2VideoModel that an image-only checkpoint would leave randomly initialised.
VIDEO_MODULES = ("memory_attention.", "memory_encoder.", "object_pointer_proj.", "mask_downsample.")


def load_sam2(model_path: str | None, device: str = "cpu") -> Any:
    """Load a SAM 2 (2.0 or 2.1) checkpoint as a transformers ``Sam2VideoModel`` in eval mode.

    Args:
        model_path: local folder or cached hub id, e.g. ``facebook/sam2.1-hiera-tiny``.
        device: torch device.

    Returns:
        The model.

    Raises:
        MissingDependencyError: no path, torch/transformers missing or too old, no weights at
            ``model_path``, or a checkpoint without the video memory modules (one line each).
    """
    if not model_path:
        raise MissingDependencyError(
            "sam2 needs --model-path: a local folder with config.json and weights of a transformers SAM 2 "
            "checkpoint (e.g. a snapshot of facebook/sam2.1-hiera-tiny)"
        )
    require("torch", "learned")
    transformers = require("transformers", "learned")
    if not hasattr(transformers, "Sam2VideoModel"):
        raise MissingDependencyError(
            f"transformers {transformers.__version__} has no Sam2VideoModel; install transformers>=4.56"
        )
    try:
        model, info = transformers.Sam2VideoModel.from_pretrained(
            model_path, local_files_only=True, output_loading_info=True
        )
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MissingDependencyError(
            f"no SAM 2 weights at {model_path!r} ({first_line[:160]}); download the checkpoint into a folder "
            "and pass that folder with --model-path"
        ) from None
    missing = [key for key in info.get("missing_keys", []) if key.startswith(VIDEO_MODULES)]
    if missing:
        raise MissingDependencyError(
            f"the SAM 2 checkpoint at {model_path!r} has no video memory weights ({len(missing)} missing, e.g. "
            f"{missing[0]}); use a full SAM 2 checkpoint such as facebook/sam2.1-hiera-tiny"
        )
    model.to(device).eval()
    return model


def model_input_size(model: Any) -> tuple[int, int]:
    """(height, width) in pixels of the model's square input (``config.image_size``)."""
    size = model.config.image_size
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[-1])
    return int(size), int(size)


def preprocess_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, h, w) float32, resized to ``size`` = (h, w), ImageNet-normalised."""
    resized = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    return np.ascontiguousarray(((resized - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))


class LazyFrames(Mapping):
    """frame index -> (3, h, w) float32 torch tensor, preprocessed on access (nothing kept).

    Stands in for the inference session's dict of preprocessed frames, so that a clip costs its uint8
    frames only, not T x 3 x 1024 x 1024 floats (12 MB a frame).
    """

    def __init__(self, frames: Sequence[np.ndarray], size: tuple[int, int]) -> None:
        self.frames = frames
        self.size = size

    def __getitem__(self, index: int) -> Any:
        import torch

        if not 0 <= index < len(self.frames):
            raise KeyError(index)
        return torch.from_numpy(preprocess_frame(self.frames[index], self.size))

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.frames)))

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class Sam2Prompt:
    """One prompt given to SAM 2, in the frame's pixels.

    Attributes:
        frame: frame index.
        object_id: SAM 2 object id (1, 2, ...).
        box: ``(x0, y0, x1, y1)`` inclusive pixel indices of the coarse component's bounding box.
        point: ``(x, y)`` pixel indices of the component's most interior pixel (positive click).
        reprompt: True when it re-prompts an object already tracked.
    """

    frame: int
    object_id: int
    box: tuple[int, int, int, int]
    point: tuple[int, int]
    reprompt: bool = False


@dataclass(frozen=True)
class Component:
    """A connected component of a coarse mask: (h, w) bool ``mask``, inclusive box, interior point."""

    mask: np.ndarray
    box: tuple[int, int, int, int]
    point: tuple[int, int]


def mask_components(mask: np.ndarray, min_area: int) -> list[Component]:
    """The 8-connected components of an (H, W) bool mask with at least ``min_area`` pixels, largest first.

    The point is the pixel farthest from the component's border (distance transform), so it lies inside
    even for a ring or a C shape.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, count), key=lambda i: (-int(stats[i, cv2.CC_STAT_AREA]), i))
    components = []
    for label in order:
        if stats[label, cv2.CC_STAT_AREA] < min_area:
            continue
        x, y, w, h = (int(v) for v in stats[label, :4])
        region = labels == label
        inside = cv2.distanceTransform(np.pad(region[y : y + h, x : x + w], 1).astype(np.uint8), cv2.DIST_L2, 3)
        py, px = np.unravel_index(int(np.argmax(inside)), inside.shape)
        components.append(Component(region, (x, y, x + w - 1, y + h - 1), (x + int(px) - 1, y + int(py) - 1)))
    return components


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two inclusive pixel boxes ``(x0, y0, x1, y1)``."""
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / area


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Inclusive pixel box of an (H, W) bool mask, or None when it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@dataclass
class Sam2Settings:
    """How coarse masks become prompts.

    Attributes:
        min_area_fraction: components smaller than this fraction of the frame are not prompted.
        cover_fraction: a component counts as tracked when this fraction of its pixels lies in the union
            of the tracked masks on that frame.
        match_iou: an untracked component re-prompts the tracked object whose last box overlaps its box by
            at least this IoU; otherwise it starts a new object.
        max_objects: at most this many objects are tracked (compute grows linearly with them).
        max_prompt_frames: each object keeps the memory of its latest this many prompted frames.
        mask_threshold: logit threshold of SAM 2's mask output.
    """

    min_area_fraction: float = 0.0015
    cover_fraction: float = 0.5
    match_iou: float = 0.3
    max_objects: int = 8
    max_prompt_frames: int = 4
    mask_threshold: float = 0.0


@dataclass
class Sam2Result:
    """Output of ``Sam2VideoSegmenter``: (T, H, W) bool ``masks`` and the prompts that made them."""

    masks: np.ndarray
    prompts: list[Sam2Prompt] = field(default_factory=list)


@dataclass
class Sam2VideoSegmenter:
    """Coarse dynamic masks -> SAM 2 object masks, one forward walk through the clip (see module doc)."""

    model: Any
    device: str = "cpu"
    settings: Sam2Settings = field(default_factory=Sam2Settings)

    def __call__(self, frames: Sequence[np.ndarray] | np.ndarray, coarse_masks: np.ndarray) -> Sam2Result:
        """Segment the objects that the coarse masks point at.

        Args:
            frames: T frames (H, W, 3) uint8 RGB (a (T, H, W, 3) array or a list).
            coarse_masks: (T, H, W) bool, e.g. the flow-residual masks.

        Returns:
            Sam2Result with (T, H, W) bool masks (union of the tracked objects) and the prompts.
        """
        import torch

        n_frames = len(frames)
        if coarse_masks.shape[0] != n_frames:
            raise ValueError(f"{n_frames} frames but {coarse_masks.shape[0]} masks")
        height, width = coarse_masks.shape[1:]
        masks = np.zeros((n_frames, height, width), bool)
        prompts: list[Sam2Prompt] = []
        min_area = max(1, round(self.settings.min_area_fraction * height * width))
        if not coarse_masks.any():
            return Sam2Result(masks, prompts)

        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        size = model_input_size(self.model)
        dtype = next(self.model.parameters()).dtype
        session = Sam2VideoInferenceSession(
            video=None, video_height=height, video_width=width, inference_device=self.device,
            inference_state_device=self.device, video_storage_device="cpu", dtype=dtype,
            max_vision_features_cache_size=1,
        )  # fmt: skip
        session.processed_frames = LazyFrames(frames, size)
        scale = np.array([size[1] / width, size[0] / height] * 2, np.float32)
        keep = max(int(self.model.config.num_maskmem), int(self.model.config.max_object_pointers_in_encoder)) + 1
        last_box: dict[int, tuple[int, int, int, int]] = {}

        with torch.inference_mode():
            for t in range(n_frames):
                per_object = self._segment(session, t, height, width) if session.get_obj_num() else {}
                union = np.logical_or.reduce(list(per_object.values())) if per_object else np.zeros_like(masks[t])
                new_prompts = self._prompts_for(t, coarse_masks[t], union, list(session.obj_ids), last_box, min_area)
                if new_prompts:
                    for prompt in new_prompts:
                        self._add_prompt(session, prompt, scale)
                    session.obj_with_new_inputs = [p.object_id for p in new_prompts]
                    per_object = self._segment(session, t, height, width)
                    prompts.extend(new_prompts)
                    # The prompt's box stands for the object until SAM 2 gives it a non-empty mask, so a
                    # miss re-prompts the same object instead of starting another one.
                    last_box.update((p.object_id, p.box) for p in new_prompts)
                for object_id, object_mask in per_object.items():
                    box = mask_box(object_mask)
                    if box is not None:
                        last_box[object_id] = box
                    masks[t] |= object_mask
                self._prune(session, t, keep, self.settings.max_prompt_frames)
        return Sam2Result(masks, prompts)

    def _segment(self, session: Any, t: int, height: int, width: int) -> dict[int, np.ndarray]:
        """Run SAM 2 on frame t for every object: object id -> (H, W) bool mask."""
        import torch

        output = self.model(inference_session=session, frame_idx=t)
        logits = output.pred_masks.float()  # (n_objects, 1, h, w) low-resolution logits
        upsampled = torch.nn.functional.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        binary = (upsampled[:, 0] > self.settings.mask_threshold).cpu().numpy()
        return {int(object_id): binary[i] for i, object_id in enumerate(output.object_ids)}

    def _prompts_for(
        self,
        t: int,
        coarse: np.ndarray,
        union: np.ndarray,
        object_ids: list[int],
        last_box: dict[int, tuple[int, int, int, int]],
        min_area: int,
    ) -> list[Sam2Prompt]:
        """Prompts for the components of ``coarse`` (H, W) bool that ``union`` (H, W) bool does not cover.

        ``object_ids`` are the objects tracked so far (ids 1, 2, ...); ``last_box`` their latest non-empty
        mask boxes.
        """
        prompts: list[Sam2Prompt] = []
        used: set[int] = set()
        next_id = max(object_ids, default=0) + 1
        for component in uncovered_components(coarse, union, min_area, self.settings.cover_fraction):
            candidates = [
                (box_iou(component.box, box), object_id) for object_id, box in last_box.items() if object_id not in used
            ]
            best_iou, best_id = max(candidates, default=(0.0, 0))
            if best_iou >= self.settings.match_iou:
                prompts.append(Sam2Prompt(t, best_id, component.box, component.point, reprompt=True))
                used.add(best_id)
            elif next_id <= self.settings.max_objects:
                prompts.append(Sam2Prompt(t, next_id, component.box, component.point))
                used.add(next_id)
                next_id += 1
        return prompts

    def _add_prompt(self, session: Any, prompt: Sam2Prompt, scale: np.ndarray) -> None:
        """Box (labels 2, 3) and positive point (label 1) on ``prompt.frame``, in model-input pixels.

        A re-prompted object forgets its tracked output on that frame, so the prompt makes it a
        conditioning frame (as a fresh prompt would), not a correction click on a tracked frame.
        """
        import torch

        object_index = session.obj_id_to_idx(prompt.object_id)
        session.frames_tracked_per_obj[object_index].pop(prompt.frame, None)
        session.output_dict_per_obj[object_index]["non_cond_frame_outputs"].pop(prompt.frame, None)
        coords = np.array([*prompt.box, *prompt.point], np.float32).reshape(3, 2) * scale[:2]
        session.add_point_inputs(
            object_index,
            prompt.frame,
            {
                "point_coords": torch.from_numpy(coords)[None, None],  # (1, 1, 3, 2)
                "point_labels": torch.tensor([[[2, 3, 1]]], dtype=torch.int32),
            },
        )
        session.remove_mask_inputs(object_index, prompt.frame)

    @staticmethod
    def _prune(session: Any, t: int, keep: int, max_prompt_frames: int) -> None:
        """Drop what SAM 2 no longer needs, so memory and per-frame work stay bounded over a long clip:
        full-size mask logits (1024 x 1024 floats per object and frame; only the memory encoder of the
        same step reads them), tracked outputs older than ``keep`` frames (memory frames and object
        pointers reach back num_maskmem and max_object_pointers_in_encoder frames), and all but the
        latest ``max_prompt_frames`` prompted frames of each object (every prompted frame is attended to
        on every later frame)."""
        for outputs in session.output_dict_per_obj.values():
            for stored in (*outputs["cond_frame_outputs"].values(), *outputs["non_cond_frame_outputs"].values()):
                stored.pop("high_res_masks", None)
            for old in [f for f in outputs["non_cond_frame_outputs"] if f <= t - keep]:
                del outputs["non_cond_frame_outputs"][old]
            for old in sorted(outputs["cond_frame_outputs"])[:-max_prompt_frames]:
                del outputs["cond_frame_outputs"][old]


def uncovered_components(
    coarse: np.ndarray, tracked: np.ndarray, min_area: int, cover_fraction: float
) -> list[Component]:
    """Components of ``coarse`` (H, W) bool (>= ``min_area`` pixels) of which less than ``cover_fraction``
    lies inside ``tracked`` (H, W) bool."""
    return [
        component
        for component in mask_components(coarse, min_area)
        if np.count_nonzero(component.mask & tracked) < cover_fraction * np.count_nonzero(component.mask)
    ]
