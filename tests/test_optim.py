"""The learning-rate schedule is one function of the step: checked step for step against torch's schedulers
as the engine built them before (`reference_scheduler` is that code), and wrapped in LambdaLR."""

import pytest
import torch

import zoo
from zoo.engine import build_config, lr_factor
from zoo.engine.optim import build_optimizer, build_scheduler, param_groups


def reference_scheduler(opt, cfg, steps_per_epoch):
    """The engine's schedules before they became `lr_factor`: torch.optim.lr_scheduler objects, chained."""
    sched = torch.optim.lr_scheduler
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.schedule == "onecycle" and total >= 3:
        pct = min(max(warmup / total if warmup else 0.25, 2 / total), 1 - 1 / total)
        return sched.OneCycleLR(
            opt,
            max_lr=[g["lr"] for g in opt.param_groups],
            total_steps=total,
            pct_start=pct,
            anneal_strategy="linear",
            cycle_momentum=False,
            div_factor=25.0,
            final_div_factor=1e3,
        )
    if cfg.schedule == "onecycle":
        return sched.ConstantLR(opt, factor=1.0, total_iters=0)
    if cfg.schedule == "linear":
        down = sched.LinearLR(opt, start_factor=1.0, end_factor=cfg.final_lr_factor, total_iters=total - warmup)
        if not warmup:
            return down
        up = sched.LinearLR(opt, start_factor=cfg.warmup_start_factor, end_factor=1.0, total_iters=warmup)
        return sched.SequentialLR(opt, [up, down], milestones=[warmup])
    if cfg.schedule == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=total - warmup)
    elif cfg.schedule == "step":
        main = sched.MultiStepLR(opt, milestones=[int(0.5 * total) - warmup, int(0.75 * total) - warmup], gamma=0.1)
    else:
        main = sched.ConstantLR(opt, factor=1.0, total_iters=0)
    if not warmup:
        return main
    ramp = sched.LinearLR(opt, start_factor=cfg.warmup_start_factor, end_factor=1.0, total_iters=warmup)
    return sched.SequentialLR(opt, [ramp, main], milestones=[warmup])


CASES = [
    (schedule, epochs, spe, warmup)
    for schedule in ("onecycle", "linear", "cosine", "step", "constant")
    for epochs, spe in ((10, 7), (3, 1), (1, 2), (1, 1))
    for warmup in (0.0, 1.5)
]


@pytest.mark.parametrize(("schedule", "epochs", "steps_per_epoch", "warmup"), CASES)
def test_lr_factor_matches_the_torch_schedulers_step_for_step(schedule, epochs, steps_per_epoch, warmup):
    cfg = build_config(
        "resnet20",
        overrides={
            "schedule": schedule,
            "epochs": epochs,
            "warmup_epochs": warmup,
            "lr": 0.4,
            "warmup_start_factor": 0.2,
            "final_lr_factor": 0.07,
        },
    )
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=cfg.lr)
    reference = reference_scheduler(opt, cfg, steps_per_epoch)
    for step in range(epochs * steps_per_epoch):
        expected = opt.param_groups[0]["lr"]
        assert cfg.lr * lr_factor(step, cfg, steps_per_epoch) == pytest.approx(expected, rel=1e-9, abs=1e-15), step
        opt.step()
        reference.step()


def test_the_lambda_scheduler_sets_every_group_and_resumes_from_a_step():
    cfg = build_config("airbench94_net", recipe="fast", overrides={"epochs": 4})
    model = zoo.create("airbench94_net")
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5)
    peaks = [g["lr"] for g in param_groups(model, cfg)]
    seen = []
    for step in range(20):
        seen.append([g["lr"] for g in opt.param_groups])
        assert seen[-1] == pytest.approx([p * lr_factor(step, cfg, 5) for p in peaks])
        opt.step()
        sched.step()
    assert lr_factor(20, cfg, 5) == lr_factor(19, cfg, 5) > 0  # past the end: the last rate, never negative
    fresh_opt = build_optimizer(model, cfg)
    fresh = build_scheduler(fresh_opt, cfg, steps_per_epoch=5)
    fresh.last_epoch = 12  # what a resume sets
    fresh_opt.step()  # zero grads: no change; keeps torch's step-order check quiet
    fresh.step()
    assert fresh.optimizer.param_groups[0]["lr"] == pytest.approx(seen[13][0])


def test_muon_orthogonalises_each_conv_filter_bank_and_sgd_takes_the_rest():
    from zoo.engine.optim import MuonSGD, conv_filters

    torch.manual_seed(0)
    model = zoo.create("resnet20")
    cfg = build_config("resnet20", overrides={"optimizer": "muon", "muon_lr": 0.1, "muon_momentum": 0.0})
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, MuonSGD) and {id(p) for p in opt.muon.param_groups[0]["params"]} == {
        id(p) for p in conv_filters(model)
    }
    assert all(p.ndim < 4 for g in opt.sgd.param_groups for p in g["params"])
    filt = model.stages[1][0].conv1.conv.weight
    before = filt.detach().clone()
    torch.nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.arange(8)).backward()
    opt.step()
    update = (before - filt.detach()).view(filt.shape[0], -1) / 0.1  # a step of Newton-Schulz's near-orthogonal matrix
    singular = torch.linalg.svdvals(update)
    assert filt.shape == before.shape and singular.min() > 0.5 and singular.max() < 1.5
    state = opt.state_dict()
    assert set(state) == {"muon", "sgd"}
    fresh = build_optimizer(model, cfg)
    fresh.load_state_dict(state)
    assert torch.equal(
        fresh.muon.state_dict()["state"][0]["momentum_buffer"], state["muon"]["state"][0]["momentum_buffer"]
    )


def test_newton_schulz_in_fp32_is_torchs_iteration_without_the_bf16_rounding():
    from torch.optim._muon import _zeropower_via_newtonschulz as torch_ns

    from zoo.engine.optim import newton_schulz

    torch.manual_seed(0)
    for shape in [(64, 216), (256, 64)]:  # wide and tall: torch transposes the tall one
        g = torch.randn(shape)
        args = ((3.4445, -4.775, 2.0315), 5, 1e-7)
        assert torch.equal(newton_schulz(g, *args, dtype=torch.bfloat16), torch_ns(g, *args))
        ours = newton_schulz(g, *args, dtype=torch.float32)
        assert ours.dtype == torch.float32 and ours.shape == shape
        assert torch.allclose(ours, torch_ns(g, *args).float(), atol=0.05)  # bf16 keeps ~3 significant digits
        assert not torch.equal(ours, torch_ns(g, *args).float())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_muon_precision_sets_the_dtype_of_the_orthogonalization_and_leaves_torch_as_it_was(precision, monkeypatch):
    import torch.optim._muon as torch_muon

    from zoo.engine.optim import muon_dtype

    torch_ns = torch_muon._zeropower_via_newtonschulz
    seen = []
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda t: seen.append(t.shape) or t.to(torch.bfloat16))
    torch.manual_seed(0)
    model = zoo.create("resnet20")
    opt = build_optimizer(model, build_config("resnet20", overrides={"optimizer": "muon", "muon_precision": precision}))
    assert opt.muon.ns_dtype == muon_dtype(precision, torch.device("cpu"))
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
    opt.step()
    assert torch_muon._zeropower_via_newtonschulz is torch_ns
    assert len(seen) == (len(opt.muon.param_groups[0]["params"]) if precision == "bf16" else 0)


def test_muon_precision_auto_is_bf16_except_on_a_device_without_bf16_units(monkeypatch):
    from zoo.engine import optim

    monkeypatch.setattr(optim, "has_bf16_units", lambda device: device.type == "cuda")
    assert optim.muon_dtype("auto", torch.device("cpu")) == torch.float32
    assert optim.muon_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert optim.muon_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert optim.muon_dtype("fp32", torch.device("cuda")) == torch.float32


def test_progressive_resizing_grows_linearly_to_the_full_size():
    from zoo.data.augment import resize_size

    cfg = build_config("resnet20", overrides={"resize_start": 16, "resize_epochs": 4})
    assert [resize_size(cfg, e, 32) for e in range(6)] == [16, 20, 24, 28, 32, 32]
    assert resize_size(build_config("resnet20"), 0, 32) == 32  # off by default


def test_muon_normalize_keeps_each_filter_bank_at_norm_sqrt_out():
    torch.manual_seed(0)
    model = zoo.create("resnet20")
    cfg = build_config("resnet20", overrides={"optimizer": "muon", "muon_normalize": True, "muon_lr": 1e-3})
    opt = build_optimizer(model, cfg)
    filt = model.stages[2][0].conv2.conv.weight
    with torch.no_grad():
        filt.mul_(7.0)
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
    opt.step()
    assert filt.norm().item() == pytest.approx(filt.shape[0] ** 0.5, rel=0.01)  # rescaled, then a small step
