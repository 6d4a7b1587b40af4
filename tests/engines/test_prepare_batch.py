from __future__ import annotations

import pytest
import torch
from monai.data import DataLoader, MetaTensor
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.inferers import SimpleInferer

from monai_lexu.engines import PrepareMultiRaterBatch
from monai_lexu.inferers import MultiHeadInferer
from monai_lexu.losses import LEXULoss
from monai_lexu.networks import MultiHeadUNet


def _batch(b: int = 2) -> dict:
    torch.manual_seed(0)
    raters = (torch.rand(b, 3, 2, 8, 8) > 0.5).float()
    valid = torch.tensor([[True, True, False]] * b)
    return {
        "image": MetaTensor(torch.rand(b, 1, 8, 8)),
        "raters": raters,
        "rater_valid": valid,
        "soft_label": raters[:, :2].mean(1),
        "rater_var": raters[:, :2].var(1),
        "name": ["a", "b"][:b],
    }


def test_moves_present_keys_only():
    batch = _batch()
    del batch["rater_var"]
    image, target = PrepareMultiRaterBatch()(batch, device="meta", non_blocking=False)
    assert image.device.type == "meta" and isinstance(image, MetaTensor)
    assert set(target) == {"raters", "rater_valid", "soft_label"}
    assert all(v.device.type == "meta" for v in target.values())
    assert target["rater_valid"].dtype == torch.bool


def test_to_kwargs_apply_to_floating_tensors_only():
    batch = _batch()
    image, target = PrepareMultiRaterBatch()(batch, device="cpu", dtype=torch.float64)
    assert image.dtype == torch.float64
    assert target["raters"].dtype == torch.float64 and target["rater_var"].dtype == torch.float64
    assert target["rater_valid"].dtype == torch.bool
    assert torch.equal(target["raters"], batch["raters"].double())
    assert torch.equal(target["rater_valid"], batch["rater_valid"])


def test_custom_keys_and_errors():
    batch = _batch()
    batch["img"] = batch.pop("image")
    image, target = PrepareMultiRaterBatch(image_key="img", target_keys=["soft_label"])(batch)
    assert torch.equal(image, batch["img"]) and list(target) == ["soft_label"]
    with pytest.raises(ValueError, match="no image key 'image'"):
        PrepareMultiRaterBatch()(batch)
    with pytest.raises(ValueError, match="dict batch"):
        PrepareMultiRaterBatch()([torch.zeros(1)])
    batch["image"] = torch.zeros(1)
    batch["raters"] = [1, 2]
    with pytest.raises(ValueError, match=r"batch\['raters'\] must be a tensor"):
        PrepareMultiRaterBatch()(batch)


def _dataset(n: int = 4) -> list[dict]:
    torch.manual_seed(1)
    items = []
    for _ in range(n):
        raters = (torch.rand(3, 2, 16, 16) > 0.5).float()
        raters[2] = 1.0  # padded rater, must be ignored
        items.append(
            {
                "image": torch.rand(1, 16, 16),
                "raters": raters,
                "rater_valid": torch.tensor([True, True, False]),
                "soft_label": raters[:2].mean(0),
                "rater_var": raters[:2].var(0),
            }
        )
    return items


def test_supervised_trainer_and_evaluator_end_to_end():
    torch.manual_seed(2)
    net = MultiHeadUNet(2, 1, 2, backbone="plain", features=(4, 8, 16))
    loss = LEXULoss(net.num_heads, beta=5.0, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in net.parameters()]
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=DataLoader(_dataset(), batch_size=2),
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-3),
        loss_function=loss,
        inferer=SimpleInferer(),
        prepare_batch=PrepareMultiRaterBatch(),
        decollate=False,
    )
    trainer.run()
    assert trainer.state.iteration == 2
    assert torch.isfinite(trainer.state.output["loss"])
    assert trainer.state.output["loss"].item() == pytest.approx(loss.last_terms["loss"].item(), rel=1e-6)
    assert trainer.state.output["pred"].shape == (2, net.num_heads * 2, 16, 16)
    assert set(trainer.state.output["label"]) == {"raters", "rater_valid", "soft_label", "rater_var"}
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))

    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(_dataset(2), batch_size=2),
        network=net,
        inferer=MultiHeadInferer(net.num_heads),
        prepare_batch=PrepareMultiRaterBatch(),
    )
    evaluator.run()
    out = evaluator.state.output  # decollated: one dict per sample, "label" a per-sample dict
    assert len(out) == 2
    pred = torch.stack([o["pred"] for o in out])
    assert pred.shape == (2, 4, 16, 16)
    assert (pred[:, :2] >= 0).all() and (pred[:, :2] <= 1).all() and (pred[:, 2:] >= 0).all()
    assert out[1]["label"]["raters"].shape == (3, 2, 16, 16)
    assert torch.equal(out[1]["label"]["soft_label"], _dataset(2)[1]["soft_label"])
