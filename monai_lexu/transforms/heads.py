"""Post-processing of :class:`monai_lexu.inferers.KeepHeadsInferer`'s output: the per-head maps as their own key."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import Compose, MapTransform

__all__ = ["SplitHeadsd", "with_split_heads"]


class SplitHeadsd(MapTransform):
    """Split ``(2L + K L, *S)`` into prob/unc ``(2L, *S)`` (kept under the key) and ``heads`` ``(K, L, *S)``.

    Args:
        keys: key(s) of the decollated inferer output (one image).
        num_structures: ``L``.
        heads_key: output key of the heads.
        allow_missing_keys: do not raise if a key is missing.
    """

    def __init__(
        self, keys: KeysCollection, num_structures: int, heads_key: str = "heads", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.num_structures, self.heads_key = int(num_structures), heads_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        n = self.num_structures
        for key in self.key_iterator(d):
            x = d[key]
            extra = x.shape[0] - 2 * n
            if extra <= 0 or extra % n:
                raise ValueError(f"SplitHeadsd key {key!r}: {x.shape[0]} channels are not 2L + K L with L = {n}.")
            d[self.heads_key] = x[2 * n :].reshape(extra // n, n, *x.shape[1:])
            d[key] = x[: 2 * n]
        return d


def with_split_heads(postprocessing: Callable, num_structures: int, enabled: bool = True) -> Callable:
    """``Compose([SplitHeadsd("pred", L), postprocessing])`` when ``enabled``, else ``postprocessing`` itself.

    The evaluation's ``keep_head_maps`` opt-in (with :func:`monai_lexu.inferers.keep_heads`).
    """
    return Compose([SplitHeadsd("pred", num_structures), postprocessing]) if enabled else postprocessing
