"""The engine and ``python -m zoo.train`` end to end on tiny fake CIFAR data."""

import json
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from runs import snapshot, stop_at, tiny_cfg
from safetensors import safe_open

import zoo
from zoo.engine import (
    NonFiniteLossError,
    Trainer,
    build_config,
    load_checkpoint,
    resolve_device,
    resolve_precision,
    save_checkpoint,
)
from zoo.engine.config import load_config_file
from zoo.engine.device import Fp32Conv2d, apply_training_precision_policy, cpu_identity, fp32_strided_depthwise
from zoo.engine.run import describe_cpu, machine_info
from zoo.errors import CheckpointError, ConfigError
from zoo.train import main
from zoo.weights import read_weights

TINY = ["--epochs", "2", "--batch-size", "16", "--no-progress", "--eval-batch-size", "16"]


def test_cli_end_to_end(cifar10_dir, tmp_path, capsys):
    rc = main(["modern_gap_cnn", "--data-dir", str(cifar10_dir), "--out", str(tmp_path), "--name", "run", *TINY])
    assert rc == 0
    out = capsys.readouterr().out
    assert "device cpu" in out
    assert "Epoch [1/2], Training Loss: " in out and "Validation Loss: " in out and "Validation Accuracy: " in out
    run = tmp_path / "run"
    for name in (
        "run.json",
        "metrics.jsonl",
        "metrics.csv",
        "curves.png",
        "best.safetensors",
        "last.safetensors",
        "checkpoint.safetensors",
    ):
        assert (run / name).is_file(), name
    meta = json.loads((run / "run.json").read_text())
    assert meta["config"]["model"] == "modern_gap_cnn" and meta["config"]["seed"] == 0
    assert meta["argv"][:3] == ["python", "-m", "zoo.train"] and "torch" in meta["machine"]
    assert meta["result"]["status"] == "finished" and "git_commit" in meta
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) >= {"train_loss", "train_acc", "eval_loss", "eval_acc", "lr", "images_per_s"}
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,train_loss")
    model = zoo.load(run / "last.safetensors")
    assert model.zoo_cfg["metrics"]["test_top1"] == pytest.approx(meta["result"]["test_top1"])
    with safe_open(str(run / "last.safetensors"), "pt") as f:
        header = f.metadata()
    assert json.loads(header["recipe"]) == "default" and json.loads(header["seed"]) == 0
    assert "zoo.train" in json.loads(header["command"]) and json.loads(header["data"]) == "CIFAR-10"
    best = zoo.create("modern_gap_cnn", weights=run / "best.safetensors")
    assert best.zoo_cfg["metrics"]["selected_on"] == "test"


def test_curves_leave_pyplot_and_the_backend_alone(tmp_path, monkeypatch):
    """Training in a notebook must not switch its matplotlib backend: curves.png is drawn without pyplot."""
    import matplotlib

    from zoo.engine.run import plot_curves

    def no_backend_switch(*args, **kwargs):
        raise AssertionError("plot_curves switched the matplotlib backend")

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # importing pyplot now raises ImportError
    monkeypatch.setattr(matplotlib, "use", no_backend_switch)
    rows = [dict(epoch=e, train_loss=1 / e, eval_loss=1 / e, train_acc=e, eval_acc=e) for e in (1, 2)]
    assert plot_curves(rows, tmp_path / "c.png", "title")
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_a_failed_metrics_write_keeps_the_last_epochs_files(tmp_path, monkeypatch):
    """The metrics files are rewritten every epoch: a write that dies half way leaves the previous ones whole."""
    import csv

    from zoo.engine.run import RunDir

    run = RunDir(tmp_path)
    rows = [dict(epoch=1, train_loss=2.0, eval_loss=2.1, train_acc=10.0, eval_acc=11.0)]
    run.write_metrics(rows, plot=True, title="t")
    before = {name: (tmp_path / name).read_bytes() for name in ("metrics.csv", "curves.png")}

    def interrupted(self, rows):
        raise KeyboardInterrupt  # a Ctrl-C (or a kill) after the new file's header

    monkeypatch.setattr(csv.DictWriter, "writerows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.write_metrics([*rows, dict(rows[0], epoch=2)], plot=True, title="t")
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2  # written whole before the CSV
    assert (tmp_path / "metrics.csv").read_bytes() == before["metrics.csv"]
    assert (tmp_path / "curves.png").read_bytes() == before["curves.png"]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(("val_split", "final_test", "tested"), [(16, None, False), (0, False, False), (0, None, True)])
def test_the_test_split_is_read_only_where_asked(cifar10_dir, tmp_path, monkeypatch, val_split, final_test, tested):
    # a run that holds out images is where a recipe is chosen: its default leaves the test split to the final run
    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, val_split=val_split, final_test=final_test, run_name="q"))
    seen, evaluate = [], trainer.evaluate
    monkeypatch.setattr(trainer, "evaluate", lambda split, **kw: seen.append(split) or evaluate(split, **kw))
    summary = trainer.fit()
    assert (
        ("test_top1" in summary)
        == tested
        == ("test_top1" in zoo.load(tmp_path / "q" / "last.safetensors").zoo_cfg["metrics"])
    )
    assert sum(split is trainer.test_split for split in seen) == (trainer.cfg.epochs if not val_split else 0) + tested


def test_val_split_selects_on_validation_and_reports_test_separately(cifar10_dir, tmp_path):
    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, val_split=16, run_name="v", tta=True, final_test=True))
    summary = trainer.fit()
    assert summary["best"]["selected_on"] == "val" and "val_top1" in summary and "test_top1" in summary
    assert 0 <= summary["test_top1_tta"] <= 100
    # a TTA recipe can be chosen on the validation split alone: its TTA accuracy is there too
    assert summary["val_top1_tta"] == trainer.evaluate(trainer.val_split, tta=1)["top1"]
    assert zoo.load(tmp_path / "v" / "last.safetensors").zoo_cfg["metrics"]["test_top1_tta"] == pytest.approx(
        summary["test_top1_tta"]
    )
    rows = [json.loads(line) for line in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["eval_split"] == "val" for r in rows)


@pytest.mark.parametrize(("stop", "how"), [((0, 3), "request"), ((0, 1), "signal")], ids=["after-epoch", "sigterm"])
def test_resume_is_bitwise_identical(cifar10_dir, tmp_path, stop, how):
    overrides = {"ema": True, "schedule": "onecycle", "cutout": 4}
    reference = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="ref", **overrides))
    reference.fit()
    stopped = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="cut", **overrides), callbacks=[stop_at(*stop, how)])
    assert stopped.fit()["status"] == "interrupted"
    resumed = Trainer.resume(tmp_path / "cut")
    assert resumed.fit()["status"] == "finished"
    ref, res = snapshot(reference), snapshot(resumed)
    assert all(torch.equal(ref[k], res[k]) for k in ref)
    ref_ema = reference.ema.state_dict()
    assert all(torch.equal(v, resumed.ema.state_dict()[k]) for k, v in ref_ema.items())
    rows = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    first, second = json.loads((tmp_path / "cut" / "run.json").read_text())["sessions"]
    assert first["from"]["global_step"] == 0 and first["to"] == second["from"] and "legacy" not in first
    assert second["to"]["global_step"] == resumed.global_step and second["to"]["epoch"] == 2
    assert second["to"]["train_time_s"] == pytest.approx(resumed.train_time, abs=0.1)
    _, header = read_weights(tmp_path / "cut" / "last.safetensors")
    assert header["sessions"] == [first, second] and header["command"] == " ".join(first["argv"])


def test_a_killed_session_is_recorded_up_to_its_last_checkpoint(cifar10_dir, tmp_path):
    seen = []

    def read_record(trainer, epoch, step):  # the first step after the epoch-1 checkpoint: as if killed here
        if (epoch, step) == (1, 1):
            seen.append(json.loads((tmp_path / "k" / "run.json").read_text())["sessions"][-1])

    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="k"), callbacks=[read_record])
    trainer.fit()
    (record,) = seen
    assert record["to"]["epoch"] == 1 and record["to"]["step"] == 0
    assert record["to"]["global_step"] == trainer.steps_per_epoch and record["to"]["train_time_s"] > 0


def test_a_run_from_before_sessions_stops_with_one_clear_message(cifar10_dir, tmp_path):
    stopped = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="old"), argv=["first", "cmd"], callbacks=[stop_at(0, 2)])
    stopped.fit()
    path = tmp_path / "old" / "run.json"
    meta = json.loads(path.read_text())
    del meta["sessions"]  # what a zoo before 0.1's sessions wrote
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="written by a zoo before 0.1 recorded sessions.*started again"):
        Trainer.resume(tmp_path / "old", argv=["second", "--resume"])


def test_a_resumed_run_may_change_where_it_runs_but_not_what_it_trains(cifar10_dir, tmp_path, capsys):
    Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="cut"), callbacks=[stop_at(0, 1)]).fit()
    run = tmp_path / "cut"
    before = (run / "run.json").read_text()
    with pytest.raises(ValueError, match="epochs, lr cannot change"):
        Trainer.resume(run, overrides={"lr": 1.0, "epochs": 9, "threads": 1})
    with pytest.raises(SystemExit) as bad:
        main(["--resume", str(run), "--epochs", "9", "--label-smoothing", "0.1", "--device", "cpu"])
    assert bad.value.code == 2 and "--epochs, --label-smoothing: a resumed run keeps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["modern_gap_cnn", "--resume", str(run)])
    assert "give no MODEL" in capsys.readouterr().err
    assert (run / "run.json").read_text() == before  # refused before anything was written

    meta = json.loads(before)
    meta["sessions"][-1]["precision"] = "bfloat16"  # as if the first session ran on a bf16 machine
    meta["sessions"][-1]["machine"]["cpu_id"] = "family 26 model 2 stepping 0"  # of the same name, a VM's "AMD EPYC"
    (run / "run.json").write_text(json.dumps(meta))
    assert not (run / "curves.png").exists()  # the first session ran with plot=False
    argv = ["--resume", str(run), "--eval-batch-size", "7", "--data-dir", str(cifar10_dir), "--precision", "fp32"]
    assert main([*argv, "--plot"]) == 0
    assert (run / "curves.png").is_file()
    out = capsys.readouterr().out
    assert "resumed with a different cpu_id (family 26 model 2 stepping 0 -> " in out
    assert "precision (bfloat16 -> float32): the run continues, but not bit for bit" in out
    after = json.loads((run / "run.json").read_text())
    assert after["config"] == meta["config"] and after["config"]["eval_batch_size"] == 16  # the run's own config
    assert after["sessions"][-1]["argv"][3:7] == ["--resume", str(run), "--eval-batch-size", "7"]  # its session's
    assert read_weights(run / "last.safetensors")[1]["config"]["eval_batch_size"] == 7  # what the session ran with


def test_git_commit_prefers_the_environment_for_copies_of_the_tree(monkeypatch):
    from zoo.engine import run as trainer

    monkeypatch.setenv("ZOO_GIT_COMMIT", "0123abc")  # wins even over a (possibly stale) .git in the copy
    assert trainer.git_commit() == "0123abc"
    monkeypatch.delenv("ZOO_GIT_COMMIT")
    assert (
        trainer.git_commit()
        == subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    )

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(trainer.subprocess, "run", no_git)
    assert trainer.git_commit() is None


@pytest.mark.slow
def test_checkpoint_survives_a_killed_writer(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"i": 0, "t": torch.zeros(4)})
    code = textwrap.dedent(f"""
        import torch
        from zoo.engine import save_checkpoint
        i = 1
        while True:
            save_checkpoint({str(path)!r}, {{"i": i, "t": torch.full((4_000_000,), float(i))}})
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = 60
        import time

        start = time.time()
        while time.time() - start < deadline:  # wait until it is writing big checkpoints
            if path.stat().st_size > 1_000_000:
                break
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = load_checkpoint(path)  # whatever moment the kill hit, a complete checkpoint is there
    assert state["i"] >= 1 and torch.all(state["t"] == float(state["i"]))


def test_non_finite_loss_stops_with_epoch_and_step(cifar10_dir, tmp_path):
    def poison(trainer, epoch, step):
        if (epoch, step) == (1, 1):
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))

    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="nan"), callbacks=[poison])
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 3"):
        trainer.fit()
    run = tmp_path / "nan"
    assert not (run / "last.safetensors").exists()
    best = zoo.create("modern_gap_cnn", weights=run / "best.safetensors")  # from epoch 1, finite
    assert all(torch.isfinite(p).all() for p in best.parameters())


def test_missing_data_offline_is_a_clear_cli_error(tmp_path, capsys):
    rc = main(["modern_gap_cnn", "--data-dir", str(tmp_path / "empty"), "--no-download", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "cifar10 not found in" in err and "data_batch_1.bin" in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"eval_batch_size": -5}, "eval_batch_size must be an integer >= 1"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"lr": -0.1}, "lr must be a number >= 0"),
        ({"lr": float("nan")}, "lr must be a number >= 0"),
        ({"momentum": 1.0}, "momentum must be in [0, 1)"),
        ({"weight_decay": -1e-4}, "weight_decay must be a number >= 0"),
        ({"label_smoothing": 1.5}, "label_smoothing must be in [0, 1]"),
        ({"ema_decay": 2.0}, "ema_decay must be in (0, 1)"),
        ({"grad_clip": 0.0}, "grad_clip must be a number > 0 or None"),
        ({"crop": -2}, "crop must be an integer >= 0"),
        ({"threads": 0}, "threads must be an integer >= 1 or None"),
        ({"tta": 3}, "tta must be one of 0, 1, 2"),
        ({"flip_mode": "sometimes"}, "flip_mode must be one of random, alternate"),
        ({"std": (0.2, 0.0, 0.2)}, "std must be None or one finite number per channel, each > 0"),
        ({"mean": (0.5, 0.5), "std": (0.5, 0.5, 0.5)}, "mean and std must have one value per channel"),
        ({"ema": "false"}, "ema must be true or false, got 'false'"),
        ({"plot": 0}, "plot must be true or false, got 0"),
        ({"select_fraction": 0.0}, "select_fraction must be in (0, 1]"),
        ({"select_every": 0}, "select_every must be an integer >= 1"),
    ],
)
def test_out_of_range_config_is_a_clear_error(override, message):
    with pytest.raises(ValueError, match="invalid training config: .*" + re.escape(message)):
        build_config("modern_gap_cnn", overrides=override)


def test_config_errors_come_before_data_is_read_or_anything_is_written(tmp_path, capsys):
    argv = ["modern_gap_cnn", "--data-dir", str(tmp_path / "empty"), "--no-download", "--out", str(tmp_path / "runs")]
    rc = main([*argv, "--epochs", "0", "--batch-size", "0", "--weight-decay", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "not found" not in err  # the config is checked first, not the (missing) data
    for text in ("epochs must be", "batch_size must be", "weight_decay must be"):  # every problem at once
        assert text in err
    assert not (tmp_path / "runs").exists()
    bad = build_config("modern_gap_cnn")
    bad.lookahead_every = 0  # a config edited after it was built is checked by the Trainer too
    with pytest.raises(ValueError, match="lookahead_every must be an integer >= 1"):
        Trainer(bad)


def test_unknown_or_missing_device(monkeypatch, cifar10_dir, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    rc = main(["modern_gap_cnn", "--data-dir", str(cifar10_dir), "--device", "cuda", "--out", str(tmp_path)])
    assert rc == 2 and "CUDA is not available" in capsys.readouterr().err
    assert resolve_device("auto").type in {"cpu", "mps"}


def test_the_cpu_is_named_by_more_than_its_model_name(tmp_path):
    zen1 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
    zen1 += "stepping\t: 2\nflags\t\t: fpu sse2 avx fma avx2 sha_ni\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n"
    (tmp_path / "zen1").write_text(zen1)
    expected = {"model": "AMD EPYC", "id": "family 23 model 1 stepping 2", "flags": "avx2"}
    assert cpu_identity(tmp_path / "zen1") == expected
    xeon = zen1.replace("23", "6").replace("sha_ni", "avx512f avx512_bf16 amx_bf16 amx_int8")
    (tmp_path / "xeon").write_text(xeon)
    assert cpu_identity(tmp_path / "xeon")["flags"] == "avx2 avx512f avx512_bf16 amx_bf16 amx_int8"  # SPEED_FLAGS order
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd sve i8mm bf16\nCPU part\t: 0xd40\n")
    assert cpu_identity(tmp_path / "arm") == {"flags": "sve bf16 i8mm"}
    assert cpu_identity(tmp_path / "missing") == {}

    machine = {"cpu": "AMD EPYC", "cpu_id": "family 23 model 1 stepping 2", "cpu_flags": "avx2", "threads": 2}
    assert describe_cpu(machine) == "AMD EPYC (family 23 model 1 stepping 2; avx2)"
    assert describe_cpu({"cpu": "AMD EPYC", "threads": 2}) == "AMD EPYC"  # a record from before the id was kept
    here = machine_info(torch.device("cpu"))
    assert here["cpu"] and describe_cpu(here).startswith(here["cpu"])


def test_precision_policy(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None and resolve_precision("bf16", cpu) is torch.bfloat16
    monkeypatch.setattr("zoo.engine.device.cpu_supports_bf16", lambda: False)
    assert resolve_precision("auto", cpu) is None
    monkeypatch.setattr("zoo.engine.device.cpu_supports_bf16", lambda: True)
    assert resolve_precision("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", torch.device("cuda")) is torch.float16  # a pre-Ampere card emulates bf16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", torch.device("cuda")) is torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int8", cpu)


def test_strided_depthwise_convs_compute_in_fp32_under_cpu_bf16(cifar10_dir, tmp_path):
    model = zoo.create("mobilenetv2_x0_5")
    keys = list(model.state_dict())
    assert fp32_strided_depthwise(model) == 3  # the first block of each strided stage
    assert list(model.state_dict()) == keys and fp32_strided_depthwise(zoo.create("resnet20")) == 0
    conv = next(m for m in model.modules() if isinstance(m, Fp32Conv2d))
    assert conv.stride == (2, 2) and conv.groups == conv.in_channels
    x = torch.randn(2, conv.in_channels, 8, 8).bfloat16()
    with torch.autocast("cpu", torch.bfloat16):
        out = conv(x)
        plain = torch.nn.functional.conv2d(x, conv.weight, None, conv.stride, conv.padding, groups=conv.groups)
    fp32 = torch.nn.functional.conv2d(x.float(), conv.weight, None, conv.stride, conv.padding, groups=conv.groups)
    assert out.dtype == torch.bfloat16 and torch.equal(out, fp32.bfloat16())
    assert not torch.equal(plain, out)  # autocast alone would have computed it in bf16
    # the engine applies it for CPU bf16 only, and records it in the run's session
    for device, dtype in (("cpu", None), ("cpu", torch.float16), ("cuda", torch.bfloat16)):
        assert apply_training_precision_policy(zoo.create("mobilenetv2_x0_5"), torch.device(device), dtype) == 0
    bf16 = Trainer(tiny_cfg(cifar10_dir, tmp_path, model="mobilenetv2_x0_5", precision="bf16", run_name="b", epochs=1))
    assert bf16.fp32_convs == 3 and isinstance(bf16.model.blocks[3].conv_dw.conv, Fp32Conv2d)
    bf16.fit()
    assert json.loads((tmp_path / "b" / "run.json").read_text())["sessions"][0]["fp32_convs"] == 3
    assert (
        Trainer(tiny_cfg(cifar10_dir, tmp_path, model="mobilenetv2_x0_5", precision="fp32", run_name="f")).fp32_convs
        == 0
    )


def test_folder_dataset_training(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, colour in enumerate(((200, 30, 30), (30, 30, 200))):
            folder = tmp_path / "imgs" / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(12):
                arr = np.clip(np.array(colour) + rng.integers(-20, 20, size=(48, 48, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(folder / f"{i}.png")
    rc = main(
        [
            "resnet20",
            "--dataset",
            f"folder:{tmp_path / 'imgs'}",
            "--out",
            str(tmp_path),
            "--name",
            "f",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--no-progress",
        ]
    )
    assert rc == 0
    model = zoo.load(tmp_path / "f" / "last.safetensors")
    assert model.num_classes == 2 and model.pretrained_cfg["label_names"] == ("class0", "class1")


def test_cifar100_training(cifar100_dir, tmp_path):
    summary = Trainer(
        tiny_cfg(cifar100_dir, tmp_path, dataset="cifar100", model="resnet20", epochs=1, run_name="c100")
    ).fit()
    assert summary["status"] == "finished"
    model = zoo.load(tmp_path / "c100" / "last.safetensors")
    assert model.num_classes == 100 and model.pretrained_cfg["label_names"][0] == "class_000"


def test_recipes_config_files_and_precedence(tmp_path):
    nb = build_config("modern_gap_cnn", recipe="notebook")
    assert (nb.optimizer, nb.lr, nb.batch_size, nb.epochs) == ("adam", 1e-4, 4, 100)
    assert nb.crop == 0 and not nb.flip and nb.mean == (0.5, 0.5, 0.5) and nb.precision == "fp32"
    assert build_config("modern_gap_cnn", recipe="notebook", overrides={"epochs": 3}).epochs == 3
    hinted = build_config("wrn16_4")  # the model's registry recipe applies from Python as from the CLI
    assert hinted.model_kwargs == {"block_drop_rate": 0.3} and hinted.schedule == "step"
    (tmp_path / "c.toml").write_text("epochs = 7\nlr = 0.05\n")
    assert load_config_file(tmp_path / "c.toml") == {"epochs": 7, "lr": 0.05}
    (tmp_path / "bad.json").write_text('{"epoch": 7}')
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config_file(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="unknown recipe"):
        build_config("resnet20", recipe="magic")


def test_cli_help_shows_groups_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for text in ("data:", "optimisation", "machine:", "output:", "--channels-last", "--resume", "default: cifar10"):
        assert text in out


# ----------------------------------------------------------------------------------------- the Python API
class TinyNet(torch.nn.Module):
    """A model the registry has never heard of."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = torch.nn.Sequential(zoo.layers.ConvBNAct(3, 8, 3), zoo.layers.ConvBNAct(8, 16, 3, stride=2))
        self.head = zoo.layers.ClassifierHead(16, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def _tensors(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = (labels.view(-1, 1, 1, 1) * 60 + torch.randint(0, 40, (n, 3, 16, 16), generator=g)).to(torch.uint8)
    return images, labels


def test_fit_trains_a_model_of_your_own_on_tensors(tmp_path, capsys):
    from zoo.engine import fit

    data = {"train": _tensors(64, 0), "test": _tensors(32, 1)}
    summary = fit(
        TinyNet(num_classes=4),
        data,
        out=str(tmp_path),
        run_name="own",
        epochs=3,
        batch_size=16,
        progress=False,
        plot=False,
        lr=0.05,
    )
    assert summary["status"] == "finished" and summary["test_top1"] > 25
    out = capsys.readouterr().out
    assert "zoo.train: TinyNet on data given from Python (64 train, 32 test)" in out and "weights-only" in out
    with pytest.raises(zoo.WeightsError, match="weights-only file"):
        zoo.load(tmp_path / "own" / "last.safetensors")
    header = zoo.load_weights(TinyNet(num_classes=4), tmp_path / "own" / "last.safetensors")
    assert header["weights_only"] and header["label_names"] == ["0", "1", "2", "3"] and len(header["mean"]) == 3
    assert header["data"] == "data given from Python"  # not cfg.dataset's default, CIFAR-10
    gray = {"train": (data["train"][0][:, :1], data["train"][1]), "test": (data["test"][0][:, :1], data["test"][1])}
    with pytest.raises(ConfigError, match=r"the images have 1 channel\(s\) but the normalisation \(the model's"):
        fit(zoo.create("modern_gap_cnn", num_classes=4), gray, out=str(tmp_path), epochs=1, batch_size=16)
    tiny = {"train": (data["train"][0][..., :4, :4], data["train"][1]), "test": data["test"]}
    with pytest.raises(ConfigError, match="--crop 4 with reflect padding needs images larger than 4 pixels"):
        fit(TinyNet(num_classes=4), tiny, out=str(tmp_path), epochs=1, batch_size=16)  # torch's error came mid-run


def test_float_images_in_0_1_train_exactly_as_their_uint8_values(tmp_path):
    images, labels = _tensors(48, 0)
    test = _tensors(16, 1)
    common = {"epochs": 1, "batch_size": 16, "progress": False, "plot": False, "out": str(tmp_path), "seed": 3}
    a = Trainer(
        build_config("TinyNet", overrides={**common, "run_name": "u8"}),
        model=TinyNet(4),
        data={"train": (images, labels), "test": test},
    )
    b = Trainer(
        build_config("TinyNet", overrides={**common, "run_name": "f"}),
        model=TinyNet(4),
        data={"train": (images.float() / 255, labels), "test": test},
    )
    assert torch.equal(a.train_images, b.train_images)
    with pytest.raises(zoo.errors.DataError, match=r"float images must hold values in \[0, 1\]"):
        Trainer(build_config("TinyNet", overrides=common), model=TinyNet(4), data=(images.float(), labels))


def test_building_a_trainer_writes_nothing_and_leaves_the_process_alone(cifar10_dir, tmp_path):
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="quiet", threads=1))
    assert not (tmp_path / "quiet").exists()
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    trainer.fit()
    assert (tmp_path / "quiet" / "last.safetensors").is_file() and torch.equal(torch.get_rng_state(), rng)
