import json
from pathlib import Path

import pytest
from script_loader import load_script

import zoo
from zoo.list import main

ROOT = Path(__file__).resolve().parents[1]
SPEED = ROOT / "docs" / "data" / "model_speed.json"
BUILTIN = zoo.list_models(source="zoo")
gen_docs = load_script(ROOT / "tools" / "gen_docs.py")


def test_generated_docs_are_fresh():
    stale = [str(path.relative_to(ROOT)) for path, text in gen_docs.generated().items() if path.read_text() != text]
    assert not stale, f"{stale} stale: python tools/gen_docs.py"


def test_every_builtin_model_has_a_speed_measurement():
    missing = sorted(set(BUILTIN) - set(gen_docs.load_speed(SPEED)["models"]))
    assert not missing, f"measure them: python benchmarks/model_speed.py --models {' '.join(missing)} --json {SPEED}"


def test_weights_page_names_every_flag_a_resume_takes():
    from zoo.engine import RESUME_OVERRIDES
    from zoo.engine.config import field_flag

    text = " ".join((ROOT / "docs" / "weights.md").read_text().split())  # lines joined: a list may wrap
    listed = text.split("With `--resume` go only the flags", 1)[1].split("zoo.engine.RESUME_OVERRIDES", 1)[0]
    missing = [flag for flag in map(field_flag, RESUME_OVERRIDES) if f"`{flag}`" not in listed]
    assert not missing, f"docs/weights.md's list of the flags --resume takes lacks {missing}"


def test_list_cli(capsys):
    assert main(["resnet2*", "--max-params", "1e6"]) == 0
    out = capsys.readouterr().out
    assert "resnet20" in out and "resnet56" not in out
    assert main(["--format", "json", "modern_gap_cnn"]) == 0
    assert '"params": 77130' in capsys.readouterr().out


def test_models_page_speed_columns(tmp_path):
    speed = {
        "machine": {"cpu": "Test CPU", "threads": 2, "torch": "x"},
        "date": "2026-01-01",
        "models": {"resnet20": {"infer_images_per_s": 12345.6, "train_images_per_s": 800.2, "train_batch_size": 128}},
    }
    path = tmp_path / "speed.json"
    path.write_text(json.dumps(speed))
    page = gen_docs.models_markdown(["resnet20", "resnet32"], gen_docs.load_speed(path))
    rows = page.splitlines()[-2:]
    assert "| 12,346 | 800 (128) |" in rows[0] and "| - | - |" in rows[1]  # resnet32: no entry
    assert "measured by `python benchmarks/model_speed.py" in page and "on Test CPU,\n2 threads" in page
    path.write_text('{"models": {}}')
    with pytest.raises(ValueError, match="expected the JSON that benchmarks/model_speed.py writes"):
        gen_docs.load_speed(path)


def test_speed_standings_come_from_the_benchmarks_output(tmp_path):
    for name, _, _ in gen_docs.STANDINGS:
        path = ROOT / "docs" / "data" / f"time_to_accuracy.{name}.json"
        (tmp_path / path.name).write_text(path.read_text())
    assert gen_docs.standings_markdown(tmp_path) == gen_docs.standings_markdown()
    last = tmp_path / f"time_to_accuracy.{gen_docs.STANDINGS[-1][0]}.json"
    data = json.loads(last.read_text())
    data["summaries"][1].update(accuracy_mean=90.9, train_time_mean_s=data["summaries"][0]["train_time_mean_s"] / 2)
    last.write_text(json.dumps(data))
    table = gen_docs.standings_markdown(tmp_path)
    seeds = gen_docs._seeds([run["seed"] for run in data["summaries"][1]["runs"]])
    row = next(line for line in table.splitlines() if line.startswith(f"| {gen_docs.STANDINGS[-1][1]}, {seeds} |"))
    assert "| 90.90 ± " in row and "| 0.500 |" in row
    met = sum(json.loads(f.read_text())["summaries"][1]["accuracy_mean"] >= 90.5 for f in tmp_path.glob("*.json"))
    assert f"the accuracy target (90.5% or more) in {met}." in " ".join(table.split())
    data["summaries"][0]["tta_level"] = 1
    last.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="expected runs measured with --tta 2 on the test split"):
        gen_docs.standings_markdown(tmp_path)


def test_a_screen_table_comes_from_its_output_file(tmp_path):
    path = tmp_path / "screen.json"
    data = json.loads((ROOT / "docs" / "data" / "time_to_accuracy.val-freeze8.json").read_text())
    base, cand = data["summaries"]
    base["runs"][0].update(top1_tta=90.0, top1=89.0)
    cand["runs"][0].update(top1_tta=90.5, top1=88.5)
    path.write_text(json.dumps(data))
    rows = gen_docs.screen_markdown(path).splitlines()
    assert rows[2].startswith(f"| {base['runs'][0]['seed']} | 90.00 (89.00) | 90.50 (88.50) | +0.50 (-0.50) |")
    assert rows[-1].startswith(f"| mean ± sd ({len(base['runs'])}) |")
    base["split"] = "test"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="expected two recipes measured on the validation split"):
        gen_docs.screen_markdown(path)


def test_the_ablation_table_comes_from_the_ablations_output_files(tmp_path):
    data = ROOT / "docs" / "data"
    reference = tmp_path / "time_to_accuracy.fast.json"
    reference.write_text((data / "time_to_accuracy.fast.json").read_text())
    old = json.loads((data / "time_to_accuracy.ablate-lookahead-off.json").read_text())  # one recipe, older format
    old["runs"][0].update(top1_tta=90.00, top1=89.00)
    (tmp_path / "time_to_accuracy.ablate-lookahead-off.json").write_text(json.dumps(old))
    fast0 = json.loads(reference.read_text())["runs"][0]
    beside = {**fast0, "top1_tta": 91.0, "top1": 90.0}  # the recipe's run beside the ablation's, on another machine
    ablated = {**fast0, "top1_tta": 90.5, "top1": 90.5}
    new = {"summaries": [{"recipe": "fast", "overrides": {}, "split": "test", "accuracy_key": "top1_tta",
                          "tta_level": 2, "runs": [beside]},
                         {"recipe": "fast", "overrides": {"label_smoothing": 0.0}, "split": "test",
                          "accuracy_key": "top1_tta", "tta_level": 2, "runs": [ablated]}]}  # fmt: skip
    (tmp_path / "time_to_accuracy.ablate-no-smoothing.json").write_text(json.dumps(new))
    rows = gen_docs.ablation_markdown(reference).splitlines()
    assert rows[2].startswith("| the full recipe (three seeds) | - | 90.61 ± 0.17 (89.88 ± 0.11) |")
    change = f"{90.00 - fast0['top1_tta']:+.2f} ({89.00 - fast0['top1']:+.2f})"
    assert rows[4] == f"| lookahead (seed 0) | `--set lookahead=false` | 90.00 (89.00) | {change} |"
    assert rows[5] == "| label smoothing (seed 0) | `--set label_smoothing=0.0` | 90.50 (90.50) | -0.50 (+0.50) |"
    new["summaries"][1]["overrides"] = {"mixup": 0.2}
    (tmp_path / "time_to_accuracy.ablate-no-smoothing.json").write_text(json.dumps(new))
    with pytest.raises(ValueError, match=r"name the technique \['mixup'\] switches off in ABLATED"):
        gen_docs.ablation_markdown(reference)
    old["tta_level"] = 1
    (tmp_path / "time_to_accuracy.ablate-lookahead-off.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="expected runs measured with --tta 2 on the test split"):
        gen_docs.ablation_markdown(reference)


def test_the_fastest_techniques_table_comes_from_their_outputs(tmp_path):
    names = {name for _, files, _ in gen_docs.TECHNIQUES for name in files}
    for name in names:
        path = ROOT / "docs" / "data" / f"time_to_accuracy.{name}.json"
        (tmp_path / path.name).write_text(path.read_text())
    assert gen_docs.techniques_markdown(tmp_path) == gen_docs.techniques_markdown()
    technique, (name, *_), candidate_has_it = gen_docs.TECHNIQUES[1]  # batch 768: the candidate is the run with it
    path = tmp_path / f"time_to_accuracy.{name}.json"
    data = json.loads(path.read_text())
    without, with_ = data["summaries"] if candidate_has_it else data["summaries"][::-1]
    for run in without["runs"]:
        run.update(top1_tta=90.0, top1=89.0)
    for run in with_["runs"]:
        run.update(top1_tta=90.5, top1=88.5)
    path.write_text(json.dumps(data))
    row = next(
        line for line in gen_docs.techniques_markdown(tmp_path).splitlines() if line.startswith(f"| {technique}")
    )
    assert "| 90.00 ± 0.00 (89.00 ± 0.00) | 90.50 ± 0.00 (88.50 ± 0.00) | +0.50 ± 0.00 (-0.50 ± 0.00) |" in row
    data["summaries"][0]["split"] = "test"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="expected two recipes measured with --tta 2 on the same split"):
        gen_docs.techniques_markdown(tmp_path)
