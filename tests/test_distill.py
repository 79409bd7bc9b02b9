"""Knowledge distillation: the loss, the frozen teacher, and the engine's ``--teacher`` end to end."""

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from runs import snapshot, stop_at, tiny_cfg

import zoo
from zoo.engine import Trainer
from zoo.engine.checkpoint import CheckpointError
from zoo.engine.distill import Teacher, distillation_loss, load_teacher
from zoo.train import main


def test_distillation_loss_is_t_squared_kl_of_the_softened_outputs():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 10), torch.randn(6, 10)
    p_t = F.softmax(teacher / 3, dim=1)
    expected = 9 * (p_t * (p_t.log() - F.log_softmax(student / 3, dim=1))).sum(1).mean()
    assert torch.allclose(distillation_loss(student, teacher, 3.0), expected, atol=1e-6)
    assert float(distillation_loss(teacher, teacher, 3.0)) == pytest.approx(0.0, abs=1e-6)
    bf16 = distillation_loss(student.bfloat16(), teacher.bfloat16(), 3.0)
    assert bf16.dtype == torch.float32  # computed in fp32 whatever autocast produced


def test_teacher_maps_the_students_normalisation_to_its_own_and_stays_frozen():
    torch.manual_seed(0)
    model = zoo.create("modern_gap_cnn")
    model.pretrained_cfg.update(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    model.eval()
    images = torch.rand(4, 3, 32, 32)
    own = model(
        (images - torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    )
    student_mean, student_std = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.5, 0.5, 0.5])
    teacher = Teacher(model, student_mean=student_mean, student_std=student_std)
    teacher.train()  # a parent's .train() must not switch it to batch statistics
    out = teacher((images - 0.5) / 0.5)
    assert not teacher.training and not out.requires_grad
    assert torch.allclose(out, own, atol=1e-4)  # BatchNorm folded: equal up to rounding
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in teacher.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the caller's model: untouched
    assert all(p.requires_grad for p in model.parameters())
    plain = Teacher(model, student_mean=(0.4, 0.5, 0.6), student_std=(0.2, 0.25, 0.3))
    assert plain.same_norm  # nothing to map


@pytest.fixture
def teacher_file(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "teacher.safetensors"
    zoo.save_weights(zoo.create("modern_gap_cnn"), path)  # seeded random weights are teacher enough
    return path


def test_load_teacher_checks_its_label_set_and_names_what_it_expected(teacher_file, tmp_path):
    kwargs = {"student_mean": torch.zeros(3), "student_std": torch.ones(3), "device": torch.device("cpu")}
    before = torch.get_rng_state()
    teacher = load_teacher(str(teacher_file), num_classes=10, **kwargs)
    assert torch.equal(torch.get_rng_state(), before)  # building it drew no numbers from the run's stream
    assert teacher.sha256 == zoo.weights.file_sha256(teacher_file)
    with pytest.raises(ValueError, match="predicts 10 classes; the student is trained on 100"):
        load_teacher(str(teacher_file), num_classes=100, **kwargs)
    with pytest.raises(ValueError, match="expected a zoo .safetensors file or NAME"):
        load_teacher("no_such_model.cifar10", num_classes=10, **kwargs)
    with pytest.raises(ValueError, match="expected a zoo .safetensors file or NAME"):
        load_teacher(str(tmp_path / "missing.safetensors"), num_classes=10, **kwargs)
    published = load_teacher("modern_gap_cnn.cifar10", num_classes=10, **kwargs)
    assert published.sha256 == zoo.model_info("modern_gap_cnn").weights["cifar10"].sha256


def test_weight_zero_trains_exactly_as_without_a_teacher_and_weight_one_differs(cifar10_dir, tmp_path, teacher_file):
    plain = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="plain", epochs=1))
    plain.fit()
    muted = Trainer(
        tiny_cfg(cifar10_dir, tmp_path, run_name="w0", epochs=1, teacher=str(teacher_file), distill_weight=0.0)
    )
    muted.fit()
    taught = Trainer(
        tiny_cfg(cifar10_dir, tmp_path, run_name="w1", epochs=1, teacher=str(teacher_file), distill_weight=1.0)
    )
    taught.fit()
    ref = snapshot(plain)
    assert all(torch.equal(ref[k], v) for k, v in snapshot(muted).items())  # the teacher draws no random numbers
    assert not all(torch.equal(ref[k], v) for k, v in snapshot(taught).items())
    config = json.loads((tmp_path / "w1" / "run.json").read_text())["config"]
    assert config["teacher"] == str(teacher_file) and config["distill_weight"] == 1.0


def test_resume_with_a_teacher_is_exact_and_refuses_other_teacher_weights(cifar10_dir, tmp_path, teacher_file):
    over = {"teacher": str(teacher_file), "distill_temperature": 2.0}
    reference = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="ref", **over))
    reference.fit()
    stopped = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="cut", **over), callbacks=[stop_at(0, 2)])
    assert stopped.fit()["status"] == "interrupted"
    ckpt, original = (tmp_path / "cut" / "checkpoint.safetensors").read_bytes(), teacher_file.read_bytes()
    zoo.save_weights(zoo.create("modern_gap_cnn"), teacher_file)  # the file behind --teacher changed meanwhile
    with pytest.raises(CheckpointError, match="resume with the same teacher weights"):
        Trainer.resume(tmp_path / "cut")
    assert (tmp_path / "cut" / "checkpoint.safetensors").read_bytes() == ckpt  # nothing was overwritten
    teacher_file.write_bytes(original)
    resumed = Trainer.resume(tmp_path / "cut")
    assert resumed.fit()["status"] == "finished"
    ref = snapshot(reference)
    assert all(torch.equal(ref[k], v) for k, v in snapshot(resumed).items())


def test_compile_compiles_the_teacher_too(cifar10_dir, tmp_path, teacher_file, monkeypatch):
    compiled, calls = [], []

    def fake_compile(module, **_):  # records what --compile wraps and each call through the wrapper
        compiled.append(module)
        return lambda x: calls.append(module) or module(x)

    monkeypatch.setattr(torch, "compile", fake_compile)
    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, teacher=str(teacher_file), compile=True))
    assert compiled == [trainer.model, trainer.teacher]
    trainer.train_mode(0)
    trainer.train_step(*trainer.batch(torch.arange(16), 0, 0))
    assert calls == [trainer.model, trainer.teacher]  # one step ran both through what torch.compile returned


def test_cli_teacher_flags(cifar10_dir, tmp_path, teacher_file, capsys):
    argv = ["modern_gap_cnn", "--data-dir", str(cifar10_dir), "--no-download", "--out", str(tmp_path), "--name", "kd"]
    tiny = ["--epochs", "1", "--batch-size", "16", "--no-progress", "--eval-batch-size", "16"]
    assert main([*argv, *tiny, "--teacher", str(teacher_file), "--distill-weight", "0.7"]) == 0
    out = capsys.readouterr().out
    assert f"teacher {teacher_file} (weight 0.7, T 4.0)" in out
    assert main([*argv, *tiny, "--teacher", str(teacher_file), "--distill-temperature", "0"]) == 2
    assert "distill_temperature must be a number > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "knowledge distillation" in capsys.readouterr().out


def test_a_teacher_that_trained_on_the_held_out_images_is_named(cifar10_dir, tmp_path, teacher_file, capsys):
    Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="t", epochs=1, val_split=16, seed=3)).fit()
    own_split = str(tmp_path / "t" / "last.safetensors")  # its header records val_split 16, seed 3
    saw = {}
    for name, teacher, seed in [("same", own_split, 3), ("other", own_split, 4), ("unknown", str(teacher_file), 3)]:
        cfg = tiny_cfg(cifar10_dir, tmp_path, run_name=name, epochs=1, val_split=16, seed=seed, teacher=teacher)
        saw[name] = Trainer(cfg).teacher_saw_val
    held = set(zoo.data.split_indices(64, val_split=16, seed=3)[0].tolist())
    assert saw["same"] == 0 and saw["unknown"] is None  # a teacher file without a run's record says nothing
    assert saw["other"] == len(set(zoo.data.split_indices(64, val_split=16, seed=4)[0].tolist()) - held) > 0
    cfg = tiny_cfg(cifar10_dir, tmp_path, run_name="py", epochs=1, val_split=16, seed=4, teacher=own_split)
    assert Trainer(cfg, data="cifar10").teacher_saw_val == saw["other"]  # named from Python: the same count
    tensors = (torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), torch.arange(64) % 10)
    assert Trainer(replace(cfg, run_name="py2"), data=tensors).teacher_saw_val is None  # no name to match
    capsys.readouterr()
    summary = Trainer(
        tiny_cfg(cifar10_dir, tmp_path, run_name="leak", epochs=1, val_split=16, seed=4, teacher=own_split)
    ).fit()
    assert summary["teacher_saw_val"] == saw["other"]
    assert f"the teacher trained on {saw['other']} of the 16 images this run holds out" in capsys.readouterr().out


def test_the_count_follows_limit_train_on_both_sides(cifar10_dir, tmp_path):
    # a teacher trained on the first 8 of its kept images; a student with --limit-train holds out what it would without
    Trainer(
        tiny_cfg(cifar10_dir, tmp_path, run_name="t", epochs=1, batch_size=8, val_split=16, seed=3, limit_train=8)
    ).fit()
    teacher = str(tmp_path / "t" / "last.safetensors")
    saw = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="s", val_split=16, seed=4, limit_train=16, teacher=teacher))
    kept = zoo.data.split_indices(64, val_split=16, seed=3)[1]
    held = set(zoo.data.split_indices(64, val_split=16, seed=4)[0].tolist())
    assert saw.teacher_saw_val == len(set(kept[:8].tolist()) & held) < len(set(kept.tolist()) & held)  # 1 < 9


@pytest.mark.parametrize(
    "config, expected",
    [
        (
            {"dataset": "cifar10", "val_split": 5000, "seed": 2, "epochs": 9, "limit_train": None},
            {"dataset": "cifar10", "val_split": 5000, "seed": 2, "limit_train": None},
        ),
        (
            {"dataset": "cifar10", "val_split": 0, "seed": 2},
            {"dataset": "cifar10", "val_split": 0, "seed": 2, "limit_train": None},
        ),
        ({"dataset": "cifar10", "val_split": 0, "seed": 2, "limit_train": 0}, None),
        ({"dataset": "cifar10", "val_split": "5000", "seed": 2}, None),  # a malformed record counts as none
        ({"dataset": "cifar10", "val_split": -1, "seed": 2}, None),
        ({"dataset": "cifar10", "val_split": True, "seed": 2}, None),
        ("not a dict", None),
    ],
)
def test_weights_record_what_their_run_held_out(tmp_path, config, expected):
    path = tmp_path / "w.safetensors"
    zoo.save_weights(zoo.create("modern_gap_cnn"), path, config=config)
    assert zoo.load(path).zoo_cfg["trained_on"] == expected
