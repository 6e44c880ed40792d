"""Which torch device a learned model runs on: one place for the name a user types and what it resolves to.

``auto`` picks CUDA when torch sees a GPU, else Apple's MPS, else the CPU. A named device is checked against what
torch sees *before* any expensive stage runs, so ``--device cuda`` on a machine without a usable GPU is one line
and exit code 2, not a traceback from deep inside a model's ``.to()``.
"""

from __future__ import annotations

import re

from insertanywhere.errors import InputError, require

DEVICE_HELP = "torch device of the learned models: auto (CUDA, else Apple MPS, else CPU), cpu, cuda, cuda:N or mps"
_DEVICE_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(name: str) -> str:
    """``name`` when it is a device name this project accepts (no torch import), else InputError."""
    if not isinstance(name, str) or not _DEVICE_NAME.match(name):
        raise InputError(f"--device {name!r}: choose auto, cpu, cuda, cuda:N or mps")
    return name


def resolve_torch_device(name: str, extra: str = "learned") -> str:
    """The torch device ``name`` stands for on this machine: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Args:
        name: a name ``check_device_name`` accepts; ``"auto"`` picks CUDA, else MPS, else the CPU.
        extra: the pip extra to name when torch is missing.

    Raises:
        InputError: the device is not usable here (no CUDA build or no GPU, a GPU index beyond the count, no MPS).
        MissingDependencyError: torch is not installed.
    """
    check_device_name(name)
    torch = require("torch", extra)
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"--device {name}: torch sees no CUDA GPU here; use --device cpu (or auto)")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= count:
            raise InputError(f"--device {name}: torch sees {count} CUDA GPU(s), numbered 0-{count - 1}")
    if name == "mps" and not mps_ok:
        raise InputError("--device mps: Apple's MPS is not available here; use --device cpu (or auto)")
    return name
