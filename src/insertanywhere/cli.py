"""The ``insertanywhere`` command line (Typer).

Every command validates its inputs at the edge; a UserError becomes one line on
stderr and exit code 2 (``--verbose`` shows the traceback).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from insertanywhere.errors import UserError

app = typer.Typer(
    name="insertanywhere",
    help="Insert an object into a video so that it looks as if it had been filmed there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"verbose": False}


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details and tracebacks.")] = False,
) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the scene into.")],
    scene: Annotated[str, typer.Option("--scene", help="Scene family (see --list).")] = "static",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed renders the same scene.")] = 0,
    small: Annotated[bool, typer.Option("--small", help="About 160x96, 9 frames: renders in seconds.")] = False,
    frames: Annotated[int | None, typer.Option(help="Number of frames (default 49, or 9 with --small).")] = None,
    width: Annotated[int | None, typer.Option(help="Frame width (default 832, or 160 with --small).")] = None,
    height: Annotated[int | None, typer.Option(help="Frame height (default 480, or 96 with --small).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty folder not made by this tool.")] = False,
) -> None:
    """Render a synthetic ground-truth scene (background video, object, placement and GT)."""
    from insertanywhere.data.synthetic import render_scene_to_folder

    folder = render_scene_to_folder(
        out, family=scene, seed=seed, small=small, n_frames=frames, width=width, height=height, overwrite=overwrite
    )
    typer.echo(f"scene written to {folder}")


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app(standalone_mode=False)
    except UserError as err:
        if _state["verbose"]:
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted; cached stages are kept, rerun the same command to resume", err=True)
        sys.exit(130)
    except Exception as err:
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Exit):
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
