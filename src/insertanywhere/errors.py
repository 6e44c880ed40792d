"""Errors a user can fix. The CLI turns them into one line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message says what is wrong and how to fix it, in one line."""

    exit_code = 2


class InputError(UserError):
    """An input file (video, object, placement, scene) cannot be used."""


class MissingDependencyError(UserError):
    """An optional dependency or model weight is missing; the message says what to install or where to point."""


def require(module: str, extra: str) -> object:
    """Import an optional module lazily, or raise MissingDependencyError naming the extra to install.

    Args:
        module: dotted module name, e.g. ``"diffusers"``.
        extra: the package extra that brings it, e.g. ``"diffusion"``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{module} is not installed ({err}); install it with: pip install 'insertanywhere[{extra}]'"
        ) from None
