"""The ``insertanywhere`` command line (Typer).

Every command validates its inputs at the edge; a UserError becomes one line on
stderr and exit code 2 (``--verbose`` shows the traceback).
"""

from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from insertanywhere.errors import UserError
from insertanywhere.models.device import DEVICE_HELP, check_device_name, resolve_torch_device

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
    out: Annotated[Path | None, typer.Argument(help="Folder to write the scene into.")] = None,
    scene: Annotated[str, typer.Option("--scene", help="Scene family (see --list).")] = "static",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed renders the same scene.")] = 0,
    small: Annotated[bool, typer.Option("--small", help="About 160x96, 9 frames: renders in seconds.")] = False,
    frames: Annotated[int | None, typer.Option(help="Number of frames (default 49, or 9 with --small).")] = None,
    width: Annotated[int | None, typer.Option(help="Frame width (default 832, or 160 with --small).")] = None,
    height: Annotated[int | None, typer.Option(help="Frame height (default 480, or 96 with --small).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty folder not made by this tool.")] = False,
    list_families: Annotated[bool, typer.Option("--list", help="List the scene families and exit.")] = False,
) -> None:
    """Render a synthetic ground-truth scene (background video, object, placement and GT)."""
    from insertanywhere.data.synthetic import FAMILIES, render_scene_to_folder
    from insertanywhere.progress import rich_progress

    if list_families:
        for spec in FAMILIES.values():
            width_default, height_default, frames_default = spec.default_size
            typer.echo(f"{spec.name:<16} {width_default}x{height_default}x{frames_default}  {spec.description}")
        return
    if out is None:
        raise UserError("give the folder to write the scene into: insertanywhere synth OUT --scene FAMILY")
    with rich_progress() as progress:
        folder = render_scene_to_folder(
            out, family=scene, seed=seed, small=small, n_frames=frames, width=width, height=height,
            overwrite=overwrite, progress=progress,
        )  # fmt: skip
    typer.echo(f"scene written to {folder}")


@app.command()
def ui(
    host: Annotated[
        str, typer.Option(help="Address to listen on. 127.0.0.1 keeps the page on this machine (it has no login).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    workdir: Annotated[
        Path, typer.Option(help="Work folder for uploads and results (created; reused when the page made it).")
    ] = Path("insertanywhere-ui"),
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload, MiB.")] = 512.0,
    max_frames: Annotated[int, typer.Option(help="Longest accepted video, frames.")] = 600,
    depth: DepthOpt = "classical",
    flow: FlowOpt = "dis",
    dynamic: DynamicOpt = "residual",
    model_path: ModelPathOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Serve the placement page: open a video and an object, drag a box, preview, insert, download.

    The reconstruction options apply to every job the page runs (e.g. --depth depth-anything-v2 --model-path DIR).
    """
    from insertanywhere.errors import InputError
    from insertanywhere.ui.backend import DEFAULT_RECONSTRUCTION, PipelineBackend
    from insertanywhere.ui.server import serve
    from insertanywhere.ui.workspace import Limits

    if max_upload_mb <= 0 or max_frames <= 0:
        raise InputError("--max-upload-mb and --max-frames must be positive")
    reconstruction = {"depth": depth, "flow": flow, "dynamic": dynamic, "model_path": model_path, "device": device}
    if reconstruction != {**DEFAULT_RECONSTRUCTION, "model_path": None, "device": "auto"}:
        # Checked now, in one line, rather than on the page's first preview. (With the defaults the pipeline is
        # not imported here: the page starts, and says what is missing, even where it cannot be imported.)
        from insertanywhere.scene import ReconstructConfig

        ReconstructConfig(**reconstruction).validate()
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach this port can use the page", err=True)
    typer.echo(f"InsertAnywhere page on http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl+C stops it)")
    limits = Limits(max_upload_bytes=int(max_upload_mb * 2**20), max_frames=max_frames)
    serve(host=host, port=port, workdir=workdir, limits=limits, backend=PipelineBackend(reconstruction))


def _learned_device(device: str, wanted: bool) -> str:
    """The torch device for optional learned metrics or scorers: ``device`` resolved when they are wanted.

    A bad name is refused either way (one line, exit 2). Without torch the loaders report the missing extra
    themselves (a metric skipped, not an error), so that case returns "cpu".
    """
    from insertanywhere.errors import MissingDependencyError

    check_device_name(device)
    if not wanted:
        return "cpu"
    try:
        return resolve_torch_device(device)
    except MissingDependencyError:
        return "cpu"


def _parse_placement(placement_file: Path | None, box: str | None, frame: int, yaw: float):
    """The placement from --placement FILE or --box/--frame/--yaw (exactly one of the two)."""
    from insertanywhere.conventions import Placement, PlacementError
    from insertanywhere.errors import InputError
    from insertanywhere.io.atomic import read_json

    if (placement_file is None) == (box is None):
        raise InputError("give the placement either as --placement FILE or as --box x0,y0,x1,y1 (not both)")
    try:
        if placement_file is not None:
            return Placement.from_dict(read_json(placement_file))
        parts = box.replace(" ", "").split(",")
        if len(parts) != 4:
            raise PlacementError(f"--box {box!r}: give four numbers x0,y0,x1,y1")
        return Placement.from_dict({"frame": frame, "box": parts, "yaw_deg": yaw})
    except PlacementError as err:
        raise InputError(str(err)) from None


def _insert_config(placement: Path | None, box: str | None, frame: int, yaw: float, **kwargs):
    """The job's InsertConfig from CLI values: the placement from --placement or --box/--frame/--yaw, and the
    choices Typer leaves as strings checked."""
    from insertanywhere.errors import InputError
    from insertanywhere.pipeline import InsertConfig
    from insertanywhere.render.light import parse_light_angles

    choices = {"propagation": ("scene-flow", "camera-only"), "facing": ("fixed", "camera")}
    for name, allowed in choices.items():
        if name in kwargs and kwargs[name] not in allowed:
            raise InputError(f"--{name} {kwargs[name]!r}: choose {' or '.join(allowed)}")
    light = kwargs.pop("light", None)
    kwargs["light"] = parse_light_angles(light) if light else None
    return InsertConfig(placement=_parse_placement(placement, box, frame, yaw), **kwargs)


def _run_job(config):
    """Run the insert job with progress bars; print its warnings."""
    from insertanywhere.pipeline import run_insert
    from insertanywhere.progress import rich_progress

    with rich_progress() as progress:
        result = run_insert(config, progress)
    for warning in result.report.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    return result


VideoArg = Annotated[Path, typer.Argument(help="Input video (any format ffmpeg reads) or a folder of images.")]
ObjectOpt = Annotated[
    Path, typer.Option("--object", help="The object: an RGBA image (.png) or a mesh (.glb/.gltf/.obj).")
]
PlacementOpt = Annotated[Path | None, typer.Option("--placement", help='Placement JSON {"frame", "box", "yaw_deg"}.')]
BoxOpt = Annotated[str | None, typer.Option("--box", help="Placement box x0,y0,x1,y1 in pixels of --frame.")]
FrameOpt = Annotated[int, typer.Option("--frame", help="Frame the --box is drawn in.")]
YawOpt = Annotated[float, typer.Option("--yaw", help="Turn about the support's normal, degrees.")]
OutOpt = Annotated[Path, typer.Option("-o", "--out", help="Output folder (docs/design.md lists what it holds).")]
DepthOpt = Annotated[str, typer.Option("--depth", help="Depth backend: classical, depth-anything-v2, files:DIR.")]
FlowOpt = Annotated[str, typer.Option("--flow", help="Flow backend: dis or raft.")]
DynamicOpt = Annotated[
    str, typer.Option("--dynamic", help="Dynamic-region backend: residual, or sam2 (residual masks prompt SAM 2).")
]
ModelPathOpt = Annotated[
    str | None,
    typer.Option(
        "--model-path",
        help="Weights (local folder or cached hub id) of the learned reconstruction backend: "
        "--depth depth-anything-v2, --flow raft or --dynamic sam2.",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP + ".")]
FovOpt = Annotated[float | None, typer.Option("--fov", help="Horizontal field of view in degrees, if known.")]
PropagationOpt = Annotated[str, typer.Option(help="scene-flow (ride a moving support) or camera-only.")]
LightOpt = Annotated[
    str | None, typer.Option("--light", help="AZIMUTH,ELEVATION of the light, degrees (default: estimated).")
]
FacingOpt = Annotated[str, typer.Option(help="Card facing: fixed, or camera (keeps turning to the camera).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty folder not made by this tool.")]


@app.command()
def insert(
    video: VideoArg,
    object_path: ObjectOpt,
    out: OutOpt,
    placement: PlacementOpt = None,
    box: BoxOpt = None,
    frame: FrameOpt = 0,
    yaw: YawOpt = 0.0,
    synth: Annotated[
        str, typer.Option("--synth", help="composite (CPU, default) or vace (diffusion, GPU).")
    ] = "composite",
    depth: DepthOpt = "classical",
    flow: FlowOpt = "dis",
    dynamic: DynamicOpt = "residual",
    model_path: ModelPathOpt = None,
    device: DeviceOpt = "auto",
    fov: FovOpt = None,
    light: LightOpt = None,
    propagation: PropagationOpt = "scene-flow",
    facing: FacingOpt = "fixed",
    model: Annotated[str | None, typer.Option("--model", help="VACE: hub id or local folder.")] = None,
    lora: Annotated[
        Path | None, typer.Option("--lora", help="VACE: LoRA weights (diffusers/peft, Kohya or ComfyUI).")
    ] = None,
    lora_scale: Annotated[float, typer.Option("--lora-scale", help="VACE: LoRA strength.")] = 1.0,
    anchor_model: Annotated[
        str | None, typer.Option("--anchor-model", help="VACE: first-frame inpainting model.")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="VACE: text prompt (default from the object's name).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="VACE: random seed.")] = 0,
    steps: Annotated[int, typer.Option("--steps", help="VACE: denoising steps.")] = 30,
    allow_cpu: Annotated[bool, typer.Option("--allow-cpu", help="VACE: run on the CPU (very slow).")] = False,
    offload: Annotated[str, typer.Option("--offload", help="VACE: model, group or none.")] = "model",
    overwrite: OverwriteOpt = False,
) -> None:
    """Insert an object into a video: the whole output folder (video, masks, layers, shadow, scene, track, preview)."""

    vace_config = None
    if synth == "vace":
        from insertanywhere.synth.vace import VaceConfig, preflight_vace

        vace_fields = {
            "lora": None if lora is None else str(lora),
            "lora_scale": lora_scale,
            "anchor_model": anchor_model,
            "prompt": prompt,
            "seed": seed,
            "steps": steps,
            "allow_cpu": allow_cpu,
            "offload": offload,
            "object_name": object_path.stem,
            "device": None if device == "auto" else device,
        }
        if model is not None:
            vace_fields["model"] = model
        vace_config = VaceConfig(**vace_fields)
        preflight_vace(vace_config)  # refuse a CPU-only machine or a missing extra before the expensive stages
    config = _insert_config(
        placement,
        box,
        frame,
        yaw,
        video=video,
        object_path=object_path,
        out=out,
        synth=synth,
        depth=depth,
        flow=flow,
        dynamic=dynamic,
        model_path=model_path,
        device=device,
        fov_deg=fov,
        light=light,
        propagation=propagation,
        facing=facing,
        overwrite=overwrite,
        vace=vace_config,
    )
    result = _run_job(config)
    typer.echo(f"video:   {result.inserted_video}")
    typer.echo(f"preview: {result.preview_path}")
    typer.echo(f"report:  {result.report_path}")


@app.command()
def masks(
    video: VideoArg,
    object_path: ObjectOpt,
    out: OutOpt,
    placement: PlacementOpt = None,
    box: BoxOpt = None,
    frame: FrameOpt = 0,
    yaw: YawOpt = 0.0,
    depth: DepthOpt = "classical",
    flow: FlowOpt = "dis",
    dynamic: DynamicOpt = "residual",
    model_path: ModelPathOpt = None,
    device: DeviceOpt = "auto",
    fov: FovOpt = None,
    light: LightOpt = None,
    propagation: PropagationOpt = "scene-flow",
    facing: FacingOpt = "fixed",
    overwrite: OverwriteOpt = False,
) -> None:
    """The 4D-aware masks only: reconstruct (or reuse OUT/scene), place, propagate, occlude; writes masks/, layers/,
    shadow/, track.json, preview.png and report.json."""

    config = _insert_config(
        placement,
        box,
        frame,
        yaw,
        video=video,
        object_path=object_path,
        out=out,
        depth=depth,
        flow=flow,
        dynamic=dynamic,
        model_path=model_path,
        device=device,
        fov_deg=fov,
        light=light,
        propagation=propagation,
        facing=facing,
        overwrite=overwrite,
        write_video=False,
    )
    result = _run_job(config)
    typer.echo(f"masks:   {result.masks_dir}")
    typer.echo(f"track:   {result.track_path}")
    typer.echo(f"preview: {result.preview_path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("insertanywhere-demo"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Render a small synthetic scene (moving camera, an occluder, a moving tray) and insert an object into it."""
    import time

    from insertanywhere.data.synthetic import render_scene_to_folder
    from insertanywhere.io.atomic import prepare_output_dir
    from insertanywhere.pipeline import InsertConfig

    start = time.perf_counter()
    out = prepare_output_dir(out, overwrite)
    case = out / "input"
    typer.echo("rendering a synthetic scene ...")
    if not (case / "background.mp4").is_file():
        render_scene_to_folder(case, family="demo", seed=0, small=False, overwrite=True)
    placement = _parse_placement(case / "placement.json", None, 0, 0.0)
    config = InsertConfig(
        video=case / "background.mp4",
        object_path=case / "object.png",
        placement=placement,
        out=out / "result",
        overwrite=True,
    )
    typer.echo("inserting the object ...")
    result = _run_job(config)
    typer.echo(f"done in {time.perf_counter() - start:.1f} s")
    typer.echo(f"input video:     {config.video}")
    typer.echo(f"inserted video:  {result.inserted_video}")
    typer.echo(f"preview:         {result.preview_path}")
    typer.echo(f"ground truth:    {case / 'gt' / 'inserted.mp4'}")


@app.command("eval")
def eval_command(
    out: Annotated[Path, typer.Argument(help="Output folder of `insertanywhere insert` (inserted.mp4, masks/, ...).")],
    gt: Annotated[Path | None, typer.Option("--gt", help="Synthetic case folder with gt/ to compare with.")] = None,
    input_video: Annotated[
        Path | None, typer.Option("--input", help="The object-free input video (default: from report.json).")
    ] = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", help="Reference object image for CLIP-I/DINO-I (default: the input).")
    ] = None,
    clip: Annotated[
        str | None, typer.Option("--clip", help="CLIP hub id or local folder, e.g. openai/clip-vit-base-patch32.")
    ] = None,
    dino: Annotated[
        str | None, typer.Option("--dino", help="DINO hub id or local folder, e.g. facebook/dinov2-base.")
    ] = None,
    no_learned: Annotated[bool, typer.Option("--no-learned", help="Skip the CLIP/DINO metrics.")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Score an output folder (subject consistency, VBench-style quality, GT metrics); writes OUT/eval.json."""
    import json

    from insertanywhere.eval.evaluate import EvalInputs, evaluate_output, load_eval_models
    from insertanywhere.progress import rich_progress

    device = _learned_device(device, wanted=(clip or dino) is not None and not no_learned)
    models = load_eval_models(clip, dino, learned=not no_learned, device=device)
    with rich_progress() as progress:
        result = evaluate_output(out, EvalInputs(gt=gt, input_video=input_video, reference=reference), models, progress)
    typer.echo(json.dumps(result, indent=1))


@app.command()
def bench(
    cases: Annotated[Path, typer.Argument(help="Folder of case subfolders (synthetic cases and/or real clip cases).")],
    report: Annotated[Path, typer.Option("-o", "--report", help="Report folder (report.md, report.json, plots/).")],
    build: Annotated[
        bool, typer.Option("--build", help="First fill CASES from ../shared/data and the synthetic families.")
    ] = False,
    data_root: Annotated[Path | None, typer.Option(help="Shared data folder for --build.")] = None,
    real: Annotated[bool, typer.Option("--real/--no-real", help="Include the real clips in --build.")] = True,
    families: Annotated[
        str, typer.Option(help="Comma-separated synthetic families for --build ('' for none).")
    ] = "static,pan,orbit,moving_occluder,moving_support,static_occluder",
    synth: Annotated[str, typer.Option(help="Synthesis backend: composite or vace.")] = "composite",
    clip: Annotated[str | None, typer.Option("--clip", help="CLIP hub id or local folder.")] = None,
    dino: Annotated[str | None, typer.Option("--dino", help="DINO hub id or local folder.")] = None,
    no_learned: Annotated[bool, typer.Option("--no-learned", help="Skip the CLIP/DINO metrics.")] = False,
    reuse: Annotated[bool, typer.Option(help="Reuse existing outputs in REPORT/outputs (rerun metrics only).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty report folder not made by this tool.")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Run the insert pipeline and every metric over a folder of cases; writes REPORT/report.md, report.json, plots."""
    from insertanywhere.errors import InputError
    from insertanywhere.eval.build_cases import build_cases_folder
    from insertanywhere.eval.evaluate import load_eval_models
    from insertanywhere.eval.runner import PipelineInsert, run_bench
    from insertanywhere.progress import rich_progress

    if synth not in ("composite", "vace"):
        raise InputError(f"--synth {synth!r}: choose composite or vace")
    if build:
        chosen = tuple(f for f in families.split(",") if f.strip())
        build_cases_folder(cases, data_root=data_root, families=chosen, real=real)
    device = _learned_device(device, wanted=(clip or dino) is not None and not no_learned)
    models = load_eval_models(clip, dino, learned=not no_learned, device=device)
    with rich_progress() as progress:
        result = run_bench(cases, report, PipelineInsert(synth=synth), models, overwrite, reuse, progress)
    typer.echo(f"report: {Path(report) / 'report.md'}")
    failed = [row["name"] for row in result["cases"] if "error" in row]
    if failed:
        typer.echo(f"failed cases: {', '.join(failed)} (see report.md)", err=True)
        raise typer.Exit(1)


dataset_app = typer.Typer(help="Build ROSE++-style insertion datasets for LoRA training.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("build")
def dataset_build(
    src: Annotated[
        Path, typer.Argument(help="ROSE root/environment folder (EnvN/EnvN_Edited, ...) and/or synthetic scenes.")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Dataset folder to write (manifest.jsonl, samples/).")],
    dino: Annotated[
        str | None,
        typer.Option("--dino", help="DINOv2 hub id or local folder for reference scoring (default: classical score)."),
    ] = None,
    generator: Annotated[
        list[str] | None, typer.Option("--generator", help="Registered reference-image generator (repeatable).")
    ] = None,
    max_frames: Annotated[int | None, typer.Option(help="Keep at most this many frames per clip.")] = None,
    crops: Annotated[int, typer.Option(help="Object crops per sample (reference queries and candidates).")] = 4,
    crop_references: Annotated[
        bool, typer.Option("--crop-references/--no-crop-references", help="Let the object crops be references.")
    ] = True,
    device: DeviceOpt = "auto",
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty folder not made by this tool.")] = False,
) -> None:
    """Turn object-removal triplets into insertion samples (source, target, mask, optics mask, reference)."""
    from insertanywhere.data.dataset_reference import make_embedder, make_reference_generator
    from insertanywhere.data.rose import DatasetBuildConfig, build_dataset
    from insertanywhere.progress import rich_progress

    device = _learned_device(device, wanted=dino is not None)
    embedder = make_embedder("dinov2", dino, device) if dino else make_embedder("classical")
    generators = [make_reference_generator(name) for name in generator or []]
    config = DatasetBuildConfig(max_frames=max_frames, n_crops=crops, crop_candidates=crop_references)
    with rich_progress() as progress:
        report = build_dataset(src, out, embedder, config, generators, overwrite=overwrite, progress=progress)
    for broken in report.broken:
        typer.echo(f"broken: {broken['id']}: {broken['reason']}", err=True)
    typer.echo(
        f"{len(report.samples)} samples ({report.reused} reused), {len(report.broken)} broken, "
        f"{report.seconds:.1f} s: {Path(out) / 'manifest.jsonl'}"
    )
    if not report.samples:
        raise typer.Exit(1)


@app.command("train-lora")
def train_lora_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder made by `insertanywhere dataset build`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Run folder (checkpoints, logs, lora/).")],
    model: Annotated[
        str | None, typer.Option(help="WanVACEPipeline hub id or local folder, e.g. Wan-AI/Wan2.1-VACE-14B-diffusers.")
    ] = None,
    tiny: Annotated[bool, typer.Option("--tiny", help="Train the tiny random model (tests and smoke runs).")] = False,
    rank: Annotated[int, typer.Option(help="LoRA rank (paper: 128).")] = 128,
    alpha: Annotated[float | None, typer.Option(help="LoRA alpha (default: the rank).")] = None,
    target_modules: Annotated[
        str, typer.Option(help="Comma-separated module-name suffixes that get a LoRA.")
    ] = "to_q,to_k,to_v,to_out.0,ffn.net.0.proj,ffn.net.2,proj_out",
    lr: Annotated[float, typer.Option("--lr", help="AdamW learning rate (paper: 1e-4).")] = 1e-4,
    steps: Annotated[int, typer.Option(help="Optimizer steps in total.")] = 1000,
    grad_accum: Annotated[int, typer.Option(help="Clips per optimizer step.")] = 1,
    warmup: Annotated[int, typer.Option(help="Linear learning-rate warmup steps.")] = 0,
    frames: Annotated[int | None, typer.Option(help="Frames per clip, 4k+1 (default 81, 9 with --tiny).")] = None,
    height: Annotated[int | None, typer.Option(help="Clip height, 16k (default 480, 32 with --tiny).")] = None,
    width: Annotated[int | None, typer.Option(help="Clip width, 16k (default 832, 32 with --tiny).")] = None,
    shift: Annotated[float | None, typer.Option(help="Flow-matching shift (default 3 below 720p, else 5).")] = None,
    align_weight: Annotated[
        float, typer.Option("--align-weight", help="Weight of the optics-aware alignment loss (0 = off).")
    ] = 0.0,
    align_blocks: Annotated[
        str | None, typer.Option("--align-blocks", help="Transformer blocks to align, e.g. 10,20 (default: middle).")
    ] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Save a checkpoint every this many steps.")] = 250,
    eval_every: Annotated[int, typer.Option(help="Fixed-probe eval every this many steps (0: start and end).")] = 0,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from the latest checkpoint.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of sample order, sigmas and noise.")] = 0,
    gradient_checkpointing: Annotated[
        bool, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations.")
    ] = True,
    mixed_precision: Annotated[str, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), bf16, fp16 or no.")] = "auto",
    device: DeviceOpt = "auto",
    prompt: Annotated[str, typer.Option(help="Prompt for samples without one.")] = "",
    cache_dir: Annotated[Path | None, typer.Option(help="Latent cache folder (default RUN/latent_cache).")] = None,
    fill: Annotated[
        str, typer.Option(help="Masked region of the input video: paste (object, no shadow), gray or source.")
    ] = "paste",
    mask_band: Annotated[int, typer.Option(help="Grow the conditioning mask by this many pixels.")] = 0,
    first_frame_known: Annotated[
        bool, typer.Option("--first-frame-known/--no-first-frame-known", help="Give frame 0 whole (the anchor).")
    ] = True,
) -> None:
    """LoRA-fine-tune Wan2.1-VACE on an insertion dataset (rectified flow, optional optics-aware alignment)."""
    from insertanywhere.progress import rich_progress
    from insertanywhere.train.latent_cache import ClipGeometry, ConditioningConfig
    from insertanywhere.train.lora import TINY_GEOMETRY, LoraTrainConfig, train_lora

    base = TINY_GEOMETRY if tiny else ClipGeometry()
    geometry = ClipGeometry(frames or base.num_frames, height or base.height, width or base.width)
    config = LoraTrainConfig(
        dataset=dataset,
        out=out,
        model=model,
        tiny=tiny,
        rank=rank,
        alpha=alpha,
        target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
        learning_rate=lr,
        warmup_steps=warmup,
        max_steps=steps,
        grad_accum=grad_accum,
        geometry=geometry,
        shift=shift,
        align_weight=align_weight,
        align_blocks=align_blocks,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        resume=resume,
        seed=seed,
        gradient_checkpointing=gradient_checkpointing,
        mixed_precision=mixed_precision,
        device=None if check_device_name(device) == "auto" else resolve_torch_device(device, extra="diffusion"),
        prompt=prompt,
        cache_dir=cache_dir,
        conditioning=ConditioningConfig(fill=fill, mask_band_px=mask_band, first_frame_known=first_frame_known),
    )
    with rich_progress() as progress:
        result = train_lora(config, progress)
    if result.eval_losses:
        first, last = result.eval_losses[0][1], result.eval_losses[-1][1]
        typer.echo(f"eval loss {first:.4f} -> {last:.4f} over steps {result.start_step}..{result.steps}")
    typer.echo(f"LoRA: {result.lora_dir / 'pytorch_lora_weights.safetensors'}")


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(usage errors, exits, aborts) of Typer's vendored Click and of Click itself.

    Typer >= 0.2x vendors Click as ``typer._click``: ``click.exceptions.UsageError`` does not match its errors.
    """
    import importlib

    usage: list[type] = []
    exits: list[type] = [typer.Exit]
    aborts: list[type] = [typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        usage.append(module.ClickException)
        for attribute, bucket in (("Exit", exits), ("Abort", aborts)):
            if hasattr(module, attribute):
                bucket.append(getattr(module, attribute))
    return tuple(usage), tuple(exits), tuple(aborts)


def _one_line(err: BaseException) -> str:
    """A user error's message on one line (a stray newline would split the CLI's one-line contract)."""
    return " ".join(part.strip() for part in str(err).splitlines() if part.strip()) or err.__class__.__name__


@app.command()
def reconstruct(
    video: Annotated[Path, typer.Argument(help="Input video file or folder of frames.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Scene folder to write (reused when complete).")],
    fov: Annotated[float | None, typer.Option("--fov", help="Horizontal field of view in degrees.")] = None,
    K: Annotated[str | None, typer.Option("--K", help="Intrinsics fx,fy,cx,cy in pixels.")] = None,
    flow: Annotated[str, typer.Option(help="Flow backend: dis | raft.")] = "dis",
    depth: Annotated[str, typer.Option(help="Depth backend: classical | depth-anything-v2 | files:DIR.")] = "classical",
    dynamic: Annotated[
        str, typer.Option(help="Dynamic-region backend: residual | sam2 (residual masks prompt SAM 2; --model-path).")
    ] = "residual",
    model_path: Annotated[
        str | None, typer.Option(help="Weights folder (or cached hub id) of the learned backend.")
    ] = None,
    device: DeviceOpt = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty folder not made by this tool.")] = False,
) -> None:
    """Reconstruct the 4D scene of a video: cameras, depth, dynamic masks, flow, static points."""
    from insertanywhere.errors import InputError
    from insertanywhere.io.atomic import prepare_output_dir
    from insertanywhere.progress import rich_progress
    from insertanywhere.scene import ReconstructConfig, reconstruct_to_folder

    intrinsics = None
    if K is not None:
        try:
            intrinsics = tuple(float(v) for v in K.split(","))
        except ValueError:
            raise InputError(f"--K {K}: give four numbers fx,fy,cx,cy") from None
        if len(intrinsics) != 4:
            raise InputError(f"--K {K}: give four numbers fx,fy,cx,cy")
    if not video.exists():
        raise InputError(f"{video}: no such video file or image folder")
    config = ReconstructConfig(
        flow=flow, depth=depth, dynamic=dynamic, fov_deg=fov, K=intrinsics, model_path=model_path, device=device
    ).validate()
    folder = prepare_output_dir(out, overwrite=overwrite, inputs=(video,))
    with rich_progress() as progress:
        scene = reconstruct_to_folder(video, folder, config, progress)
    seconds = scene.meta.extra.get("seconds", {})
    typer.echo(
        f"scene written to {folder}: {scene.meta.n_frames} frames, camera {scene.meta.camera_model}, "
        f"{scene.meta.extra.get('n_points', 0)} static points, {seconds.get('total', 0.0):.1f} s"
    )


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2.

    ``--verbose`` prints the traceback before that line (same exit code). Typer usage errors
    print Typer's usage message and exit 2; ``typer.Exit(n)`` exits n.
    """
    try:
        returned = app(standalone_mode=False)
    except UserError as err:
        if _state["verbose"]:
            import traceback

            traceback.print_exc()
        typer.echo(f"error: {_one_line(err)}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted; cached stages are kept, rerun the same command to resume", err=True)
        sys.exit(130)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # A full disk is not a bug to trace: say where, and that finished stages are kept.
        where = f" writing {err.filename}" if err.filename else ""
        typer.echo(f"error: the disk is full{where}; free some space or write elsewhere (-o), then rerun", err=True)
        sys.exit(1)
    except Exception as err:
        usage_errors, exits, aborts = _click_exception_types()
        if isinstance(err, aborts):
            typer.echo("aborted", err=True)
            sys.exit(130)
        if isinstance(err, usage_errors):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, exits):
            sys.exit(err.exit_code)
        raise
    # Without standalone mode Click returns typer.Exit's code instead of exiting (commands return None);
    # Typer turns Ctrl-C inside a command into Exit(130).
    if isinstance(returned, int) and not isinstance(returned, bool) and returned != 0:
        if returned == 130:
            typer.echo("interrupted; cached stages are kept, rerun the same command to resume", err=True)
        sys.exit(returned)


if __name__ == "__main__":
    main()
