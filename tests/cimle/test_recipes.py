"""The recipes' official settings (issue 16 items 3-6, 8): SR ×8 architecture, L, optimiser and
decay, the three SR stages, the layout schedule; each checked against the official values."""

from __future__ import annotations

import torch

import synth
from synth.train import TrainerConfig
from synth.train.optimization import schedule_factor
from synth_cimle import SR_STAGES, infer_srim_config
from synth_cimle.recipes import RECIPES, TRAIN

from .test_convert import _OfficialIMRRDBNet

_SMALL = {"generator": {"nf": 8, "nb": 1, "gc": 4}, "losses": {"imle": {"weights": "none"}}}


def test_sr_x8_fits_official_checkpoints():
    """Every official SRIM config: nf 64, nb 24, gc 128, 5 code channels, ×8."""
    spec, _ = RECIPES["cimle.sr_x8"]
    with torch.device("meta"):  # shapes only
        official = _OfficialIMRRDBNet(5, 64, 24, 128, 3)
    cfg = infer_srim_config(official.state_dict())
    assert {k: spec["generator"][k] for k in cfg} == cfg
    assert spec["objective"]["inner_steps"] == 200000  # paper §5.1.4 L and official num_day


def test_sr_x8_optimiser_and_decay_follow_the_official_config():
    t = TrainerConfig.model_validate(TRAIN["cimle.sr_x8"])
    assert t.optimizer.lr == 1.5e-4 and t.optimizer.betas == (0.9, 0.999)
    assert t.batch_size == 640
    # official: ×0.5 at 50k/100k/200k/300k updates; a round is 200k updates
    official = [
        0.5 ** sum(u >= m for m in (50_000, 100_000, 200_000, 300_000)) for u in (0, 400_000)
    ]
    assert [schedule_factor(r, t) for r in (0, 2)] == official  # from round 2 on: equal
    assert schedule_factor(1, t) == 0.5**3  # round 1 (official: 1/8 then 1/16)


def test_sr_stages_compose_and_validate():
    assert list(SR_STAGES) == ["pretrain", "imle", "finetune"]
    for name, (changes, train, _) in SR_STAGES.items():
        TrainerConfig.model_validate(train)
        spec = {"base": "cimle.sr_x8", **_SMALL}
        for part, fields in changes.items():
            spec[part] = {**spec.get(part, {}), **fields}
        model = synth.compose(spec)
        assert model.generator.config.upsample == ("bilinear" if name == "finetune" else "nearest")
    pre_changes, pre_train, _ = SR_STAGES["pretrain"]
    model = synth.compose({"base": "cimle.sr_x8", **_SMALL, "injector": pre_changes["injector"]})
    lr = torch.zeros(2, 3, 4, 4)
    codes = model.injector.prior(synth.Condition(image=lr, size=(32, 32)))
    assert torch.equal(codes.spatial, torch.zeros(2, 5, 4, 4))  # z = 0
    assert pre_train["optimizer"]["lr"] == 2e-4 and pre_train["batch_size"] == 8
    assert SR_STAGES["finetune"][1]["optimizer"]["lr"] == 1e-4


def test_gta5_layout_schedule_is_the_official_reinit_point():
    spec, _ = RECIPES["cimle.gta5_layout"]
    assert spec["objective"]["reinit_injector_at"] == 6
    t = TrainerConfig.model_validate(TRAIN["cimle.gta5_layout"])
    lrs = [t.optimizer.lr * schedule_factor(r, t) for r in (0, 5, 6, 9)]
    torch.testing.assert_close(torch.tensor(lrs), torch.tensor([1e-4, 1e-4, 1e-5, 1e-5]))
