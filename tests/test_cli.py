"""What every command-line module shares: one error policy, one model resolver, a console script each."""

import importlib
import importlib.metadata

import pytest

from zoo import _cli
from zoo.errors import ConfigError, ZooError

CLIS = ["train", "eval", "predict", "export", "list"]


def test_zoo_errors_are_one_line_and_exit_2_bugs_keep_their_traceback(capsys):
    def user_mistake() -> int:
        raise ConfigError("epochs must be an integer >= 1, got 0")

    assert _cli.run("zoo.x", user_mistake) == 2
    assert capsys.readouterr().err == "zoo.x: error: epochs must be an integer >= 1, got 0\n"

    def bug() -> int:
        raise ValueError("a bug in a model")

    with pytest.raises(ValueError, match="a bug in a model"):
        _cli.run("zoo.x", bug)
    errors = importlib.import_module("zoo.errors")
    classes = [c for c in vars(errors).values() if isinstance(c, type) and c.__module__ == "zoo.errors"]
    assert len(classes) > 8 and all(issubclass(c, ZooError) for c in classes)


@pytest.mark.parametrize("name", CLIS)
def test_every_cli_is_a_module_and_a_console_script(name, capsys):
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get(f"zoo-{name}") == f"zoo.{name}:main"
    module = importlib.import_module(f"zoo.{name}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0 and f"python -m zoo.{name}" in capsys.readouterr().out


def test_argparse_types_check_numbers():
    assert _cli.count(1)("3") == 3 and _cli.number(0)("1e6") == 1e6
    for parse, text in ((_cli.count(1), "0"), (_cli.count(1), "x"), (_cli.number(0), "nan"), (_cli.number(0), "-1")):
        with pytest.raises(Exception, match="expected"):
            parse(text)
