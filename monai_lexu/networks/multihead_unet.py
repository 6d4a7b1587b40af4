"""Multi-head U-Net used by LEXU (decoder heads) and Layer Ensembles (encoder + decoder heads).

The network returns the logits of all heads as ONE tensor ``(B, K * L, *S)`` in head-major order: channel
``k * L + l`` is head ``k``, structure ``l``. Every head is a 1x1 convolution to ``L`` channels whose logits are
upsampled to the input size (nearest by default, as in the LEXU reference code, which interpolates logits with
``F.interpolate``'s default mode before the sigmoid). The last head (``k = K - 1``) is the full-resolution decoder
head.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.networks.nets.basic_unet import Down, TwoConv, UpCat
from monai.networks.nets.resnet import ResNetEncoder
from torch import nn

__all__ = ["MultiHeadUNet", "BACKBONES", "HEAD_MODES"]

BACKBONES = ("resnet50", "plain")
HEAD_MODES = ("decoder", "encoder_decoder", "last")
_RESNET50_CHANNELS = (64, 256, 512, 1024, 2048)
_MODES_2D = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
_MODES_3D = ("nearest", "nearest-exact", "trilinear", "area")


class _PlainEncoder(nn.Module):
    """Plain convolutional encoder: level 0 = two 3x3 convs at full resolution, level i = max-pool + two convs.

    Returns the list of level outputs, shallowest first: ``features[i]`` has ``features[i]`` channels at ``S / 2**i``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        features: Sequence[int],
        act: str | tuple,
        norm: str | tuple,
        dropout: float,
    ) -> None:
        super().__init__()
        drop = dropout if dropout > 0 else None  # None: no (p=0) dropout modules at all
        levels: list[nn.Module] = [TwoConv(spatial_dims, in_channels, features[0], act, norm, True, drop)]
        for prev, cur in zip(features[:-1], features[1:]):
            levels.append(Down(spatial_dims, prev, cur, act, norm, True, drop))
        self.levels = nn.ModuleList(levels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor] = []
        for level in self.levels:
            x = level(x)
            outputs.append(x)
        return outputs


class _Decoder(nn.Module):
    """U-Net decoder made of MONAI ``UpCat`` blocks that returns the output of EVERY stage.

    Block ``i`` upsamples by 2, concatenates the encoder feature ``enc[-2 - i]`` (for ``i < num_skips``) and applies
    two conv-norm-act layers.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: Sequence[int],
        skip_channels: Sequence[int],
        out_channels: Sequence[int],
        act: str | tuple,
        norm: str | tuple,
        dropout: float,
        bias: bool,
        upsample: str,
        halves: bool,
    ) -> None:
        super().__init__()
        blocks = []
        for in_chn, skip_chn, out_chn in zip(in_channels, skip_channels, out_channels):
            blocks.append(
                UpCat(
                    spatial_dims=spatial_dims,
                    in_chns=in_chn,
                    cat_chns=skip_chn,
                    out_chns=out_chn,
                    act=act,
                    norm=norm,
                    bias=bias,
                    dropout=dropout if dropout > 0 else None,  # type: ignore[arg-type]
                    upsample=upsample,
                    pre_conv=None if upsample == "nontrainable" else "default",
                    interp_mode="nearest",
                    align_corners=None,
                    halves=halves,
                    is_pad=True,
                )
            )
        self.blocks = nn.ModuleList(blocks)
        self.num_skips = sum(1 for c in skip_channels if c > 0)

    def forward(self, enc: list[torch.Tensor]) -> list[torch.Tensor]:
        x = enc[-1]
        n_enc = len(enc)
        outputs: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            skip: torch.Tensor | None = None
            if i < self.num_skips:
                skip = enc[n_enc - 2 - i]
            x = block(x, skip)
            outputs.append(x)
        return outputs


class MultiHeadUNet(nn.Module):
    """U-Net with one 1x1-conv segmentation head per decoder stage (LEXU) and optionally per encoder stage (LE).

    Backbones:

    - ``"resnet50"``: MONAI's ``ResNetEncoder("resnet50")`` (the FlexibleUNet backbone: 7x7/2 stem, max-pool,
      bottleneck stages; 5 feature maps with (64, 256, 512, 1024, 2048) channels at ``S/2 ... S/32``) and an
      SMP-style U-Net decoder with ``decoder_channels`` built from MONAI's ``UpCat`` blocks: nearest x2 upsampling
      (no pre-conv), concatenation of the encoder skip (none for the last block), then two 3x3 conv + norm + act
      without bias. 5 decoder heads at ``S/16 ... S``; with ``heads="encoder_decoder"`` 5 more on the encoder stages
      (10 heads, as the LE baseline of the reference code). The input size must be divisible by 32 for an exact
      U-Net (other sizes are padded inside the decoder). ``norm``/``act``/``dropout`` apply to the decoder only;
      MONAI's ResNet encoder always uses batch norm and ReLU.
    - ``"plain"``: a small CPU-friendly U-Net. Encoder level 0 is two 3x3 conv + norm + act at full resolution,
      level ``i > 0`` is 2x max-pool followed by two convs, with ``features[i]`` channels. The decoder mirrors it:
      ``len(features) - 1`` stages, each a transposed-conv x2 upsampling (halving the channels), skip concatenation
      and two convs, stage ``j`` producing ``features[-2 - j]`` channels. ``decoder_channels`` is ignored. Decoder
      heads: ``len(features) - 1``; with ``heads="encoder_decoder"`` one head per encoder level is added (all
      ``len(features)`` levels, so ``2 * len(features) - 1`` heads). The input size should be divisible by
      ``2 ** (len(features) - 1)``.

    ``dropout > 0`` inserts element-wise ``nn.Dropout(p)`` after every 3x3 convolution of the plain network (and of
    the resnet50 decoder), as MONAI's ``Convolution`` orders it: conv -> norm -> dropout -> act (with ReLU this equals
    dropout after the activation). This is the MC-dropout U-Net of Jungo et al. 2018 (p = 0.2 after each conv);
    the heads themselves have no dropout.

    Every head is a 1x1 convolution (with bias) to ``out_channels`` (``L``) logits, upsampled with ``upsample_mode``
    to the input spatial size (``"nearest"``, as the reference code, interpolates logits; ``"linear"`` maps to
    ``"bilinear"``/``"trilinear"``, used with ``align_corners=False``). Head order: encoder heads shallow to deep,
    then decoder heads deep to shallow, so the LAST head is the full-resolution decoder head.

    Args:
        spatial_dims: 2 or 3.
        in_channels: number of input channels ``C``.
        out_channels: number of structures ``L`` per head (independent sigmoid channels, no background).
        backbone: ``"resnet50"`` or ``"plain"``.
        heads: ``"decoder"`` (LEXU), ``"encoder_decoder"`` (Layer Ensembles) or ``"last"`` (one head on the
            final decoder stage: the plain single-head U-Net of the baselines).
        features: channels of the plain encoder levels (plain backbone only), at least 2 levels.
        decoder_channels: output channels of the 5 resnet50 decoder stages (resnet50 only), SMP default.
        upsample_mode: interpolation of the head logits to the input size.
        pretrained_weights: optional path to a saved state dict of the encoder (e.g. a torchvision/SMP ResNet-50
            state dict; ``fc.*`` keys are ignored) or of the whole network. Loaded at construction; nothing is ever
            downloaded. Default: random initialisation.
        dropout: dropout probability after each convolution (see above).
        norm: normalisation of the plain network / resnet50 decoder (MONAI norm name or (name, args)).
        act: activation of the plain network / resnet50 decoder (MONAI act name or (name, args)).

    Shapes:
        input ``(B, C, *S)`` -> output ``(B, K * L, *S)``, head-major (channel ``k * L + l`` = head ``k``,
        structure ``l``). ``K`` is ``self.num_heads``.

    Example::

        net = MultiHeadUNet(spatial_dims=2, in_channels=3, out_channels=2, backbone="plain")
        logits = net(torch.rand(2, 3, 64, 64))  # (2, 4 * 2, 64, 64)
        per_head = monai_lexu.contract.split_heads(logits, net.num_heads)  # (2, 4, 2, 64, 64)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 2,
        backbone: str = "resnet50",
        heads: str = "decoder",
        features: Sequence[int] = (16, 32, 64, 128, 256),
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        upsample_mode: str = "nearest",
        pretrained_weights: str | Path | None = None,
        dropout: float = 0.0,
        norm: str | tuple = "batch",
        act: str | tuple = "relu",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}.")
        if heads not in HEAD_MODES:
            raise ValueError(f"heads must be one of {HEAD_MODES}, got {heads!r}.")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels} and {out_channels}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.backbone = backbone
        self.heads_mode = heads
        self.upsample_mode = self._check_mode(upsample_mode, spatial_dims)
        self.align_corners: bool | None = False if self.upsample_mode in ("bilinear", "bicubic", "trilinear") else None

        enc_channels: list[int]
        dec_channels: list[int]
        if backbone == "resnet50":
            decoder_channels = tuple(int(c) for c in decoder_channels)
            if len(decoder_channels) != 5:
                raise ValueError(f"resnet50 needs 5 decoder_channels, got {decoder_channels}.")
            self.encoder: nn.Module = ResNetEncoder(
                model_name="resnet50", pretrained=False, spatial_dims=spatial_dims, in_channels=in_channels
            )
            enc_channels = list(_RESNET50_CHANNELS)
            dec_channels = list(decoder_channels)
            self.decoder = _Decoder(
                spatial_dims,
                in_channels=[enc_channels[-1]] + dec_channels[:-1],
                skip_channels=enc_channels[:-1][::-1] + [0],
                out_channels=dec_channels,
                act=act,
                norm=norm,
                dropout=dropout,
                bias=False,
                upsample="nontrainable",
                halves=False,
            )
        else:
            features = tuple(int(c) for c in features)
            if len(features) < 2:
                raise ValueError(f"the plain backbone needs at least 2 feature levels, got features={features}.")
            self.encoder = _PlainEncoder(spatial_dims, in_channels, features, act, norm, dropout)
            enc_channels = list(features)
            dec_channels = list(features[:-1][::-1])
            self.decoder = _Decoder(
                spatial_dims,
                in_channels=[enc_channels[-1]] + dec_channels[:-1],
                skip_channels=enc_channels[:-1][::-1],
                out_channels=dec_channels,
                act=act,
                norm=norm,
                dropout=dropout,
                bias=True,
                upsample="deconv",
                halves=True,
            )
        self.encoder_heads = heads == "encoder_decoder"
        head_in = (enc_channels if self.encoder_heads else []) + dec_channels
        if heads == "last":  # the same network with a single head: baselines (Deep Ensembles members) and benchmarks
            head_in = head_in[-1:]
        conv = Conv[Conv.CONV, spatial_dims]
        self.heads = nn.ModuleList([conv(c, out_channels, kernel_size=1) for c in head_in])
        self.num_heads = len(head_in)
        self.num_encoder_heads = len(enc_channels) if self.encoder_heads else 0
        if pretrained_weights is not None:
            self.load_pretrained(pretrained_weights)

    @staticmethod
    def _check_mode(mode: str, spatial_dims: int) -> str:
        mode = str(mode).lower()
        if mode == "linear":
            mode = "bilinear" if spatial_dims == 2 else "trilinear"
        allowed = _MODES_2D if spatial_dims == 2 else _MODES_3D
        if mode not in allowed:
            raise ValueError(
                f"upsample_mode {mode!r} is not valid for spatial_dims={spatial_dims}; use one of {allowed}."
            )
        return mode

    def load_pretrained(self, path: str | Path) -> None:
        """Load a saved state dict of the encoder or of the whole network.

        The file is read with ``torch.load(weights_only=True)``. A checkpoint dict wrapping the weights under
        ``"state_dict"``, ``"model"`` or ``"network"`` is unwrapped and a ``"module."`` prefix (DataParallel) is
        removed. If the keys look like this network's full state dict (they start with ``encoder.``/``decoder.``/
        ``heads.``) the whole network is loaded, otherwise the encoder only; ``fc.*`` keys of a classification
        ResNet are ignored for encoder files. Loading is strict.

        Args:
            path: file path of the state dict.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file holds no state dict, or keys or tensor shapes do not match (the message names the
                file and lists the offending keys).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained_weights file not found: {path}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 (re-raised with the file name)
            raise ValueError(f"pretrained_weights {path} could not be read as a torch state dict: {e}") from e
        for wrapper in ("state_dict", "model", "network"):
            if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
        if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ValueError(f"pretrained_weights {path} does not contain a state dict (mapping of name -> tensor).")
        state = {str(k): v for k, v in obj.items()}
        if all(k.startswith("module.") for k in state):
            state = {k[len("module.") :]: v for k, v in state.items()}
        full = any(k.startswith(("encoder.", "decoder.", "heads.")) for k in state)
        target: nn.Module = self if full else self.encoder
        if not full:
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        expected = target.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        mismatched = [
            f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
            for k in expected
            if k in state and state[k].shape != expected[k].shape
        ]
        if missing or unexpected or mismatched:
            what = "network" if full else "encoder"

            def _fmt(items: list[str]) -> str:
                return ", ".join(items[:8]) + (f", ... ({len(items)} in total)" if len(items) > 8 else "")

            raise ValueError(
                f"pretrained_weights {path} does not match the {what} of MultiHeadUNet(backbone={self.backbone!r}, "
                f"spatial_dims={self.spatial_dims}, in_channels={self.in_channels}): "
                f"missing keys [{_fmt(missing)}]; unexpected keys [{_fmt(unexpected)}]; "
                f"shape mismatches [{_fmt(mismatched)}]."
            )
        target.load_state_dict(state, strict=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network.

        Args:
            x: input ``(B, C, *S)``.

        Returns:
            head-major logits ``(B, K * L, *S)``.
        """
        size = list(x.shape[2:])
        enc: list[torch.Tensor] = self.encoder(x)
        dec: list[torch.Tensor] = self.decoder(enc)
        feats: list[torch.Tensor] = []
        if self.encoder_heads:
            feats.extend(enc)
        feats.extend(dec)
        feats = feats[len(feats) - self.num_heads :]
        outputs: list[torch.Tensor] = []
        for i, head in enumerate(self.heads):
            z = head(feats[i])
            if list(z.shape[2:]) != size:
                z = F.interpolate(z, size=size, mode=self.upsample_mode, align_corners=self.align_corners)
            outputs.append(z)
        return torch.cat(outputs, dim=1)
