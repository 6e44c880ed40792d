"""The insertion dataset's manifest: one JSON object per line in ``DATASET/manifest.jsonl``.

Layout written by ``insertanywhere dataset build`` (paths in the manifest are relative to DATASET)::

    DATASET/
      manifest.jsonl             one line per valid sample (fields of DatasetSample)
      broken.jsonl               one line per rejected triplet: {"id", "inputs", "reason"}
      report.json                counts, settings, seconds
      samples/<id>/
        source.mp4               object-free clip (the model's input video)
        target.mp4               the same clip with the object (what the model must produce)
        masks/00000.png ...      object mask, 0/255
        optics/00000.png ...     extended optics mask (object + its shadows/reflections), 0/255
        reference.png            the chosen reference image, RGBA straight alpha
        sample.json              this sample's record plus every reference candidate's verdict
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from insertanywhere.errors import InputError

MANIFEST_NAME = "manifest.jsonl"
BROKEN_NAME = "broken.jsonl"


@dataclass
class DatasetSample:
    """One insertion sample. Paths are relative to the dataset folder.

    Attributes:
        id: unique, file-name safe.
        origin: "rose" or "synthetic".
        source: object-free clip (mp4).
        target: clip with the object (mp4).
        mask: folder of object-mask PNGs, one per frame.
        optics_mask: folder of extended-mask PNGs, one per frame.
        reference: RGBA reference image.
        reference_kind: "crop", "render" or "generated".
        reference_origin: which frame / file / generator it came from.
        reference_score: mean cosine similarity to the object crops (embedder below).
        embedder: "dinov2" or "classical".
        n_frames, width, height: clip size; fps as a float.
        prompt: text prompt for the sample ("" when none).
        object_fraction: mean fraction of frame pixels covered by the object mask.
        optics_extra_fraction: mean fraction of frame pixels in the extended mask but not the object mask.
    """

    id: str
    origin: str
    source: str
    target: str
    mask: str
    optics_mask: str
    reference: str
    reference_kind: str
    reference_origin: str
    reference_score: float
    embedder: str
    n_frames: int
    width: int
    height: int
    fps: float
    prompt: str = ""
    object_fraction: float = 0.0
    optics_extra_fraction: float = 0.0

    def path(self, dataset: str | os.PathLike[str], name: str) -> Path:
        """Absolute path of the field ``name`` ("source", "target", "mask", ...) inside ``dataset``."""
        return Path(dataset) / getattr(self, name)


def sample_to_json(sample: DatasetSample) -> str:
    return json.dumps(asdict(sample), sort_keys=True)


def load_manifest(dataset: str | os.PathLike[str]) -> list[DatasetSample]:
    """Read ``DATASET/manifest.jsonl``; InputError when missing, malformed or empty."""
    path = Path(dataset) / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"{dataset}: no {MANIFEST_NAME}; build the dataset with: insertanywhere dataset build")
    names = {f.name for f in fields(DatasetSample)}
    samples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            samples.append(DatasetSample(**{k: v for k, v in record.items() if k in names}))
        except (json.JSONDecodeError, TypeError) as err:
            raise InputError(f"{path}:{number}: not a manifest record ({err})") from None
    if not samples:
        raise InputError(f"{path}: the manifest lists no samples")
    return samples
