"""MedUHIP (Zhu & Wu, arXiv 2408.01620): Segmentation Net and Gaussian-mixture Sampling Net.

The paper (no code released) describes, per interaction round ``t``:

* the **Segmentation Net** (§3.3): an image encoder gives a general embedding ``E_G``; ``N`` samples ``S_i`` drawn
  from the sampling space are each combined with it, ``E_i = ReLU(Conv(E_G ⊕ S_i))`` (Eq. 1); a prompt encoder
  maps the clinician's clicks (location + foreground/background) to embeddings with a Fourier positional encoding;
  a light mask decoder (two-way cross-attention between prompt tokens and each ``E_i``, upsampling, an MLP turning
  the output token into a dynamic linear classifier) predicts one mask ``P_i`` per sample; the soft prediction is
  their majority ``P_soft = 1(mean_i P_i > 1/2)`` (Eq. 2);
* the **Sampling Net** (§3.4): the sampling space is a mixture of ``M`` Gaussians ``N(mu_m, sigma_m^2)`` with
  weights ``pi_m`` (Eq. 4); ``mu`` and ``sigma^2`` come from a Mean-Variance Network (convolutions + ReLU on the
  image embedding, here also on the prompt tokens), ``pi`` from a Weight Network (linear layers + ReLU); the
  posterior of a component given a (preferred) map is Eq. 5.

Definitions that are this project's (the paper leaves them open), marked "ours" where they are used:

* a sample ``S_i`` is a ``sample_dim``-vector whose elements are i.i.d. draws of ONE component: the component is
  drawn by its weight first, then the vector from that Gaussian (a true mixture draw; the closest public relative,
  ``ImprintLab/SPA``, uses one shared noise ``eps`` for all components and a weighted sum, which is a single
  Gaussian: not copied). In eval mode the network uses fixed "random numbers" (stratified uniforms
  ``(i + 1/2) / N`` for the component choice, a fixed normal draw for ``eps``, both buffers) so one image and one
  prompt give one answer (TorchScript export, reproducible interaction loops, common random numbers between
  strategies); training mode draws fresh ones.
* components are scalar Gaussians over probability values (as Eq. 5 evaluates a density at a prediction); the
  posterior of a whole map (Eq. 5 for a map) is the mean over its (masked) pixels of the per-pixel posteriors
  (:func:`mixture_posterior`).
* the Weight Network maps ``[pi^t, posterior of the clinician's selection]`` to ``pi^{t+1}`` (softmax output);
  the round-0 weights are uniform.
* image encoder: a small convolutional encoder (MONAI ``TwoConv``/``Down``) by default, or MONAI's ``ViT`` (the
  paper: an MAE-pretrained ViT-B, which cannot be downloaded here; ``pretrained_weights`` loads a local file);
  the two-way transformer is MONAI's (``monai.networks.nets.vista3d.TwoWayTransformer``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets.basic_unet import Down, TwoConv
from monai.networks.nets.vista3d import TwoWayTransformer
from torch import nn

__all__ = [
    "MEDUHIP_ENCODERS",
    "FourierPointEncoding",
    "MeanVarianceNet",
    "MedUHIPNet",
    "WeightNet",
    "majority_soft_prediction",
    "mixture_posterior",
    "sample_gaussian_mixture",
]

MEDUHIP_ENCODERS = ("conv", "vit")


# --------------------------------------------------------------------------------------------- functional core
def sample_gaussian_mixture(
    weights: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    num_samples: int,
    dim: int,
    uniform: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw from a mixture of scalar Gaussians: a component by its weight, then a vector from that component.

    ``S_i = mu_{m_i} + sigma_{m_i} * eps_i`` with ``m_i = min{m : sum_{m' <= m} pi_{m'} > u_i}`` (inverse CDF of the
    categorical distribution) and ``eps_i ~ N(0, I_dim)``. The draw is differentiable in ``mean`` and ``var``
    (reparameterisation) for the drawn components; the component choice is not.

    Args:
        weights: ``(B, M)`` mixture weights (non-negative, each row summing to 1).
        mean: ``(B, M)`` component means.
        var: ``(B, M)`` component variances (> 0).
        num_samples: ``N``.
        dim: length of each sample vector.
        uniform: ``(N,)`` or ``(B, N)`` values in [0, 1) for the component choice; fresh ``torch.rand`` if None.
        noise: ``(N, dim)`` or ``(B, N, dim)`` standard-normal values; fresh ``torch.randn`` if None.

    Returns:
        ``(samples (B, N, dim), components (B, N) long)``.
    """
    b = weights.shape[0]
    m = weights.shape[1]
    if uniform is None:
        uniform = torch.rand(b, num_samples, device=weights.device, dtype=weights.dtype)
    if noise is None:
        noise = torch.randn(b, num_samples, dim, device=weights.device, dtype=weights.dtype)
    uniform = uniform.to(weights).expand(b, num_samples).contiguous()
    noise = noise.to(mean).expand(b, num_samples, dim)
    cdf = torch.cumsum(weights, dim=1)
    cdf = cdf / cdf[:, -1:].clamp_min(1e-12)
    components = torch.searchsorted(cdf.detach().contiguous(), uniform, right=True).clamp(0, m - 1)
    mu = torch.gather(mean, 1, components)
    sd = torch.gather(var, 1, components).clamp_min(1e-12).sqrt()
    return mu.unsqueeze(-1) + sd.unsqueeze(-1) * noise, components


def mixture_posterior(
    values: torch.Tensor,
    weights: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 5: ``P(Z = m | x) = f(x; mu_m, sigma_m^2) pi_m / sum_m' f(x; mu_m', sigma_m'^2) pi_m'``, per map.

    For a map ``x`` (ours, see the module docstring) the posterior is the mean over its pixels (those where ``mask``
    is true, all if ``mask`` is None or selects none) of the per-pixel posteriors, i.e. the E-step responsibility
    averaged over the region. Computed in log space (no underflow for far-away components).

    Args:
        values: ``(B, *S)`` the map(s), e.g. a candidate region's probability or a binary target.
        weights: ``(B, M)`` mixture weights.
        mean: ``(B, M)`` component means.
        var: ``(B, M)`` component variances (> 0).
        mask: optional ``(B, *S)`` bool region.

    Returns:
        ``(B, M)``, each row summing to 1.
    """
    b = values.shape[0]
    x = values.reshape(b, -1, 1).to(mean.dtype)
    v = var.clamp_min(1e-12).unsqueeze(1)
    log_f = -0.5 * torch.log(2.0 * math.pi * v) - (x - mean.unsqueeze(1)) ** 2 / (2.0 * v)
    log_joint = log_f + torch.log(weights.clamp_min(1e-12)).unsqueeze(1)
    post = torch.softmax(log_joint, dim=2)  # (B, P, M)
    if mask is None:
        return post.mean(1)
    w = mask.reshape(b, -1, 1).to(post.dtype)
    count = w.sum(1)
    w = torch.where(count.unsqueeze(1) > 0, w, torch.ones_like(w))
    return (post * w).sum(1) / w.sum(1)


def majority_soft_prediction(logits: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2: ``P_soft = 1(mean_i P_i > 1/2)`` with ``P_i = 1(sigmoid(logit_i) > threshold)``.

    Args:
        logits: ``(B, N, *S)`` the logits of the ``N`` sample masks.
        threshold: the probability above which one sample's pixel is foreground.

    Returns:
        ``(P_soft (B, *S) float in {0, 1}, vote fraction (B, *S) = mean_i P_i)``; the vote fraction is the
        N-sample uncertainty's basis (``f (1 - f)`` is the variance over the samples).
    """
    votes = (torch.sigmoid(logits) > threshold).to(logits.dtype).mean(1)
    return (votes > 0.5).to(logits.dtype), votes


# --------------------------------------------------------------------------------------------- blocks
class FourierPointEncoding(nn.Module):
    """2D random Fourier features (Tancik et al. 2020), as SAM encodes points and the dense grid.

    ``pe(p) = [sin(2 pi (2p - 1) G), cos(2 pi (2p - 1) G)]`` for ``p`` in [0, 1]^2 and a fixed Gaussian ``G``
    ``(2, D/2)`` with standard deviation ``scale`` (a buffer drawn from ``seed``).
    """

    def __init__(self, num_feats: int, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if num_feats % 2:
            raise ValueError(f"FourierPointEncoding: num_feats must be even, got {num_feats}.")
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("gaussian", scale * torch.randn(2, num_feats // 2, generator=gen))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` normalised coordinates in [0, 1] -> ``(..., D)``."""
        proj = 2.0 * math.pi * ((2.0 * coords - 1.0) @ self.gaussian)
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """The encoding of every cell centre of an ``h x w`` grid: ``(D, h, w)``."""
        ys = (torch.arange(h, device=self.gaussian.device, dtype=self.gaussian.dtype) + 0.5) / h
        xs = (torch.arange(w, device=self.gaussian.device, dtype=self.gaussian.dtype) + 0.5) / w
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return self.encode(torch.stack([yy, xx], dim=-1)).permute(2, 0, 1)


class _ConvEncoder(nn.Module):
    """Small convolutional encoder: ``TwoConv`` then ``Down`` (max-pool + two convs) per level, then a 1x1 neck."""

    def __init__(self, in_channels: int, features: Sequence[int], embed_dim: int) -> None:
        super().__init__()
        act = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})
        norm = ("instance", {"affine": True})
        levels: list[nn.Module] = [TwoConv(2, in_channels, features[0], act, norm, True, 0.0)]
        for prev, cur in zip(features[:-1], features[1:]):
            levels.append(Down(2, prev, cur, act, norm, True, 0.0))
        self.levels = nn.Sequential(*levels)
        self.neck = nn.Conv2d(features[-1], embed_dim, kernel_size=1)
        self.stride = 2 ** (len(features) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.levels(x))


class _ViTEncoder(nn.Module):
    """MONAI ``ViT`` (no classification token) whose patch tokens are laid back on their grid, then a 1x1 neck."""

    def __init__(
        self, in_channels: int, img_size: Sequence[int], patch_size: int, hidden_size: int, depth: int, embed_dim: int
    ) -> None:
        super().__init__()
        from monai.networks.nets import ViT  # needs einops

        self.vit = ViT(
            in_channels=in_channels,
            img_size=tuple(img_size),
            patch_size=(patch_size, patch_size),
            hidden_size=hidden_size,
            mlp_dim=4 * hidden_size,
            num_layers=depth,
            num_heads=max(1, hidden_size // 16),
            classification=False,
            spatial_dims=2,
        )
        self.grid = (int(img_size[0]) // patch_size, int(img_size[1]) // patch_size)
        self.neck = nn.Conv2d(hidden_size, embed_dim, kernel_size=1)
        self.stride = patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.vit(x)[0]  # (B, h*w, C)
        b, _, c = tokens.shape
        return self.neck(tokens.transpose(1, 2).reshape(b, c, self.grid[0], self.grid[1]))


class MeanVarianceNet(nn.Module):
    """Mean-Variance Network: ``(E_G, prompt tokens) -> (mu, sigma^2)`` of the ``M`` components.

    Image branch: two 3x3 convolutions + ReLU, global average pool. Prompt branch (ours; the paper only says the
    network sees the image embeddings, while its parameters are trained with the prompt encoder's): two 1x1
    ``Conv1d`` + ReLU over the click tokens, mean over the valid ones (zeros when there is none). Then
    ``Linear + ReLU + Linear`` to ``2M``; ``sigma^2 = softplus + 1e-4``. The output bias starts at means spread
    over [0, 1] and variances ~0.05, so the components start apart on the probability scale Eq. 5 evaluates.
    """

    def __init__(self, embed_dim: int, num_components: int, hidden: int = 64) -> None:
        super().__init__()
        half = max(1, embed_dim // 2)
        self.image = nn.Sequential(
            nn.Conv2d(embed_dim, half, 3, padding=1), nn.ReLU(), nn.Conv2d(half, half, 3, padding=1), nn.ReLU()
        )
        self.prompt = nn.Sequential(nn.Conv1d(embed_dim, half, 1), nn.ReLU(), nn.Conv1d(half, half, 1), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * half, hidden), nn.ReLU(), nn.Linear(hidden, 2 * num_components))
        self.num_components = num_components
        with torch.no_grad():
            self.head[-1].weight.mul_(0.1)
            self.head[-1].bias[:num_components] = torch.linspace(0.05, 0.95, num_components)
            self.head[-1].bias[num_components:] = math.log(math.expm1(0.05))

    def forward(
        self, embedding: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``embedding (B, D, h, w)``, ``tokens (B, P, D)``, ``valid (B, P)`` bool -> ``mean, var (B, M)``."""
        img = self.image(embedding).mean(dim=(2, 3))
        prm = self.prompt(tokens.transpose(1, 2))  # (B, half, P)
        w = valid.to(prm.dtype).unsqueeze(1)
        prm = (prm * w).sum(2) / w.sum(2).clamp_min(1.0)
        out = self.head(torch.cat([img, prm], dim=1))
        m = self.num_components
        return out[:, :m], F.softplus(out[:, m:]) + 1e-4


class WeightNet(nn.Module):
    """Weight Network: ``[pi^t, posterior of the selection] (B, 2M) -> pi^{t+1} (B, M)``; linear layers + ReLU,
    softmax output (ours: the inputs; the paper says only "simple linear layers and ReLU")."""

    def __init__(self, num_components: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * num_components, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_components),
        )

    def forward(self, weights: torch.Tensor, posterior: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp(torch.cat([weights, posterior], dim=1)), dim=1)


class _MLP(nn.Module):
    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --------------------------------------------------------------------------------------------- network
class MedUHIPNet(nn.Module):
    """MedUHIP's Segmentation Net + Sampling Net (2D).

    ``forward(image, points=None, labels=None, weights=None)`` returns the logits of the ``N`` sample masks,
    ``(B, N, H, W)``: the image is encoded once, the Mean-Variance Network gives ``mu, sigma^2`` from the image
    embedding and the clicks, ``N`` samples are drawn from the mixture with ``weights`` (uniform if None), each
    is fused with the image embedding (Eq. 1) and decoded with the click prompt. :func:`majority_soft_prediction`
    turns the logits into ``P_soft`` (Eq. 2). The interaction loop
    (:mod:`monai_lexu.interactive`) calls the stages separately (:meth:`encode_image`, :meth:`encode_prompts`,
    :meth:`sampling_space`, :meth:`draw`, :meth:`decode`, :meth:`next_weights`).

    Args:
        in_channels: image channels.
        spatial_dims: must be 2.
        encoder: ``"conv"`` (small convolutional encoder) or ``"vit"`` (MONAI ViT; needs ``einops`` and
            ``img_size``).
        features: channels per level of the conv encoder (``len - 1`` halvings of the resolution).
        embed_dim: embedding width ``D`` of image, prompt and decoder (the paper: 256).
        num_samples: ``N``.
        num_components: ``M``.
        sample_dim: length of one sample ``S_i``.
        decoder_depth: two-way transformer layers.
        num_heads: attention heads (must divide ``embed_dim``).
        mlp_dim: hidden width of the transformer's MLP.
        img_size: image size for the ViT encoder.
        patch_size: ViT patch size.
        vit_hidden: ViT width.
        vit_depth: ViT layers.
        pretrained_weights: optional path of a state dict loaded into the image encoder (``strict``).
        seed: seed of the fixed eval-mode draws and of the Fourier features.

    Inputs of ``forward``: ``image (B, C, H, W)`` (``H, W`` multiples of the encoder stride); ``points (B, P, 2)``
    click positions as (row, column) pixel indices; ``labels (B, P)`` 1 foreground, 0 background, -1 padding;
    ``weights (B, M)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        spatial_dims: int = 2,
        encoder: str = "conv",
        features: Sequence[int] = (16, 32, 64),
        embed_dim: int = 32,
        num_samples: int = 8,
        num_components: int = 4,
        sample_dim: int = 8,
        decoder_depth: int = 2,
        num_heads: int = 4,
        mlp_dim: int = 64,
        img_size: Sequence[int] | None = None,
        patch_size: int = 8,
        vit_hidden: int = 96,
        vit_depth: int = 4,
        pretrained_weights: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"MedUHIPNet is 2D: spatial_dims must be 2, got {spatial_dims}.")
        if encoder not in MEDUHIP_ENCODERS:
            raise ValueError(f"MedUHIPNet: encoder must be one of {MEDUHIP_ENCODERS}, got {encoder!r}.")
        if embed_dim % num_heads or embed_dim % 8:
            raise ValueError(f"MedUHIPNet: embed_dim {embed_dim} must be a multiple of 8 and of num_heads {num_heads}.")
        if num_samples < 1 or num_components < 1 or sample_dim < 1:
            raise ValueError("MedUHIPNet: num_samples, num_components and sample_dim must be >= 1.")
        if encoder == "vit":
            if img_size is None:
                raise ValueError("MedUHIPNet(encoder='vit') needs img_size.")
            self.image_encoder: nn.Module = _ViTEncoder(
                in_channels, img_size, patch_size, vit_hidden, vit_depth, embed_dim
            )
            stride = patch_size
        else:
            self.image_encoder = _ConvEncoder(in_channels, features, embed_dim)
            stride = 2 ** (len(features) - 1)
        self.encoder_name = encoder
        self.stride = int(stride)
        self.num_ups = int(round(math.log2(stride)))
        if 2**self.num_ups != stride:
            raise ValueError(f"MedUHIPNet: the encoder stride {stride} must be a power of 2.")
        self.embed_dim = embed_dim
        self.num_samples = num_samples
        self.num_components = num_components
        self.sample_dim = sample_dim

        # prompt encoder: Fourier PE of the position + a learned foreground / background embedding
        self.pe = FourierPointEncoding(embed_dim, seed=seed)
        self.label_embed = nn.Embedding(2, embed_dim)
        self.not_a_point = nn.Parameter(torch.zeros(embed_dim))
        self.mask_token = nn.Parameter(torch.randn(1, embed_dim) * 0.02)

        # Eq. 1: E_i = ReLU(Conv(E_G ⊕ S_i))
        self.combine = Convolution(2, embed_dim + sample_dim, embed_dim, kernel_size=1, act="relu", norm=None)

        # mask decoder: two-way transformer, upsampling, dynamic MLP head
        self.transformer = TwoWayTransformer(
            depth=decoder_depth, embedding_dim=embed_dim, num_heads=num_heads, mlp_dim=mlp_dim
        )
        ups: list[nn.Module] = []
        ch = embed_dim
        for _ in range(self.num_ups):
            nxt = max(8, ch // 2)
            ups += [nn.ConvTranspose2d(ch, nxt, 2, stride=2), nn.GroupNorm(1, nxt), nn.GELU()]
            ch = nxt
        self.upscale = nn.Sequential(*ups) if ups else nn.Identity()
        self.hyper_mlp = _MLP([embed_dim, embed_dim, embed_dim, ch])

        # sampling net
        self.mean_variance = MeanVarianceNet(embed_dim, num_components)
        self.weight_net = WeightNet(num_components)

        # fixed draws for eval mode: stratified uniforms and one normal draw (ours, see the module docstring)
        gen = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("eval_uniform", (torch.arange(num_samples, dtype=torch.float32) + 0.5) / num_samples)
        self.register_buffer("eval_noise", torch.randn(num_samples, sample_dim, generator=gen))
        if pretrained_weights is not None:
            self.load_pretrained_encoder(pretrained_weights)

    # ------------------------------------------------------------------ pretrained encoder
    @torch.jit.unused
    def load_pretrained_encoder(self, path: str | Path) -> None:
        """Load a state dict (optionally under ``"model"``/``"state_dict"``) into the image encoder, strictly."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"MedUHIPNet pretrained_weights file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"MedUHIPNet pretrained_weights {path} could not be read as a state dict: {e}") from e
        for key in ("model", "state_dict"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
        try:
            self.image_encoder.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(
                f"MedUHIPNet pretrained_weights {path} do not fit the {self.encoder_name} encoder: {e}"
            ) from e

    @torch.jit.unused
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The parameters each training stage updates: ``"seg"`` (theta_Seg: image encoder, Eq. 1 convolution, mask
        decoder), ``"mvp"`` (theta_MVP: Mean-Variance Network + prompt encoder), ``"weight"`` (theta_W)."""
        mvp = list(self.mean_variance.parameters()) + list(self.label_embed.parameters()) + [self.not_a_point]
        weight = list(self.weight_net.parameters())
        taken = {id(p) for p in mvp + weight}
        seg = [p for p in self.parameters() if id(p) not in taken]
        return {"seg": seg, "mvp": mvp, "weight": weight}

    # ------------------------------------------------------------------ stages
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """``E_G``: ``(B, C, H, W) -> (B, D, H / stride, W / stride)``."""
        return self.image_encoder(image)

    def encode_prompts(
        self, points: torch.Tensor | None, labels: torch.Tensor | None, batch: int, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Click tokens ``(B, P, D)`` and their validity ``(B, P)``; no clicks give one padding token."""
        device = self.not_a_point.device
        if points is None or labels is None or points.shape[1] == 0:
            points = torch.zeros(batch, 1, 2, device=device)
            labels = -torch.ones(batch, 1, device=device)
        scale = torch.tensor([float(height), float(width)], device=points.device)
        coords = (points.to(self.pe.gaussian.dtype) + 0.5) / scale
        valid = labels >= 0
        lab = labels.clamp(0, 1).long()
        tokens = self.pe.encode(coords) + self.label_embed(lab)
        pad = self.not_a_point.view(1, 1, -1).expand_as(tokens)
        tokens = torch.where(valid.unsqueeze(-1), tokens, pad)
        return tokens, valid

    def sampling_space(
        self, embedding: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean-Variance Network: ``mu, sigma^2 (B, M)``."""
        return self.mean_variance(embedding, tokens, valid)

    def uniform_weights(self, batch: int) -> torch.Tensor:
        """The round-0 weights ``pi^0``: uniform (ours)."""
        return torch.full((batch, self.num_components), 1.0 / self.num_components, device=self.eval_uniform.device)

    def next_weights(self, weights: torch.Tensor, posterior: torch.Tensor) -> torch.Tensor:
        """Weight Network: ``pi^{t+1}`` from ``pi^t`` and the posterior (Eq. 5) of the clinician's selection."""
        return self.weight_net(weights, posterior)

    def draw(
        self, weights: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, fixed: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``N`` samples ``(B, N, sample_dim)`` and their components; ``fixed``: the eval-mode buffers."""
        if fixed:
            return sample_gaussian_mixture(
                weights, mean, var, self.num_samples, self.sample_dim, self.eval_uniform, self.eval_noise
            )
        return sample_gaussian_mixture(weights, mean, var, self.num_samples, self.sample_dim, None, None)

    def decode(
        self, embedding: torch.Tensor, tokens: torch.Tensor, samples: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        """Eq. 1 then the mask decoder: ``(B, N, H, W)`` logits, one mask per sample."""
        b, d, h, w = embedding.shape
        n = samples.shape[1]
        e_g = embedding.unsqueeze(1).expand(b, n, d, h, w).reshape(b * n, d, h, w)
        s = samples.reshape(b * n, -1, 1, 1).expand(b * n, samples.shape[2], h, w)
        e_i = self.combine(torch.cat([e_g, s], dim=1))
        queries = torch.cat([self.mask_token.unsqueeze(0).expand(b, 1, d), tokens], dim=1)
        queries = queries.unsqueeze(1).expand(b, n, queries.shape[1], d).reshape(b * n, -1, d)
        image_pe = self.pe.grid(h, w).unsqueeze(0).expand(b * n, d, h, w)
        out_tokens, keys = self.transformer(e_i, image_pe, queries)
        feats = self.upscale(keys.transpose(1, 2).reshape(b * n, d, h, w))
        kernel = self.hyper_mlp(out_tokens[:, 0])  # (B*N, c): the dynamic linear classifier
        logits = (kernel.unsqueeze(-1).unsqueeze(-1) * feats).sum(1)
        if logits.shape[-2] != height or logits.shape[-1] != width:
            logits = F.interpolate(logits.unsqueeze(1), size=(height, width), mode="bilinear").squeeze(1)
        return logits.reshape(b, n, height, width)

    def forward(
        self,
        image: torch.Tensor,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, height, width = image.shape[0], image.shape[2], image.shape[3]
        embedding = self.encode_image(image)
        tokens, valid = self.encode_prompts(points, labels, b, height, width)
        mean, var = self.sampling_space(embedding, tokens, valid)
        if weights is None:
            weights = self.uniform_weights(b)
        samples, _ = self.draw(weights, mean, var, not self.training)
        return self.decode(embedding, tokens, samples, height, width)
