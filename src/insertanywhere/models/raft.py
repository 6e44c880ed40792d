"""RAFT optical flow (Teed & Deng, ECCV 2020), written compactly from the paper, on plain torch.

torchvision cannot be imported beside this project's torch build, so its RAFT is not used; this module
names its parameters the way torchvision's ``raft_large`` / ``raft_small`` state dicts do, so their
released ``.pth`` weights load unchanged. Architecture (paper sec. 3):

* feature encoder (instance norm) and context encoder (batch norm / none), both 1/8 resolution;
* all-pairs correlation volume ``C = <f1, f2> / sqrt(D)`` pooled into a 4-level pyramid, indexed by a
  (2r+1)^2 window around the current correspondence at every level (sec. 3.2);
* a convolutional GRU updates a hidden state from motion features (correlation + flow) and context,
  and a flow head predicts the residual flow (sec. 3.3);
* convex upsampling to full resolution with a predicted 8x8x9 mask (large model) or bilinear (small).

One loader: ``load_raft(path)`` takes a ``.pth`` state dict (or a folder holding one); nothing downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.errors import MissingDependencyError, require


@dataclass(frozen=True)
class RaftArchitecture:
    """Sizes of a RAFT network (defaults: torchvision's raft_large)."""

    feature_layers: tuple[int, ...] = (64, 64, 96, 128, 256)
    context_layers: tuple[int, ...] = (64, 64, 96, 128, 256)
    bottleneck: bool = False
    context_norm: str | None = "batch"
    corr_levels: int = 4
    corr_radius: int = 4
    motion_corr_layers: tuple[int, ...] = (256, 192)
    motion_flow_layers: tuple[int, int] = (128, 64)
    motion_out: int = 128
    hidden: int = 128
    gru_kernels: tuple[tuple[int, int], ...] = ((1, 5), (5, 1))
    flow_head_hidden: int = 256
    mask_predictor: bool = True


RAFT_LARGE = RaftArchitecture()
RAFT_SMALL = RaftArchitecture(
    feature_layers=(32, 32, 64, 96, 128), context_layers=(32, 32, 64, 96, 160), bottleneck=True, context_norm=None,
    corr_radius=3, motion_corr_layers=(96,), motion_flow_layers=(64, 32), motion_out=82, hidden=96,
    gru_kernels=((3, 3),), flow_head_hidden=128, mask_predictor=False,
)  # fmt: skip


def build_raft(arch: RaftArchitecture = RAFT_LARGE) -> Any:
    """A randomly initialised RAFT ``torch.nn.Module`` of the given architecture."""
    torch = require("torch", "learned")
    nn = torch.nn
    F = torch.nn.functional

    def conv_block(cin: int, cout: int, k: int, stride: int = 1, norm: str | None = None, relu: bool = True):
        # Sequential(conv, [norm], [relu]): the layout (and key names) of torchvision's Conv2dNormActivation.
        layers: list[Any] = [nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, bias=True)]
        if norm == "instance":
            layers.append(nn.InstanceNorm2d(cout))
        elif norm == "batch":
            layers.append(nn.BatchNorm2d(cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)

    class Residual(nn.Module):
        def __init__(self, cin: int, cout: int, norm: str | None, stride: int) -> None:
            super().__init__()
            self.convnormrelu1 = conv_block(cin, cout, 3, stride, norm)
            self.convnormrelu2 = conv_block(cout, cout, 3, 1, norm)
            self.downsample = nn.Identity() if stride == 1 else conv_block(cin, cout, 1, stride, norm, relu=False)

        def forward(self, x):
            return F.relu(self.downsample(x) + self.convnormrelu2(self.convnormrelu1(x)))

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, cout: int, norm: str | None, stride: int) -> None:
            super().__init__()
            self.convnormrelu1 = conv_block(cin, cout // 4, 1, 1, norm)
            self.convnormrelu2 = conv_block(cout // 4, cout // 4, 3, stride, norm)
            self.convnormrelu3 = conv_block(cout // 4, cout, 1, 1, norm)
            self.downsample = nn.Identity() if stride == 1 else conv_block(cin, cout, 1, stride, norm, relu=False)

        def forward(self, x):
            return F.relu(self.downsample(x) + self.convnormrelu3(self.convnormrelu2(self.convnormrelu1(x))))

    class Encoder(nn.Module):
        """Downsamples by 8: stride-2 stem, then residual stages with strides (1, 2, 2), then a 1x1 conv."""

        def __init__(self, layers: tuple[int, ...], norm: str | None) -> None:
            super().__init__()
            block = Bottleneck if arch.bottleneck else Residual
            self.convnormrelu = conv_block(3, layers[0], 7, 2, norm)
            stages = []
            for index, stride in enumerate((1, 2, 2)):
                cin, cout = layers[index], layers[index + 1]
                stages.append(nn.Sequential(block(cin, cout, norm, stride), block(cout, cout, norm, 1)))
            self.layer1, self.layer2, self.layer3 = stages
            self.conv = nn.Conv2d(layers[3], layers[4], 1)

        def forward(self, x):
            return self.conv(self.layer3(self.layer2(self.layer1(self.convnormrelu(x)))))

    class MotionEncoder(nn.Module):
        def __init__(self, corr_channels: int) -> None:
            super().__init__()
            corr = arch.motion_corr_layers
            self.convcorr1 = conv_block(corr_channels, corr[0], 1)
            self.convcorr2 = conv_block(corr[0], corr[1], 3) if len(corr) == 2 else nn.Identity()
            self.convflow1 = conv_block(2, arch.motion_flow_layers[0], 7)
            self.convflow2 = conv_block(arch.motion_flow_layers[0], arch.motion_flow_layers[1], 3)
            self.conv = conv_block(corr[-1] + arch.motion_flow_layers[1], arch.motion_out - 2, 3)

        def forward(self, flow, corr):
            features = torch.cat([self.convcorr2(self.convcorr1(corr)), self.convflow2(self.convflow1(flow))], dim=1)
            return torch.cat([self.conv(features), flow], dim=1)

    class ConvGRU(nn.Module):
        def __init__(self, input_size: int, kernel: tuple[int, int]) -> None:
            super().__init__()
            padding = (kernel[0] // 2, kernel[1] // 2)
            channels = arch.hidden + input_size
            self.convz = nn.Conv2d(channels, arch.hidden, kernel, padding=padding)
            self.convr = nn.Conv2d(channels, arch.hidden, kernel, padding=padding)
            self.convq = nn.Conv2d(channels, arch.hidden, kernel, padding=padding)

        def forward(self, h, x):
            hx = torch.cat([h, x], dim=1)
            z, r = torch.sigmoid(self.convz(hx)), torch.sigmoid(self.convr(hx))
            q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)))
            return (1 - z) * h + z * q

    class Recurrent(nn.Module):
        def __init__(self, input_size: int) -> None:
            super().__init__()
            self.convgru1 = ConvGRU(input_size, arch.gru_kernels[0])
            self.convgru2 = ConvGRU(input_size, arch.gru_kernels[1]) if len(arch.gru_kernels) == 2 else None

        def forward(self, h, x):
            h = self.convgru1(h, x)
            return self.convgru2(h, x) if self.convgru2 is not None else h

    class FlowHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(arch.hidden, arch.flow_head_hidden, 3, padding=1)
            self.conv2 = nn.Conv2d(arch.flow_head_hidden, 2, 3, padding=1)

        def forward(self, x):
            return self.conv2(F.relu(self.conv1(x)))

    class UpdateBlock(nn.Module):
        def __init__(self, corr_channels: int) -> None:
            super().__init__()
            self.motion_encoder = MotionEncoder(corr_channels)
            context_channels = arch.context_layers[-1] - arch.hidden
            self.recurrent_block = Recurrent(arch.motion_out + context_channels)
            self.flow_head = FlowHead()

    class MaskPredictor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convrelu = conv_block(arch.hidden, 256, 3)
            self.conv = nn.Conv2d(256, 8 * 8 * 9, 1)

        def forward(self, x):
            return 0.25 * self.conv(self.convrelu(x))

    def sample_absolute(volume, coords):
        """Bilinear sampling at absolute pixel coordinates (x, y), zeros outside (align_corners)."""
        height, width = volume.shape[-2:]
        grid = torch.stack(
            [2 * coords[..., 0] / max(width - 1, 1) - 1, 2 * coords[..., 1] / max(height - 1, 1) - 1], dim=-1
        )
        return F.grid_sample(volume, grid, mode="bilinear", align_corners=True)

    class Raft(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.arch = arch
            self.feature_encoder = Encoder(arch.feature_layers, "instance")
            self.context_encoder = Encoder(arch.context_layers, arch.context_norm)
            corr_channels = arch.corr_levels * (2 * arch.corr_radius + 1) ** 2
            self.update_block = UpdateBlock(corr_channels)
            self.mask_predictor = MaskPredictor() if arch.mask_predictor else None

        def forward(self, image1, image2, num_flow_updates: int = 12):
            """image1, image2: (B, 3, H, W) in [-1, 1], H and W multiples of 8 -> (B, 2, H, W) flow 1 -> 2."""
            batch = image1.shape[0]
            fmap1, fmap2 = torch.chunk(self.feature_encoder(torch.cat([image1, image2])), 2)
            dtype = fmap1.dtype  # the network's dtype; correlation, coordinates and flow stay float32
            h8, w8 = fmap1.shape[-2:]
            channels = fmap1.shape[1]
            # All-pairs correlation (eq. 1), pooled over the second image's dimensions (sec. 3.2); in float32 as
            # upstream RAFT does under mixed precision (the lookup samples it at sub-pixel coordinates).
            corr = torch.matmul(fmap1.flatten(2).transpose(1, 2).float(), fmap2.flatten(2).float()) / channels**0.5
            pyramid = [corr.reshape(batch * h8 * w8, 1, h8, w8)]
            for _ in range(arch.corr_levels - 1):
                pyramid.append(F.avg_pool2d(pyramid[-1], 2, 2))
            hidden, context = torch.split(
                self.context_encoder(image1), [arch.hidden, arch.context_layers[-1] - arch.hidden], dim=1
            )
            hidden, context = torch.tanh(hidden), F.relu(context)
            ys, xs = torch.meshgrid(torch.arange(h8), torch.arange(w8), indexing="ij")
            coords0 = torch.stack([xs, ys]).float()[None].repeat(batch, 1, 1, 1).to(image1.device)
            coords1 = coords0.clone()
            side = 2 * arch.corr_radius + 1
            offsets = torch.linspace(-arch.corr_radius, arch.corr_radius, side, device=image1.device)
            # The window's first axis offsets x (as in the released RAFT weights), its second y.
            delta = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1).view(1, side, side, 2)
            flow_up = None
            for _ in range(num_flow_updates):
                centres = coords1.permute(0, 2, 3, 1).reshape(batch * h8 * w8, 1, 1, 2)
                features = []
                for level, volume in enumerate(pyramid):
                    window = sample_absolute(volume, centres / 2**level + delta)
                    features.append(window.view(batch, h8, w8, -1))
                corr_features = torch.cat(features, dim=-1).permute(0, 3, 1, 2).to(dtype)
                flow = coords1 - coords0
                motion = self.update_block.motion_encoder(flow.to(dtype), corr_features)
                hidden = self.update_block.recurrent_block(hidden, torch.cat([context, motion], dim=1))
                coords1 = coords1 + self.update_block.flow_head(hidden).float()
                flow_up = upsample(
                    coords1 - coords0, None if self.mask_predictor is None else self.mask_predictor(hidden).float()
                )
            return flow_up

    def upsample(flow, mask):
        batch, _, h, w = flow.shape
        if mask is None:
            return 8 * F.interpolate(flow, size=(8 * h, 8 * w), mode="bilinear", align_corners=True)
        # Convex combination of the 3x3 coarse neighbours (paper sec. 3.3, appendix B).
        weights = torch.softmax(mask.view(batch, 1, 9, 8, 8, h, w), dim=2)
        neighbours = F.unfold(8 * flow, kernel_size=3, padding=1).view(batch, 2, 9, 1, 1, h, w)
        up = torch.sum(weights * neighbours, dim=2)
        return up.permute(0, 1, 4, 2, 5, 3).reshape(batch, 2, 8 * h, 8 * w)

    return Raft()


def load_raft(model_path: str | None, device: str = "cpu") -> Any:
    """Load RAFT weights (torchvision's raft_large or raft_small ``.pth`` state dict) in eval mode.

    Args:
        model_path: a ``.pth``/``.pt`` file, or a folder holding exactly one.
        device: torch device.

    Raises:
        MissingDependencyError: torch missing, no weights at the path, or weights of another network (one line).
    """
    torch = require("torch", "learned")
    if not model_path:
        raise MissingDependencyError("the raft flow backend needs --model-path: a raft_large or raft_small .pth file")
    path = Path(model_path)
    if path.is_dir():
        candidates = sorted(list(path.glob("*.pth")) + list(path.glob("*.pt")))
        if len(candidates) != 1:
            raise MissingDependencyError(f"{path}: expected one RAFT .pth file in the folder, found {len(candidates)}")
        path = candidates[0]
    if not path.is_file():
        raise MissingDependencyError(
            f"no RAFT weights at {path}; pass the raft_large/raft_small .pth with --model-path"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    arch = RAFT_LARGE if "mask_predictor.conv.weight" in state else RAFT_SMALL
    model = build_raft(arch)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise MissingDependencyError(
            f"{path}: not torchvision RAFT weights ({str(err).splitlines()[0][:120]})"
        ) from None
    return model.to(device).eval()


class RaftFlow:
    """A FlowBackend (scene/flow.py) running RAFT; frames padded to multiples of 8 and normalised to [-1, 1]."""

    name = "raft"

    def __init__(self, model: Any, device: str = "cpu", num_flow_updates: int = 12) -> None:
        self.model = model
        self.device = device
        self.num_flow_updates = num_flow_updates

    def __call__(self, image_a: np.ndarray, image_b: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 RGB pair -> (h, w, 2) float32 flow a -> b in pixels."""
        import torch

        height, width = image_a.shape[:2]
        pad_h, pad_w = (-height) % 8, (-width) % 8
        # Frames go in at the model's dtype, so a model cast to bf16/fp16 runs (conv layers refuse mixed dtypes).
        dtype = next(self.model.parameters()).dtype

        def to_tensor(image: np.ndarray):
            padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge").astype(np.float32)
            return torch.from_numpy(padded / 127.5 - 1.0).permute(2, 0, 1)[None].to(self.device, dtype)

        with torch.inference_mode():
            flow = self.model(to_tensor(image_a), to_tensor(image_b), num_flow_updates=self.num_flow_updates)
        # .float() before .numpy(): numpy has no bfloat16.
        return flow[0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy()
