"""Bundle adjustment on scipy.optimize.least_squares with a sparse Jacobian (Triggs et al., 2000).

Parameters: per camera a rotation vector and translation of ``cam_from_world``, per point its
world position, and optionally one shared focal length (log-parametrised, principal point fixed).
Residuals are reprojection errors in pixels under a robust (Huber/Cauchy) loss; the Jacobian is
finite-differenced with a sparsity pattern (one camera block and one point block per residual),
solved by the trust-region reflective method with LSMR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix, csr_matrix
from scipy.spatial.transform import Rotation


def rotvec_to_matrix(rotvecs: np.ndarray) -> np.ndarray:
    """(N, 3) axis-angle vectors (radians) -> (N, 3, 3) rotation matrices (Rodrigues)."""
    return Rotation.from_rotvec(rotvecs).as_matrix()


def poses_to_params(cam_from_world: np.ndarray) -> np.ndarray:
    """(F, 4, 4) cam_from_world -> (F, 6) ``[rotvec, translation]``."""
    rotvecs = Rotation.from_matrix(cam_from_world[:, :3, :3]).as_rotvec()
    return np.concatenate([rotvecs, cam_from_world[:, :3, 3]], axis=1)


def params_to_poses(params: np.ndarray) -> np.ndarray:
    """(F, 6) ``[rotvec, translation]`` -> (F, 4, 4) cam_from_world."""
    poses = np.tile(np.eye(4), (len(params), 1, 1))
    poses[:, :3, :3] = rotvec_to_matrix(params[:, :3])
    poses[:, :3, 3] = params[:, 3:]
    return poses


@dataclass
class Observations:
    """2D observations of 3D points.

    Attributes:
        frame: (M,) int index of the observing camera.
        point: (M,) int index of the observed point.
        xy: (M, 2) float64 pixel positions (pixel-corner origin).
        weight: (M,) float64 residual weights (e.g. track quality), or None for ones.
    """

    frame: np.ndarray
    point: np.ndarray
    xy: np.ndarray
    weight: np.ndarray | None = None


@dataclass
class BundleResult:
    """Refined cameras and points.

    Attributes:
        cam_from_world: (F, 4, 4) float64.
        points_world: (P, 3) float64.
        K: (3, 3) float64 (focal refined when asked).
        residuals_px: (M,) float64 reprojection error norms per observation after refinement.
        cost: final robust cost.
    """

    cam_from_world: np.ndarray
    points_world: np.ndarray
    K: np.ndarray
    residuals_px: np.ndarray
    cost: float


def project(
    cam_from_world: np.ndarray, K: np.ndarray, points_world: np.ndarray, frame: np.ndarray, point: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project points for observations.

    Args:
        cam_from_world: (F, 4, 4); K: (3, 3); points_world: (P, 3).
        frame, point: (M,) int indices.

    Returns:
        (M, 2) pixels (pixel-corner origin) and (M,) z-depth in the cameras.
    """
    rotation = cam_from_world[frame, :3, :3]
    points_cam = np.matmul(rotation, points_world[point][:, :, None])[:, :, 0] + cam_from_world[frame, :3, 3]
    z = points_cam[:, 2]
    safe_z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    x = K[0, 0] * points_cam[:, 0] / safe_z + K[0, 2]
    y = K[1, 1] * points_cam[:, 1] / safe_z + K[1, 2]
    return np.stack([x, y], axis=1), z


def _skew(vectors: np.ndarray) -> np.ndarray:
    """(M, 3) vectors -> (M, 3, 3) cross-product matrices [v]_x."""
    out = np.zeros((len(vectors), 3, 3))
    out[:, 0, 1], out[:, 0, 2] = -vectors[:, 2], vectors[:, 1]
    out[:, 1, 0], out[:, 1, 2] = vectors[:, 2], -vectors[:, 0]
    out[:, 2, 0], out[:, 2, 1] = -vectors[:, 1], vectors[:, 0]
    return out


def _left_jacobian(rotvecs: np.ndarray) -> np.ndarray:
    """(M, 3) rotation vectors -> (M, 3, 3) left Jacobians of SO(3): d exp(w) / dw = [.]_x J_l(w)
    (Barfoot, State Estimation for Robotics, eq. 7.77a)."""
    theta = np.linalg.norm(rotvecs, axis=1)
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 0.5, (1.0 - np.cos(safe)) / safe**2)
    b = np.where(small, 1.0 / 6.0, (safe - np.sin(safe)) / safe**3)
    skew = _skew(rotvecs)
    return np.eye(3)[None] + a[:, None, None] * skew + b[:, None, None] * skew @ skew


def bundle_adjust(
    cam_from_world: np.ndarray,
    points_world: np.ndarray,
    K: np.ndarray,
    observations: Observations,
    fixed_frames: tuple[int, ...] = (0,),
    optimize_points: bool = True,
    optimize_focal: bool = False,
    focal_prior_sigma: float = 0.5,
    loss: str = "huber",
    loss_scale_px: float = 1.0,
    max_nfev: int = 30,
    optimize_translation: bool = True,
) -> BundleResult:
    """Refine poses (and points, and the focal) by minimising robust reprojection error.

    Args:
        cam_from_world: (F, 4, 4) float64 initial poses.
        points_world: (P, 3) float64 initial points.
        K: (3, 3) float64 intrinsics, shared by all cameras.
        observations: the 2D measurements.
        fixed_frames: cameras held fixed (gauge: the first camera is the world frame).
        optimize_points: refine points too (False = motion-only refinement).
        optimize_focal: refine the shared focal length fx = fy * (fy/fx) (aspect kept).
        focal_prior_sigma: std of a prior on log(focal) around its initial value (weak self-calibration).
        loss, loss_scale_px: scipy robust loss and its scale in pixels.
        max_nfev: cap on function evaluations.
        optimize_translation: False keeps every translation (pure-rotation model: zero translation).
    """
    n_frames = len(cam_from_world)
    n_points = len(points_world)
    free_frames = np.array([f for f in range(n_frames) if f not in set(fixed_frames)], np.int64)
    frame_to_slot = np.full(n_frames, -1, np.int64)
    frame_to_slot[free_frames] = np.arange(len(free_frames))
    base_params = poses_to_params(cam_from_world)
    weights = np.ones(len(observations.frame)) if observations.weight is None else observations.weight
    sqrt_w = np.sqrt(weights)[:, None]
    n_pose = 6 if optimize_translation else 3
    n_cam_params = n_pose * len(free_frames)
    n_point_params = 3 * n_points if optimize_points else 0
    focal0 = K[0, 0]
    aspect = K[1, 1] / K[0, 0]

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        params = base_params.copy()
        params[free_frames, :n_pose] = x[:n_cam_params].reshape(-1, n_pose)
        points = x[n_cam_params : n_cam_params + n_point_params].reshape(-1, 3) if optimize_points else points_world
        K_now = K.copy()
        if optimize_focal:
            focal = focal0 * np.exp(x[-1])
            K_now[0, 0], K_now[1, 1] = focal, focal * aspect
        return params_to_poses(params), points, K_now

    n_obs = len(observations.frame)
    camera_slot = frame_to_slot[observations.frame]
    free = camera_slot >= 0
    obs_index = np.arange(n_obs)

    def residuals(x: np.ndarray) -> np.ndarray:
        poses, points, K_now = unpack(x)
        pixels, _ = project(poses, K_now, points, observations.frame, observations.point)
        reprojection = ((pixels - observations.xy) * sqrt_w).ravel()
        if optimize_focal:
            return np.concatenate([reprojection, [x[-1] / focal_prior_sigma * loss_scale_px]])
        return reprojection

    def jacobian(x: np.ndarray) -> csr_matrix:
        # Analytic derivatives of the pinhole projection (Hartley & Zisserman, 2004, A6.3):
        # d(u, v)/d(Xc) = [[fx/Z, 0, -fx X/Z^2], [0, fy/Z, -fy Y/Z^2]]; Xc = R(w) X + t with
        # dXc/dw = -[R X]_x J_l(w) (left Jacobian of SO(3)), dXc/dt = I, dXc/dX = R.
        params = base_params.copy()
        params[free_frames, :n_pose] = x[:n_cam_params].reshape(-1, n_pose)
        poses, points, K_now = unpack(x)
        rotation = poses[observations.frame, :3, :3]
        rotated = np.matmul(rotation, points[observations.point][:, :, None])[:, :, 0]
        cam = rotated + poses[observations.frame, :3, 3]
        inv_z = 1.0 / np.where(np.abs(cam[:, 2]) < 1e-9, 1e-9, cam[:, 2])
        d_proj = np.zeros((n_obs, 2, 3))
        d_proj[:, 0, 0] = K_now[0, 0] * inv_z
        d_proj[:, 0, 2] = -K_now[0, 0] * cam[:, 0] * inv_z**2
        d_proj[:, 1, 1] = K_now[1, 1] * inv_z
        d_proj[:, 1, 2] = -K_now[1, 1] * cam[:, 1] * inv_z**2
        d_proj *= sqrt_w[:, :, None]
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        values: list[np.ndarray] = []

        def add(block: np.ndarray, mask: np.ndarray, first_col: np.ndarray) -> None:
            # block: (m, 2, k) derivatives of both residual rows w.r.t. k consecutive columns.
            k = block.shape[2]
            for axis in range(2):
                for j in range(k):
                    rows.append(2 * obs_index[mask] + axis)
                    cols.append(first_col + j)
                    values.append(block[:, axis, j])

        if free.any():
            left_jacobians = _left_jacobian(params[:, :3])  # one per camera, indexed per observation
            d_rot = -np.matmul(_skew(rotated[free]), left_jacobians[observations.frame[free]])
            add(np.matmul(d_proj[free], d_rot), free, n_pose * camera_slot[free])
            if n_pose == 6:
                add(d_proj[free], free, n_pose * camera_slot[free] + 3)
        if optimize_points:
            add(np.matmul(d_proj, rotation), np.ones(n_obs, bool), n_cam_params + 3 * observations.point)
        n_rows = 2 * n_obs + int(optimize_focal)
        if optimize_focal:
            pixel_offset = (cam[:, :2] * inv_z[:, None]) * np.array([K_now[0, 0], K_now[1, 1]]) * sqrt_w
            rows.append(np.arange(2 * n_obs))
            cols.append(np.full(2 * n_obs, n_params - 1))
            values.append(pixel_offset.ravel())
            rows.append(np.array([2 * n_obs]))
            cols.append(np.array([n_params - 1]))
            values.append(np.array([loss_scale_px / focal_prior_sigma]))
        return coo_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_params)
        ).tocsr()

    x0_parts = [base_params[free_frames, :n_pose].ravel()]
    if optimize_points:
        x0_parts.append(points_world.ravel())
    if optimize_focal:
        x0_parts.append(np.zeros(1))
    x0 = np.concatenate(x0_parts)
    n_params = len(x0)

    result = least_squares(
        residuals,
        x0,
        jac=jacobian,
        method="trf",
        tr_solver="lsmr",
        loss=loss,
        f_scale=loss_scale_px,
        x_scale="jac",
        max_nfev=max_nfev,
        xtol=1e-10,
        ftol=1e-9,
    )
    poses, points, K_now = unpack(result.x)
    pixels, _ = project(poses, K_now, points, observations.frame, observations.point)
    errors = np.linalg.norm(pixels - observations.xy, axis=1)
    return BundleResult(poses, np.asarray(points, np.float64), K_now, errors, float(result.cost))


def rotation_adjust(
    world_from_cam_rotations: np.ndarray,
    bearings_world: np.ndarray,
    K: np.ndarray,
    observations: Observations,
    optimize_focal: bool = True,
    focal_prior_sigma: float = 0.5,
    loss_scale_px: float = 1.0,
    max_nfev: int = 30,
    loss: str = "cauchy",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bundle adjustment for a purely rotating camera: points at infinity (bearings), no translation.

    Args:
        world_from_cam_rotations: (F, 3, 3) initial rotations; the result has frame 0 = identity.
        bearings_world: (P, 3) initial unit directions in the world frame.
        K: (3, 3) intrinsics (focal refined when ``optimize_focal``).
        observations: the 2D measurements.

    Returns:
        cam_from_world rotations (F, 3, 3), bearings (P, 3), K (3, 3), residual norms (M,) pixels.
    """
    cam_from_world = np.tile(np.eye(4), (len(world_from_cam_rotations), 1, 1))
    cam_from_world[:, :3, :3] = np.transpose(world_from_cam_rotations, (0, 2, 1))
    # A point at distance 1 along each bearing with zero translation projects exactly like the bearing.
    # No camera is held: with frame 0 fixed, model error (lens distortion, rolling shutter, a little
    # translation) piled up between frame 0 and the rest (bear: the first step came out 0.6 degrees for 0.2).
    # The free global rotation is left to the damping, then frame 0 is made the world frame again.
    result = bundle_adjust(
        cam_from_world,
        bearings_world / np.linalg.norm(bearings_world, axis=1, keepdims=True),
        K,
        observations,
        fixed_frames=(),
        optimize_focal=optimize_focal,
        focal_prior_sigma=focal_prior_sigma,
        loss_scale_px=loss_scale_px,
        max_nfev=max_nfev,
        optimize_translation=False,
        loss=loss,
    )
    world_from_first = result.cam_from_world[0, :3, :3].T
    rotations = np.matmul(result.cam_from_world[:, :3, :3], world_from_first)
    bearings = result.points_world @ world_from_first
    return rotations, bearings, result.K, result.residuals_px


def colmap_bundle_adjust(
    cam_from_world: np.ndarray,
    points_world: np.ndarray,
    K: np.ndarray,
    observations: Observations,
    image_size: tuple[int, int],
    fixed_frames: tuple[int, ...] = (0,),
    optimize_focal: bool = False,
    loss: str = "cauchy",
    loss_scale_px: float = 1.0,
    max_iterations: int = 50,
    num_threads: int = 2,
    function_tolerance: float = 1e-3,
) -> BundleResult:
    """The same problem as ``bundle_adjust``, solved by pycolmap's Ceres bundle adjuster (Schur
    complement, analytic pinhole Jacobians): a ``pycolmap.Reconstruction`` is built from our poses,
    points and observations, adjusted, and read back.

    Differences from ``bundle_adjust``: per-observation weights are ignored (Ceres' robust loss does
    the down-weighting), and a refined focal has no prior (COLMAP refines it freely; fx and fy stay
    tied when they are equal: SIMPLE_PINHOLE, else PINHOLE). Cameras in ``fixed_frames`` are held
    constant (gauge); the remaining scale freedom is left to Levenberg-Marquardt's damping.

    Args:
        cam_from_world: (F, 4, 4); points_world: (P, 3); K: (3, 3) shared intrinsics.
        observations: 2D measurements (camera index into cam_from_world, point index into points_world).
        image_size: (width, height) in pixels.
        loss: "cauchy" | "huber" | "soft_l1" | "linear"; loss_scale_px: its scale in pixels.
        function_tolerance: Ceres stops when an iteration lowers the cost by less than this fraction (COLMAP's
            default 0 runs every iteration; 1e-3 moved 7-Scenes camera centres by < 0.1 % of the trajectory
            against 50 full iterations, at a third of the time).
    """
    import pycolmap

    n_frames, n_points = len(cam_from_world), len(points_world)
    width, height = image_size
    simple = abs(K[0, 0] - K[1, 1]) < 1e-9 * K[0, 0]
    params = [K[0, 0], K[0, 2], K[1, 2]] if simple else [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]
    reconstruction = pycolmap.Reconstruction()
    camera = pycolmap.Camera(
        model="SIMPLE_PINHOLE" if simple else "PINHOLE", width=int(width), height=int(height),
        params=[float(v) for v in params], camera_id=1,
    )  # fmt: skip
    reconstruction.add_camera_with_trivial_rig(camera)
    frame, point = observations.frame.astype(np.int64), observations.point.astype(np.int64)
    # Keypoint index of each observation inside its image (observations grouped by frame, stable).
    by_frame = np.argsort(frame, kind="stable")
    frame_starts = np.searchsorted(frame[by_frame], np.arange(n_frames + 1))
    keypoint_index = np.empty(len(frame), np.int64)
    for f in range(n_frames):
        rows = by_frame[frame_starts[f] : frame_starts[f + 1]]
        keypoint_index[rows] = np.arange(len(rows))
        image = pycolmap.Image(
            name=f"{f:05d}", keypoints=np.ascontiguousarray(observations.xy[rows], np.float64), camera_id=1,
            image_id=f + 1,
        )  # fmt: skip
        reconstruction.add_image_with_trivial_frame(image, pycolmap.Rigid3d(np.asarray(cam_from_world[f, :3, :4])))
    by_point = np.argsort(point, kind="stable")
    point_starts = np.searchsorted(point[by_point], np.arange(n_points + 1))
    image_ids = (frame + 1).tolist()
    keypoints = keypoint_index.tolist()
    point_ids = np.full(n_points, -1, np.int64)
    element = pycolmap.TrackElement
    for p in range(n_points):
        rows = by_point[point_starts[p] : point_starts[p + 1]].tolist()
        if len(rows) < 2:
            continue
        track = pycolmap.Track([element(image_ids[j], keypoints[j]) for j in rows])
        point_ids[p] = reconstruction.add_point3D(np.asarray(points_world[p], np.float64), track)
    options = pycolmap.BundleAdjustmentOptions()
    options.print_summary = False
    options.refine_focal_length = optimize_focal
    options.refine_principal_point = False
    options.refine_extra_params = False
    losses = {
        "cauchy": pycolmap.LossFunctionType.CAUCHY,
        "huber": pycolmap.LossFunctionType.HUBER,
        "soft_l1": pycolmap.LossFunctionType.SOFT_L1,
        "linear": pycolmap.LossFunctionType.TRIVIAL,
    }
    options.ceres.loss_function_type = losses[loss]
    options.ceres.loss_function_scale = float(loss_scale_px)
    options.ceres.solver_options.max_num_iterations = int(max_iterations)
    options.ceres.solver_options.num_threads = int(num_threads)
    options.ceres.solver_options.function_tolerance = float(function_tolerance)
    config = pycolmap.BundleAdjustmentConfig()
    for f in range(n_frames):
        config.add_image(f + 1)
    for f in fixed_frames:
        config.set_constant_rig_from_world_pose(f + 1)
    if not optimize_focal:
        config.set_constant_cam_intrinsics(1)
    pycolmap.create_default_bundle_adjuster(options, config, reconstruction).solve()
    poses = np.tile(np.eye(4), (n_frames, 1, 1))
    for f in range(n_frames):
        pose = reconstruction.image(f + 1).cam_from_world()
        poses[f, :3, :4] = pose.matrix()
    points = np.asarray(points_world, np.float64).copy()
    for p in np.nonzero(point_ids >= 0)[0]:
        points[p] = reconstruction.point3D(int(point_ids[p])).xyz
    K_now = K.copy()
    refined = reconstruction.camera(1).params
    if simple:
        K_now[0, 0] = K_now[1, 1] = refined[0]
    else:
        K_now[0, 0], K_now[1, 1] = refined[0], refined[1]
    pixels, _ = project(poses, K_now, points, frame, point)
    errors = np.linalg.norm(pixels - observations.xy, axis=1)
    return BundleResult(poses, points, K_now, errors, robust_cost(errors, loss, loss_scale_px))


def robust_cost(errors_px: np.ndarray, loss: str, scale_px: float) -> float:
    """Ceres' objective ``0.5 sum rho(e^2)`` of (M,) reprojection error norms in pixels under ``loss``
    ("cauchy" | "huber" | "soft_l1" | "linear") at ``scale_px``: what the adjustment minimised."""
    squared = np.asarray(errors_px, np.float64) ** 2
    b2 = scale_px**2
    if loss == "cauchy":
        rho = b2 * np.log1p(squared / b2)
    elif loss == "huber":
        rho = np.where(squared <= b2, squared, 2.0 * scale_px * np.sqrt(squared) - b2)
    elif loss == "soft_l1":
        rho = 2.0 * b2 * (np.sqrt(1.0 + squared / b2) - 1.0)
    else:
        rho = squared
    return 0.5 * float(np.sum(rho))
