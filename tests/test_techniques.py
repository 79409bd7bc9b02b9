"""The engine's general training techniques (the `fast` recipe is made of them), each on its own."""

import copy
import csv
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from runs import snapshot, stop_at, tiny_cfg

import zoo
from zoo.data import alternating_flip_mask
from zoo.engine import RECIPES, Trainer, autocast, build_config
from zoo.engine.evaluate import tta_logits
from zoo.engine.lookahead import Lookahead
from zoo.engine.optim import build_optimizer, build_scheduler, norm_parameters
from zoo.errors import ConfigError


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    idx = torch.arange(1000)
    first = alternating_flip_mask(idx, 0, seed=3, num_images=1000)
    assert 400 < int(first.sum()) < 600  # a coin per image in the first epoch
    assert torch.equal(alternating_flip_mask(idx, 1, seed=3, num_images=1000), ~first)
    assert torch.equal(alternating_flip_mask(idx, 2, seed=3, num_images=1000), first)
    assert torch.equal(alternating_flip_mask(idx[10:20], 1, seed=3, num_images=1000), ~first[10:20])  # by image
    assert not torch.equal(alternating_flip_mask(idx, 0, seed=4, num_images=1000), first)


def test_tta_levels():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.Flatten(), nn.LazyLinear(10))
    plain = net(x)
    assert torch.equal(tta_logits(net, x, 0)[0], plain)
    assert torch.allclose(tta_logits(net, x, 1)[1], (plain + net(x.flip(3))) / 2)
    shifted = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")[:, :, :8, :8]
    assert not torch.allclose(tta_logits(net, x, 2)[2], tta_logits(net, x, 1)[1])
    # a model that sees only the mean colour is blind to mirrors but not to reflect-padded shifts
    mean_colour = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))
    assert torch.allclose(tta_logits(mean_colour, x, 1)[1], mean_colour(x), atol=1e-6)
    other = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")[:, :, 2:, 2:]
    expected = mean_colour(x) / 2 + (mean_colour(shifted) + mean_colour(other)) / 4
    assert torch.allclose(tta_logits(mean_colour, x, 2)[2], expected, atol=1e-6)
    with pytest.raises(ValueError, match="0, 1 or 2"):
        tta_logits(net, x, 3)


def test_lookahead_pulls_weights_to_a_slow_average():
    net = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(net.weight)
    la = Lookahead(net, total_steps=10, every=5, base_decay=0.5)
    assert la.decay(0) == 0 and la.decay(10) == pytest.approx(0.5**5)
    with torch.no_grad():
        net.weight.fill_(1.0)
    la.update(4)  # not a lookahead step
    assert net.weight.flatten().tolist() == [1.0, 1.0]
    la.update(10)  # decay 1/32: slow = 1/32 * 0 + 31/32 * 1, and the model takes it
    assert net.weight.flatten().tolist() == pytest.approx([31 / 32] * 2)
    with torch.no_grad():
        net.weight.fill_(5.0)
    la.finish()  # the model becomes the slow weights
    assert net.weight.flatten().tolist() == pytest.approx([31 / 32] * 2)
    other = Lookahead(nn.Linear(2, 1, bias=False), total_steps=10)
    other.load_state_dict(la.state_dict())
    assert torch.equal(other.slow["weight"], la.slow["weight"])


def test_norm_lr_scale_and_decoupled_weight_decay():
    cfg = build_config(
        "resnet20",
        overrides={
            "lr": 0.4,
            "weight_decay": 0.01,
            "norm_lr_scale": 8.0,
            "decoupled_wd": True,
            "no_decay_norm_bias": False,
        },
    )
    model = zoo.create("resnet20")
    opt = build_optimizer(model, cfg)
    norm_ids = {id(p) for p in norm_parameters(model)}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    for group in opt.param_groups:
        in_norm = {id(p) in norm_ids for p in group["params"]}
        assert len(in_norm) == 1
        assert group["lr"] == pytest.approx(0.4 * (8.0 if in_norm.pop() else 1.0))
        assert group["lr"] * group["weight_decay"] == pytest.approx(0.01)  # the same decay per step for all
    coupled = build_optimizer(model, build_config("resnet20", overrides={"lr": 0.4, "weight_decay": 0.01}))
    assert {g["weight_decay"] for g in coupled.param_groups} == {0.01, 0.0}


@pytest.mark.parametrize("schedule", ["linear", "onecycle", "cosine"])
def test_schedules_keep_per_group_learning_rates(schedule):
    cfg = build_config(
        "modern_gap_cnn",
        overrides={
            "lr": 1.0,
            "norm_lr_scale": 10.0,
            "schedule": schedule,
            "epochs": 10,
            "warmup_epochs": 2,
            "warmup_start_factor": 0.2,
            "final_lr_factor": 0.05,
        },
    )
    opt = build_optimizer(zoo.create("modern_gap_cnn"), cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=10)
    lrs = []
    for _ in range(100):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    peak = [max(col) for col in zip(*lrs)]
    assert sorted({round(p, 6) for p in peak}) == pytest.approx([1.0, 10.0])
    if schedule == "linear":
        assert lrs[0][0] == pytest.approx(0.2) and lrs[20][0] == pytest.approx(1.0)
        assert lrs[99][0] == pytest.approx(1.0 - 0.95 * 79 / 80)  # one step short of final_lr_factor
        assert all(a >= b for a, b in zip((r[0] for r in lrs[20:]), (r[0] for r in lrs[21:])))


def test_freeze_norm_scale_and_stem_and_data_init(cifar10_dir, tmp_path):
    cfg = tiny_cfg(
        cifar10_dir,
        tmp_path,
        model="airbench94_net",
        run_name="a",
        epochs=3,
        lr=0.05,
        freeze_norm_scale=True,
        data_init=32,
        freeze={"stem": 1},
        flip_mode="alternate",
        lookahead=True,
        lookahead_every=2,
    )
    trainer = Trainer(cfg)
    stem_w = trainer.model.stem.conv.weight.detach().clone()
    reference = zoo.create("airbench94_net")
    reference.init_whitening(
        zoo.data.normalize(trainer.train_images[:32], trainer.mean, trainer.std, channels_last=False)
    )
    assert torch.allclose(stem_w, reference.stem.conv.weight, atol=1e-6)  # whitened from the first 32 images
    bias_after = {}

    def record(t, epoch, step):
        bias_after[(epoch, step)] = t.model.stem.conv.bias.detach().clone()

    trainer.callbacks.append(record)
    trainer.fit()
    assert torch.equal(trainer.model.stem.conv.weight, stem_w)  # the whitening filters never train
    assert all(bool((p == 1).all()) for p in norm_parameters(trainer.model, weights_only=True))
    steps = trainer.steps_per_epoch
    epoch1 = [bias_after[(0, s)] for s in range(steps)]
    assert not torch.equal(epoch1[0], epoch1[-1])  # the stem bias trains in epoch 1 ...
    later = [bias_after[(e, s)] for e in (1, 2) for s in range(steps) if (e, s) != (2, steps - 1)]
    assert all(torch.equal(b, later[0]) for b in later[:-1])  # ... not after (lookahead may average it back)


def test_freeze_stops_named_submodules_and_their_gradients(cifar10_dir, tmp_path):
    """Progressive freezing: the stem never trains, layers.0 in epoch 1 only; from epoch 2 neither gets gradients
    while the layers after them keep training."""
    freeze = {"stem": 0, "layers.0": 1}
    cfg = tiny_cfg(cifar10_dir, tmp_path, model="airbench94_net", epochs=3, lr=0.05, freeze=freeze)
    trainer, seen = Trainer(cfg), {}

    def record(t, epoch, step):
        seen[epoch, step] = {n: p.detach().clone() for n, p in t.model.named_parameters() if n.startswith("layers.")}
        seen[epoch, "grads"] = {n for n, p in t.model.named_parameters() if p.grad is not None}

    trainer.callbacks.append(record)
    trainer.fit()
    last = trainer.steps_per_epoch - 1
    early, late = "layers.0.conv1.weight", "layers.1.conv1.weight"
    assert not torch.equal(seen[0, 0][early], seen[0, last][early])  # trains in epoch 1 ...
    assert torch.equal(seen[0, last][early], seen[2, last][early])  # ... and not after
    assert not torch.equal(seen[1, 0][late], seen[2, last][late])  # the rest still trains
    assert early in seen[0, "grads"] and not any(n.startswith(("layers.0", "stem")) for n in seen[2, "grads"])
    assert not any(n.startswith("stem") for n in seen[0, "grads"])
    with pytest.raises(ConfigError, match="no submodule 'layers.9'; its top-level ones: stem, layers, head"):
        Trainer(tiny_cfg(cifar10_dir, tmp_path, model="airbench94_net", freeze={"layers.9": 1}))
    for bad in ({"stem": -1}, {"stem": 1.5}, {"stem": True}, ["stem"]):
        with pytest.raises(ConfigError, match="freeze must be a JSON object of names to integers >= 0"):
            tiny_cfg(cifar10_dir, tmp_path, model="airbench94_net", freeze=bad)


def test_data_init_needs_a_model_that_supports_it(cifar10_dir, tmp_path):
    with pytest.raises(ValueError, match="init_from_data"):
        Trainer(tiny_cfg(cifar10_dir, tmp_path, data_init=8))
    with pytest.raises(ValueError, match="flip_mode"):
        Trainer(tiny_cfg(cifar10_dir, tmp_path, flip_mode="sometimes"))


def test_progressive_resizing_must_start_below_the_image_size(cifar10_dir, tmp_path):
    with pytest.raises(ConfigError, match="resize_start must be below the training images' 32 pixels, got 32"):
        Trainer(tiny_cfg(cifar10_dir, tmp_path, resize_start=32))
    assert not list(tmp_path.glob("*/run.json"))  # refused before a run folder exists


def test_freezing_zero_initialised_scales_warns(cifar10_dir, tmp_path):
    with pytest.warns(UserWarning, match="zero_init_last"):
        Trainer(
            tiny_cfg(
                cifar10_dir, tmp_path, model="resnet20", freeze_norm_scale=True, model_kwargs={"zero_init_last": True}
            )
        )


def test_fast_recipe_resumes_bitwise(cifar10_dir, tmp_path):
    """Lookahead, alternating flips, stem freezing and the linear schedule all survive an interruption."""
    fast = {k: v for k, v in RECIPES["fast"].items() if k not in ("batch_size", "epochs", "data_init")}
    overrides = {
        **fast,
        "model": "airbench94_net",
        "epochs": 3,
        "data_init": 32,
        "freeze": {"stem": 1},
        "lookahead_every": 2,
        "lr": 0.1,
    }
    reference = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="ref", **overrides))
    summary = reference.fit()
    assert summary["tta_level"] == 2 and "test_top1_tta" in summary
    stopped = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="cut", **overrides), callbacks=[stop_at(1, 1)])
    assert stopped.fit()["status"] == "interrupted"
    resumed = Trainer.resume(tmp_path / "cut")
    assert resumed.fit()["status"] == "finished"
    ref, res = snapshot(reference), snapshot(resumed)
    assert all(torch.equal(ref[k], res[k]) for k in ref)


def test_muon_and_progressive_resizing_train_and_resume_bitwise(cifar10_dir, tmp_path, capsys):
    overrides = {
        "model": "airbench94_net",
        "optimizer": "muon",
        "resize_start": 16,
        "resize_epochs": 2,
        "epochs": 3,
        "lr": 0.05,
        "data_init": 16,
    }
    sizes = []
    reference = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="ref", **overrides))
    assert reference.augment.names == ("crop", "flip", "resize")

    def record(module, args, out):
        if module.training:
            sizes.append(args[0].shape[-1])

    reference.model.stem.register_forward_hook(record)
    reference.fit()
    ns = str(reference.optimizer.muon.ns_dtype).removeprefix("torch.")
    assert f"Muon's Newton-Schulz in {ns} |" in capsys.readouterr().out  # the start line says what it runs in
    steps = reference.steps_per_epoch
    assert sizes[:steps] == [16] * steps and sizes[steps : 2 * steps] == [24] * steps and 32 in sizes
    stopped = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="cut", **overrides), callbacks=[stop_at(1, 1)])
    assert stopped.fit()["status"] == "interrupted"
    resumed = Trainer.resume(tmp_path / "cut")
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(snapshot(reference).values(), snapshot(resumed).values()))
    sessions = json.loads((tmp_path / "cut" / "run.json").read_text())["sessions"]
    ns = str(resumed.optimizer.muon.ns_dtype).removeprefix("torch.")
    assert [s["muon_precision"] for s in sessions] == [ns, ns]  # the dtype Newton-Schulz ran in, per session
    other = "bf16" if ns == "float32" else "fp32"
    moved = Trainer.resume(tmp_path / "cut", overrides={"muon_precision": other})  # a machine with(out) bf16 units
    assert [c for c in moved.run.changes(moved._session()) if c.startswith("muon_precision (")]


def test_batch_selection_trains_on_what_the_proxy_finds_hardest(cifar10_dir, tmp_path):
    overrides = {"model": "airbench94_net", "data_init": 16, "select_fraction": 0.25, "select_every": 2}
    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, **overrides))
    plain = Trainer(tiny_cfg(cifar10_dir, tmp_path, **{**overrides, "select_fraction": 1.0}))
    assert plain.selector is None and trainer.step_images == 4  # 0.25 of batch 16
    assert all(torch.equal(a, b) for a, b in zip(snapshot(trainer).values(), snapshot(plain).values()))
    selector = trainer.selector
    assert selector.proxy.num_features == 64 and not selector.proxy.stem.conv.weight.requires_grad  # whitened
    x, y = trainer.batch(torch.arange(len(trainer.train_split)), 0, 0)
    before = copy.deepcopy(selector.proxy).train()
    with torch.no_grad(), autocast(trainer.device, trainer.amp_dtype):
        losses = F.cross_entropy(before(x).float(), y, reduction="none")
    hardest = losses.topk(4).indices.sort().values
    kept_x, kept_y = selector(x, y, step=1)  # not a proxy step
    assert torch.equal(kept_x, x[hardest]) and torch.equal(kept_y, y[hardest])
    assert all(torch.equal(a, b) for a, b in zip(before.parameters(), selector.proxy.parameters()))
    selector(x, y, step=2)  # a proxy step, on the kept four
    assert not all(torch.equal(a, b) for a, b in zip(before.parameters(), selector.proxy.parameters()))
    with pytest.raises(ConfigError, match="select_proxy: .*nope"):
        Trainer(tiny_cfg(cifar10_dir, tmp_path, **{**overrides, "select_proxy": "nope"}))
    widths = {"select_proxy_kwargs": {"widths": [32, 64, 64]}}  # airbench94_net's, which vgg11_bn does not take
    with pytest.raises(ConfigError, match=r"select_proxy_kwargs \{'widths': \[32, 64, 64\]\}: vgg11_bn does not take"):
        Trainer(tiny_cfg(cifar10_dir, tmp_path, **{**overrides, "select_proxy": "vgg11_bn", **widths}))
    other = Trainer(tiny_cfg(cifar10_dir, tmp_path, **{**overrides, "select_proxy": "resnet20"}))  # its own widths
    assert sum(p.numel() for p in other.selector.proxy.parameters()) == zoo.model_info("resnet20").params


def test_batch_selection_trains_and_resumes_bitwise(cifar10_dir, tmp_path, capsys):
    overrides = {"model": "resnet20", "epochs": 3, "select_fraction": 0.5, "select_every": 3, "lr": 0.05}
    reference = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="ref", **overrides))
    summary = reference.fit()
    assert "batch selection: the hardest 8 of 16 by airbench94_net |" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "ref" / "metrics.csv").open()))
    assert summary["status"] == "finished" and len(rows) == 3
    stopped = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="cut", **overrides), callbacks=[stop_at(1, 2)])
    assert stopped.fit()["status"] == "interrupted"
    resumed = Trainer.resume(tmp_path / "cut")
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(snapshot(reference).values(), snapshot(resumed).values()))
    proxies = reference.selector.proxy.state_dict(), resumed.selector.proxy.state_dict()
    assert all(torch.equal(proxies[0][k], proxies[1][k]) for k in proxies[0])
