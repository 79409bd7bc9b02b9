"""Smoke tests of the benchmark scripts on tiny inputs: each runs, prints its table, refuses bad arguments."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fakedata import write_cifar10
from script_loader import load_script

import zoo
from zoo.engine import build_config

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.bench


def benchmark(name: str):
    """A benchmark script's module, so its ``main(argv)`` runs in-process (another interpreter costs seconds)."""
    return load_script(ROOT / "benchmarks" / f"{name}.py")


def table_rows(capsys) -> list[list[str]]:
    """The cells of each body row of the markdown table a benchmark printed (header and separator left out)."""
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    return [line.split("|")[1:-1] for line in lines[2:]]


def test_model_speed_benchmark_writes_and_refuses_another_machine(tmp_path, capsys):
    model_speed = benchmark("model_speed")
    out = tmp_path / "speed.json"
    argv = ["--models", "modern_gap_cnn", "--seconds", "0", "--json", str(out)]
    assert model_speed.main(argv) == 0
    entry = json.loads(out.read_text())["models"]["modern_gap_cnn"]
    assert entry["infer_images_per_s"] > 0 and entry["train_images_per_s"] > 0 and entry["train_batch_size"] == 128
    data = json.loads(out.read_text())
    data["machine"]["cpu"] = "another CPU"
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert model_speed.main(argv) == 2
    assert "measured on another machine" in capsys.readouterr().err
    assert json.loads(out.read_text()) == data  # the refused run left the file alone


def test_model_speed_benchmark_unknown_model(capsys):
    assert benchmark("model_speed").main(["--models", "no_such_model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_precision_policy_benchmark_times_both_precisions(capsys):
    precision_policy = benchmark("precision_policy")
    assert (
        precision_policy.main(["--models", "modern_gap_cnn", "--batch-size", "2", "--steps", "1", "--rounds", "1"]) == 0
    )
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| modern_gap_cnn |"))
    fp32, bf16, ratio = (float(v) for v in row.split("|")[2:5])
    assert fp32 > 0 and bf16 > 0 and ratio == pytest.approx(bf16 / fp32, rel=0.05, abs=0.02)
    assert "--precision auto picks" in out
    with pytest.raises(SystemExit) as bad:
        precision_policy.main(["--models", "nope"])
    assert bad.value.code == 2 and "unknown model(s) nope" in capsys.readouterr().err


def test_compile_speed_benchmark_times_eager_and_compiled_steps(capsys):
    compile_speed = benchmark("compile_speed")
    argv = ["--models", "modern_gap_cnn", "--batch-size", "2", "--steps", "1", "--rounds", "1", "--backend", "eager"]
    assert compile_speed.main(argv) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| modern_gap_cnn |"))
    eager, compiled, ratio, first = (float(v) for v in row.split("|")[2:6])
    assert eager > 0 and compiled > 0 and first > 0 and ratio == pytest.approx(compiled / eager, rel=0.05, abs=0.02)
    with pytest.raises(SystemExit) as bad:
        compile_speed.main(["--models", "nope"])
    assert bad.value.code == 2 and "unknown model(s) nope" in capsys.readouterr().err


def test_distill_overhead_benchmark_times_with_and_without_teacher(capsys):
    argv = ["--teacher", "resnet20.cifar10", "--batch-size", "2", "--steps", "1", "--rounds", "1"]
    assert benchmark("distill_overhead").main(argv) == 0
    out = capsys.readouterr().out
    assert "| student alone |" in out and "| student + teacher resnet20.cifar10 |" in out


def test_inplace_act_benchmark_switches_only_the_copying_activations(capsys):
    inplace_act = benchmark("inplace_act")
    assert inplace_act.build("mobilenetv2_x0_5", True).stem.act.inplace is True
    assert inplace_act.build("resnet20", True).stem.act.inplace is True  # a ReLU: in place either way
    argv = ["--models", "mobilenetv2_x0_5", "resnet20", "--batch-size", "2", "--steps", "1", "--rounds", "1"]
    assert inplace_act.main(argv) == 0
    rows = {r[0].strip(): r[1:] for r in table_rows(capsys)}
    assert int(rows["mobilenetv2_x0_5"][0]) == 35  # stem, head, 2 per block (1 in the first)
    assert int(rows["resnet20"][0]) == 0
    assert all(float(r[3]) > 0 for r in rows.values())


def test_depthwise_precision_benchmark_compares_both_variants(capsys):
    depthwise_precision = benchmark("depthwise_precision")
    assert depthwise_precision.main(["--batch-size", "4", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("| blocks.") == 3 and "engine policy (3 strided depthwise convs in fp32)" in out
    assert "engine policy / all bf16:" in out
    assert depthwise_precision.main(["--batch-size", "4", "--rounds", "1", "--model", "resnet20"]) == 0
    assert "no strided depthwise conv" in capsys.readouterr().out


def test_train_speed_benchmark_times_all_three_pipelines(tmp_path, capsys):
    """Run as a script, the way the docs call the benchmarks (the others run in-process)."""
    data = write_cifar10(tmp_path / "data", n_train=600, layouts=("py",))
    script = ROOT / "benchmarks" / "train_speed.py"
    cmd = [sys.executable, str(script), "--data-dir", str(data), "--models", "modern_gap_cnn", "--images", "128"]
    out = subprocess.run([*cmd, "--matmul-size", "128"], check=True, capture_output=True, text=True).stdout
    row = next(line for line in out.splitlines() if line.startswith("| modern_gap_cnn |"))
    a, b, c, c_a, c_b = (float(v) for v in row.split("|")[2:7])
    assert min(a, b, c) > 0 and c_a == pytest.approx(c / a, rel=0.05) and c_b == pytest.approx(c / b, rel=0.05)
    assert "matmul peak here" in out
    setup = out.index("process setup for (c): {'threads'")  # tuned after every (a) and (b), before any (c)
    assert setup < out.index("modern_gap_cnn: (a)")
    with pytest.raises(SystemExit) as bad:
        benchmark("train_speed").main(["--data-dir", str(data), "--models", "nope"])
    assert bad.value.code == 2 and "unknown model(s) nope" in capsys.readouterr().err


def test_bare_loop_throughput_trains_the_model():
    bare_loop_images_per_s = load_script(ROOT / "benchmarks" / "_throughput.py").bare_loop_images_per_s
    model = zoo.create("modern_gap_cnn")
    before = model.head.fc.weight.detach().clone()
    assert bare_loop_images_per_s(model, 4, steps=2, warmup=1) > 0
    assert not torch.equal(model.head.fc.weight.detach().cpu(), before)


def test_int8_benchmark_runs_every_variant(fake500, capsys, tmp_path):
    int8 = benchmark("int8")
    argv = [
        "--data-dir",
        str(fake500),
        "--models",
        "modern_gap_cnn.cifar10",
        "--seconds",
        "0",
        "--calibration-images",
        "16",
        "--limit-test",
        "50",
        "--reduce-range",
        "--json",
        str(tmp_path / "int8.json"),
    ]
    assert int8.main(argv) == 0
    out = capsys.readouterr().out
    assert "int8 units: " in out and "| modern_gap_cnn.cifar10 | int8 |" in out
    assert "| modern_gap_cnn.cifar10 | int8 7-bit |" in out
    ratio_rows = out.split("| top-1 int8 - fp32 |")[1].splitlines()[2:4]
    for row, variant in zip(ratio_rows, ("int8", "int8 7-bit"), strict=True):  # one ratio row per int8 variant
        assert row.startswith(f"| modern_gap_cnn.cifar10 | {variant} | ") and float(row.split("|")[4]) > 0
    saved = json.loads((tmp_path / "int8.json").read_text())
    assert set(saved["models"]["modern_gap_cnn.cifar10"]) == {
        "fp32 eager",
        "fused fp32",
        "fp32 onnxruntime",
        "int8",
        "int8 7-bit",
    }
    assert int8.main(["--data-dir", str(fake500), "--models", "modern_gap_cnn"]) == 2


def test_gpu_batch_runs_on_a_cpu_with_tiny_data(tmp_path, capsys):
    """The GPU batch (benchmarks/train_zoo.py) works the first time a GPU is lent: the same code, on a CPU."""
    data = write_cifar10(tmp_path / "data", n_train=96, n_test=40, layouts=("bin",))
    train_zoo = benchmark("train_zoo")
    argv = [
        "--device",
        "cpu",
        "--data-dir",
        str(data),
        "--models",
        "resnet20",
        "vgg11_bn",
        "--stage",
        "both",
        "--jobs",
        "2",
        "--out",
        str(tmp_path / "gpu"),
        "--epochs",
        "1",
        "--limit-train",
        "32",
        "--val-split",
        "48",
    ]
    assert train_zoo.main(argv) == 0
    for name in ("resnet20", "vgg11_bn"):
        for stage in ("val", "final"):
            assert (tmp_path / "gpu" / f"{name}-{stage}" / "last.safetensors").is_file(), (name, stage)
    out = capsys.readouterr().out
    assert "| resnet20 | val | 0 |" in out and "| vgg11_bn | final | 0 |" in out
    held_out = [
        json.loads((tmp_path / "gpu" / f"resnet20-{s}" / "run.json").read_text())["config"]["val_split"]
        for s in ("val", "final")
    ]
    assert held_out == [48, 0]  # the val stage holds out --val-split images, the final one trains on all
    assert set(train_zoo.PLAN) >= {"resnet32", "resnet44", "mobilenetv2_x1_0", "wrn28_10", "vgg19_bn"}
    assert train_zoo.main(["--models", "nope"]) == 2


def test_time_to_accuracy_runs_two_recipes_side_by_side(tmp_path, capsys, monkeypatch):
    data = write_cifar10(tmp_path / "data", n_train=64, n_test=40, layouts=("bin",))
    tiny = ["epochs=1", "batch_size=16", "data_init=16", "eval_batch_size=20", "tta=1"]
    argv = [
        "--data-dir",
        str(data),
        "--seeds",
        "0",
        "1",
        "--set",
        *tiny,
        "--set-baseline",
        *tiny,
        "--out",
        str(tmp_path / "runs"),
        "--json",
        str(tmp_path / "tta.json"),
    ]
    time_to_accuracy, tuned = benchmark("time_to_accuracy"), []
    monkeypatch.setattr(time_to_accuracy, "configure_process", lambda device, threads: tuned.append(device.type))
    assert time_to_accuracy.main(argv) == 0
    assert tuned == ["cpu"] * 4  # every run trains in a process set up as zoo.train sets it up (malloc: ~18% here)
    out = capsys.readouterr().out
    started = [line.rsplit("/", 1)[1] for line in out.splitlines() if line.startswith("zoo.train: airbench94_net")]
    assert [name.split("-")[0] + name[-1] for name in started] == ["fast0", "fastest0", "fast1", "fastest1"]
    assert "training time fastest-" in out and "/ fast-" in out
    saved = json.loads((tmp_path / "tta.json").read_text())
    base, cand = saved["summaries"]
    assert base["recipe"] == "fast" and cand["recipe"] == "fastest" and len(cand["runs"]) == 2
    assert cand["accuracy_key"] == "top1_tta" and cand["runs"][0]["steps"] == 4
    assert cand["runs"][0]["config"]["optimizer"] == "muon" and base["runs"][0]["config"]["optimizer"] == "sgd"
    assert cand["train_tflops"] > 0 and base["train_tflops"] > 0 and "(training FLOPs: " in out
    assert "time ratio per seed pair: seed 0 " in out and ", seed 1 " in out and "; their geometric mean " in out
    pairs = cand["time_ratio_per_pair"]
    assert set(pairs) == {"0", "1"} and min(pairs.values()) <= cand["time_ratio_pairs_geomean"] <= max(pairs.values())
    assert cand["time_ratio"] == pytest.approx(cand["train_time_mean_s"] / base["train_time_mean_s"])
    diffs = {seed: c["top1_tta"] - b["top1_tta"] for seed, b, c in zip("01", base["runs"], cand["runs"], strict=True)}
    assert cand["accuracy_diff_per_pair"] == pytest.approx(diffs)
    assert cand["accuracy_diff_mean"] == pytest.approx(sum(diffs.values()) / 2)
    assert f"top1_tta difference per seed pair: seed 0 {diffs['0']:+.2f}, seed 1 {diffs['1']:+.2f}; mean " in out
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 4 and all(p.startswith(("fast-", "fastest-")) for p in runs)
    assert saved["machine_changes"] == [] and "warning: not every run" not in out

    moved = next((tmp_path / "runs").glob("fastest-*seed1")) / "run.json"  # as if it had been resumed on a Zen 5
    meta = json.loads(moved.read_text())
    meta["sessions"][-1]["machine"].update(cpu_id="family 26 model 2 stepping 0", threads=999)
    moved.write_text(json.dumps(meta))
    assert time_to_accuracy.main(argv) == 0  # every run finished: read, not trained again
    out = capsys.readouterr().out
    assert "warning: not every run trained on this machine (cpu_id (" in out
    changes = json.loads((tmp_path / "tta.json").read_text())["machine_changes"]
    assert len(changes) == 2 and changes[0].startswith("cpu_id (") and changes[1].endswith(" -> 999)")


def test_time_to_accuracy_chooses_on_a_validation_split_without_evaluating_the_test_split(tmp_path, capsys):
    from zoo.engine import Trainer

    data = write_cifar10(tmp_path / "data", n_train=64, n_test=40, layouts=("bin",))
    tiny = ["epochs=1", "batch_size=16", "data_init=16", "eval_batch_size=20", "tta=1"]
    argv = ["--data-dir", str(data), "--seeds", "3", "--val-split", "16", "--baseline", "fast", "--candidate", "fast"]
    argv += ["--set-baseline", *tiny, "--set", *tiny, "label_smoothing=0", "--out", str(tmp_path / "runs")]
    evaluated = []
    real_evaluate = Trainer.evaluate
    time_to_accuracy = benchmark("time_to_accuracy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            Trainer,
            "evaluate",
            lambda self, split, **kw: evaluated.append(len(split)) or real_evaluate(self, split, **kw),
        )
        mp.setattr(time_to_accuracy, "configure_process", lambda device, threads: None)
        assert time_to_accuracy.main([*argv, "--json", str(tmp_path / "val.json")]) == 0
    assert evaluated and set(evaluated) == {16}  # the 16 held-out images, never the 40 test images
    out = capsys.readouterr().out
    assert "| seed | val top-1 | val top-1 (TTA) |" in out and "test top-1" not in out
    base, cand = json.loads((tmp_path / "val.json").read_text())["summaries"]
    assert base["split"] == cand["split"] == "val" and cand["runs"][0]["config"]["val_split"] == 16
    assert cand["runs"][0]["config"]["label_smoothing"] == 0 and base["runs"][0]["config"]["label_smoothing"] > 0
    runs = [p.name for p in (tmp_path / "runs").iterdir()]
    assert len(runs) == 2 and all(name.endswith("-val16-seed3") for name in runs)  # apart from the test split's runs


def test_time_to_accuracy_checks_every_recipes_config_before_a_run_trains(tmp_path, capsys):
    data = write_cifar10(tmp_path / "data", n_train=64, n_test=40, layouts=("bin",))
    argv = ["--data-dir", str(data), "--seeds", "0", "--out", str(tmp_path / "runs")]
    time_to_accuracy = benchmark("time_to_accuracy")
    assert time_to_accuracy.main([*argv, "--set", "epochs=abc"]) == 2  # the candidate's: after the baseline's run
    assert "time_to_accuracy.py: error: invalid training config: epochs must be an integer >= 1, got 'abc'" in (
        capsys.readouterr().err
    )
    assert time_to_accuracy.main([*argv, "--set", "nosuch=1"]) == 2
    assert "unknown config keys ['nosuch']" in capsys.readouterr().err
    assert time_to_accuracy.main([*argv, "--val-split", "64"]) == 2
    assert "val_split must be between 1 and 63" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


def test_training_flops_follow_the_image_size_of_each_epoch_and_count_muons_matmuls():
    training_flops = benchmark("time_to_accuracy").training_flops
    cfg = build_config("airbench94_net", recipe="fast", overrides={"epochs": 2, "batch_size": 8}).to_dict()
    full = training_flops(cfg, steps=2)
    # one of two epochs at 16 px: a quarter of the pixels in the convolutions, so about 5/8 of the FLOPs
    assert 0.55 < training_flops({**cfg, "resize_start": 16, "resize_epochs": 1}, steps=2) / full < 0.65
    assert training_flops(cfg, steps=4) == pytest.approx(2 * full)
    assert training_flops({**cfg, "optimizer": "muon"}, steps=2) > full  # Newton-Schulz: matmuls SGD has not
    # batch selection: half the images trained on, plus the proxy's forward over all and its steps on the kept half
    assert 0.55 < training_flops({**cfg, "select_fraction": 0.5}, steps=2) / full < 0.62  # proxy widths 32/64/64
    same = {"select_fraction": 0.5, "select_proxy_kwargs": {}, "select_every": 1}  # a proxy as large as the model
    assert 1.25 < training_flops({**cfg, **same}, steps=2) / full < 1.4  # + a forward pass (~1/3 of a step)


def test_recipe_step_times_each_recipes_steps_and_its_optimizer(tmp_path, capsys, monkeypatch):
    data = write_cifar10(tmp_path / "data", n_train=64, n_test=8, layouts=("bin",))
    argv = ["--data-dir", str(data), "--batch-size", "16", "--steps", "2", "--rounds", "2", "--threads", "1"]
    recipe_step, tuned = benchmark("recipe_step"), []
    monkeypatch.setattr(recipe_step, "configure_process", lambda device, threads: tuned.append(threads))
    assert recipe_step.main(argv) == 0
    assert tuned == [1]
    rows = {r[0].strip(): r[1:] for r in table_rows(capsys)}
    assert set(rows) == {"fast", "fastest"}
    assert [int(rows[r][0]) for r in ("fast", "fastest")] == [9, 6]  # each recipe's last epoch: full size
    assert all(float(rows[r][3]) > 0 and float(rows[r][2]) > 0 for r in rows)  # the optimizer hook fired
    assert float(rows["fast"][5]) == 1.0
    variants = ["--recipes", "fastest", "fastest,muon_precision=fp32,epochs=3", "--no-process-tuning"]
    assert recipe_step.main([*argv, *variants]) == 0 and tuned == [1]  # no second process setup
    rows = {r[0].strip(): r[1:] for r in table_rows(capsys)}
    assert [int(rows[r][0]) for r in rows] == [6, 2]  # the override reached the second trainer only
    assert recipe_step.main([*argv, "--recipes", "fastest", "fastest,batch_size=8"]) == 0
    rows = table_rows(capsys)
    assert [int(r[2]) for r in rows] == [16, 8]  # the recipe's own batch size wins over --batch-size
    step_ms = [float(r[3]) for r in rows]
    assert float(rows[1][6]) == pytest.approx(2 * step_ms[1] / step_ms[0], rel=0.02)  # per image, not per step
    with pytest.raises(SystemExit) as bad:
        recipe_step.main([*argv, "--recipes", "fastest,muon_precision"])  # KEY without =VALUE
    assert bad.value.code == 2
    with pytest.raises(SystemExit) as bad:
        benchmark("recipe_step").main(["--data-dir", str(data), "--recipes", "nope"])
    assert bad.value.code == 2
    # the timed steps are the epoch's own: work keyed on the global step (the proxy's every 2nd step) happens as often
    trainer = recipe_step.build("airbench94_net", "fast,select_fraction=0.5,select_every=2", str(data), 16)
    proxy_steps = []
    trainer.selector.optimizer.register_step_post_hook(lambda *_: proxy_steps.append(trainer.global_step))
    recipe_step.time_steps(trainer, 1, 4)  # 4 steps per epoch: global steps 4-7
    assert proxy_steps == [4, 6]


def test_create_speed_times_both_ways_of_loading_side_by_side(capsys):
    create_speed = benchmark("create_speed")
    assert create_speed.main(["--models", "modern_gap_cnn", "resnet20", "--repeats", "1", "--threads", "1"]) == 0
    rows = table_rows(capsys)
    assert [r[0].strip() for r in rows] == ["modern_gap_cnn", "resnet20"]
    for _, params, skip, init, ratio in rows:
        assert int(params.replace(",", "")) > 0 and float(skip) > 0 and float(init) > 0
        assert float(ratio) == pytest.approx(float(skip) / float(init), rel=0.1)  # of the rounded times
    with pytest.raises(SystemExit):
        create_speed.main(["--models", "nope"])
    assert "unknown model(s) nope" in capsys.readouterr().err
