"""TrainConfig: each knob defined once; flags, checks and docs generated from it; one order of defaults."""

import argparse
import dataclasses

import pytest

import zoo
from zoo.engine import RECIPES, TrainConfig, build_config, load_config_file
from zoo.engine.config import FIELDS, RESUME_OVERRIDES, field_flag, resumed_config
from zoo.errors import ConfigError
from zoo.train import build_parser, config_from_args

META_FLAGS = {"--recipe", "--config", "--resume", "--overwrite", "-h"}


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Every option string of the parser -> the field (dest) it sets."""
    return {s: a.dest for a in parser._actions for s in a.option_strings}


def test_every_field_has_a_flag_and_every_flag_a_field():
    flags = _flags(build_parser())
    dests = {dest for flag, dest in flags.items() if flag not in META_FLAGS and dest != "help"}
    assert dests == set(FIELDS) - {"model"}  # MODEL is the positional argument
    for name in FIELDS:
        if name != "model":
            assert flags[field_flag(name)] == name
    assert flags["--no-download"] == "download" and flags["--name"] == "run_name"


def test_help_shows_each_fields_own_default_and_group(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("epochs", "batch_size", "label_smoothing", "eval_batch_size"):
        f = FIELDS[name]
        assert f"{f.metadata['help']} (default: {f.default})" in text, name
    assert "knowledge distillation (Hinton et al. 2015):" in text and "(default: 25%)" not in text


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_python_and_cli_resolve_the_same_config_for_every_model(recipe):
    parser = build_parser()
    for name in zoo.list_models():
        from_cli = config_from_args(parser.parse_args([name, "--recipe", recipe]))
        assert from_cli == build_config(name, recipe=recipe), name
        hints = zoo.model_info(name).recipe
        for key in set(hints) & set(FIELDS):  # the registry recipe under the named one
            expected = RECIPES[recipe].get(key, hints[key])
            assert getattr(from_cli, key) == (tuple(expected) if isinstance(expected, list) else expected)


def test_one_layer_of_defaults_under_the_model_recipe():
    assert build_config("resnet20").batch_size == 128 == zoo.model_info("resnet20").recipe["batch_size"]
    assert build_config("resnet9").batch_size == zoo.model_info("resnet9").recipe["batch_size"] == 512
    assert build_config("wrn16_4").model_kwargs == {"block_drop_rate": 0.3}  # a hint that is a builder kwarg
    assert build_config("not_registered").epochs == TrainConfig().epochs  # a model from Python: no hints


def test_validate_is_generated_from_the_fields():
    good = TrainConfig()
    assert good.validate() is good
    cases = {
        "epochs": (0, "epochs must be an integer >= 1, got 0"),
        "momentum": (1.0, r"momentum must be in \[0, 1\), got 1.0"),
        "lr": (float("nan"), "lr must be a number >= 0, got nan"),
        "flip": ("false", "flip must be true or false, got 'false'"),
        "optimizer": ("lamb", "optimizer must be one of sgd, adam, adamw, muon, got 'lamb'"),
        "grad_clip": (0, "grad_clip must be a number > 0 or None, got 0"),
        "augment": (("crop", ""), "augment must be a list of names or None"),
        "model_kwargs": ([1], "model_kwargs must be a JSON object, got \\[1\\]"),
        "teacher": ("  ", "teacher must be a string or None"),
    }
    for name, (value, message) in cases.items():
        with pytest.raises(ConfigError, match=message):
            dataclasses.replace(good, **{name: value}).validate()


def test_config_files_json_toml_yaml_and_their_errors(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 7\nlr: 0.05\nmean: [0.5, 0.5, 0.5]\n")
    assert load_config_file(tmp_path / "c.yaml") == {"epochs": 7, "lr": 0.05, "mean": (0.5, 0.5, 0.5)}
    (tmp_path / "c.yml").write_text("epochs: 3\n")
    assert load_config_file(tmp_path / "c.yml") == {"epochs": 3}
    bad = {
        "c.ini": ("epochs = 3", "expected a .json, .toml, .yaml or .yml file"),
        "n.json": ("7", "expected a mapping of TrainConfig fields, got int"),
        "broken.yaml": ("epochs: [3", "not valid YAML"),
        "broken.toml": ("epochs = ", "not valid TOML"),
        "u.json": ('{"epoch": 7}', "unknown config keys"),
    }
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config_file(tmp_path / name)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config_file(tmp_path / "dir.json")
    (tmp_path / "types.json").write_text('{"epochs": "ten"}')
    with pytest.raises(ConfigError, match="epochs must be an integer >= 1, got 'ten'"):
        build_config("resnet20", overrides=load_config_file(tmp_path / "types.json"))


def test_resumed_config_takes_machine_fields_only_and_old_names():
    saved = {**TrainConfig().to_dict(), "mean": [0.5, 0.5, 0.5]}
    saved["no_decay_norm_bias"] = saved.pop("decay_norm_bias") is False  # a run.json from before the rename
    cfg = resumed_config(saved, {"device": "cpu", "threads": 1})
    assert cfg.device == "cpu" and cfg.mean == (0.5, 0.5, 0.5) and cfg.decay_norm_bias is False
    del saved["freeze"]  # before freeze generalised it: airbench's stem only
    assert resumed_config({**saved, "freeze_stem_epochs": 3}).freeze == {"stem": 3}
    assert resumed_config({**saved, "freeze_stem_epochs": None}).freeze == {}
    build_config("airbench94_net", recipe="fast").freeze["layers.0"] = 4
    assert RECIPES["fast"]["freeze"] == {"stem": 3}  # a config's dicts are its own
    with pytest.raises(ConfigError, match="epochs cannot change"):
        resumed_config(saved, {"epochs": 3})
    with pytest.raises(ConfigError, match="does not have: \\['gone'\\]"):
        resumed_config({**saved, "gone": 1})
    assert {"device", "data_dir", "threads", "precision"} <= set(RESUME_OVERRIDES)


def test_a_renamed_flag_names_its_replacement(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["airbench94_net", "--freeze-stem-epochs", "3"])
    assert "--freeze-stem-epochs was renamed: use --freeze" in capsys.readouterr().err
    assert build_parser().parse_args(["x", "--no-decay-norm-bias"]).decay_norm_bias is False  # still a flag
