"""Turn per-structure probabilities into one integer label map (e.g. HECKTOR: 0 background, 1 GTVp, 2 GTVn)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_dst_type

__all__ = ["ProbToLabelMap", "ProbToLabelMapd"]


class ProbToLabelMap(Transform):
    """Probabilities of L independent (sigmoid) structures -> one label map.

    A voxel gets ``label_values[l]`` for the structure ``l`` with the highest probability among those at or above
    ``threshold``, and 0 where no structure reaches it. Ties go to the lower channel. MetaTensor meta is kept.

    Args:
        label_values: value written for each structure channel, e.g. ``(1, 2)`` for GTVp, GTVn.
        threshold: probability threshold.
        dtype: output dtype.
    """

    def __init__(self, label_values: Sequence[int], threshold: float = 0.5, dtype: torch.dtype = torch.uint8) -> None:
        self.label_values = [int(v) for v in label_values]
        self.threshold = float(threshold)
        self.dtype = dtype

    def __call__(self, prob: torch.Tensor) -> torch.Tensor:
        """Args: prob ``(L, *S)``. Returns: ``(1, *S)`` label map."""
        prob = torch.as_tensor(prob)
        if prob.shape[0] != len(self.label_values):
            raise ValueError(
                f"ProbToLabelMap: {prob.shape[0]} probability channels but {len(self.label_values)} label values"
            )
        best, index = prob.max(dim=0, keepdim=True)
        values = torch.tensor(self.label_values, device=prob.device)[index]
        out = torch.where(best >= self.threshold, values, torch.zeros_like(values)).to(self.dtype)
        return convert_to_dst_type(out, prob, dtype=self.dtype)[0]  # keeps MetaTensor meta


class ProbToLabelMapd(MapTransform):
    """Dictionary-based wrapper of :py:class:`ProbToLabelMap`.

    Args:
        keys: probability keys ``(L, *S)``.
        label_values: value of each structure channel.
        threshold: probability threshold.
        output_key: output key(s); default ``"label_map"``.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_values: Sequence[int],
        threshold: float = 0.5,
        output_key: str | Sequence[str] = "label_map",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = ProbToLabelMap(label_values, threshold)
        self.output_key = [output_key] * len(self.keys) if isinstance(output_key, str) else list(output_key)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_key):
            d[out_key] = self.converter(d[key])
        return d
