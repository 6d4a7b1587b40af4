"""Tests for monai_lexu.handlers.output_transforms."""

from __future__ import annotations

import pytest
import torch

from monai_lexu.handlers import from_engine_output, lookup_key, loss_terms_output


def _case(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    soft = (torch.rand((2, 4, 4), generator=g) > 0.5).float()
    return {"prob": soft.clone(), "unc": torch.rand((2, 4, 4), generator=g), "label": {"soft_label": soft}}


def test_from_engine_output_looks_inside_label():
    out = [_case(0), _case(1)]
    prob, soft = from_engine_output(["prob", "soft_label"])(out)
    assert len(prob) == 2 and torch.equal(soft[1], out[1]["label"]["soft_label"])


def test_lookup_key_order_and_error():
    out = _case(0)
    assert lookup_key("id", out, {"id": "c7"}) == "c7"  # neither in the output nor its label: the batch
    assert lookup_key("prob", out, {"prob": 0}) is out["prob"]  # the output first
    with pytest.raises(KeyError, match="'missing'"):
        lookup_key("missing", out, None)


def test_loss_terms_output_reads_the_loss_and_its_terms():
    class _Loss:
        last_terms = {"seg": torch.tensor(0.5), "dgm": torch.tensor(0.25), "loss": torch.tensor(9.0)}

    loss = torch.tensor(1.75, requires_grad=True) * 1.0
    transform = loss_terms_output(_Loss())
    assert transform({"loss": loss}) == {"loss": 1.75, "seg": 0.5, "dgm": 0.25}
    assert transform([{"loss": loss}, {"loss": loss}]) == {"loss": 1.75, "seg": 0.5, "dgm": 0.25}
