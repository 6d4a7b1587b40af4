"""Tests for monai_lexu.handlers.soft_dice: the SoftDice metric handler in a real ignite Engine."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from monai_lexu.handlers import SoftDice, from_engine_output
from monai_lexu.metrics import soft_dice


def _item(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    soft = torch.randint(0, 4, (2, 6, 6), generator=g).float() / 3  # 3 raters
    return {"prob": torch.rand((2, 6, 6), generator=g), "label": {"soft_label": soft}}


def test_soft_dice_handler_in_an_engine():
    # decollated outputs, two images per iteration, the bundles' default keys (prob, label.soft_label)
    batches = [[_item(0), _item(1)], [_item(2)]]
    engine = Engine(lambda e, b: b)
    SoftDice().attach(engine, "val_soft_dice")
    engine.run(batches, max_epochs=1)
    items = [it for b in batches for it in b]
    per_image = soft_dice(
        torch.stack([it["prob"] for it in items]), torch.stack([it["label"]["soft_label"] for it in items])
    )
    assert engine.state.metrics["val_soft_dice"] == pytest.approx(per_image.mean().item(), rel=1e-6)
    torch.testing.assert_close(engine.state.metric_details["val_soft_dice"], per_image)


def test_soft_dice_handler_options_and_known_answer():
    # prob == soft label at 0.5 / 0 pixels: at every threshold prediction and label coincide -> soft Dice 1;
    # with a batch-first (y_pred, y) output and mean_batch: one value per structure
    y = torch.tensor([[[[0.5, 0.0], [1.0, 0.0]]]])
    engine = Engine(lambda e, b: b)
    handler = SoftDice(
        thresholds=(0.25, 0.75), reduction="mean_batch", output_transform=lambda o: o, save_details=False
    )
    handler.attach(engine, "sd")
    engine.run([(y, y), (torch.zeros_like(y), y)], max_epochs=1)
    # second image: empty prediction; label > 0.25 on 2 pixels, > 0.75 on 1 -> Dice ~0 at both thresholds
    assert engine.state.metrics["sd"] == pytest.approx(0.5, abs=1e-6)
    assert handler.metric_fn.thresholds == (0.25, 0.75)


def test_soft_dice_handler_reads_other_keys():
    item = {"pred_prob": torch.ones(1, 2, 2), "target": torch.ones(1, 2, 2)}
    engine = Engine(lambda e, b: b)
    SoftDice(output_transform=from_engine_output(["pred_prob", "target"])).attach(engine, "sd")
    engine.run([[item]], max_epochs=1)
    assert engine.state.metrics["sd"] == pytest.approx(1.0)
