from pathlib import Path

import zoo
from zoo.list import main, models_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_models_md_is_generated_and_fresh():
    names = [n for n in zoo.list_models() if zoo.model_info(n).source == "zoo"]
    expected = models_markdown(names)
    actual = (ROOT / "docs" / "models.md").read_text()
    assert actual == expected, (
        "docs/models.md is stale: python -m zoo.list --format markdown --builtin --output docs/models.md"
    )


def test_list_cli(capsys):
    assert main(["resnet2*", "--max-params", "1e6"]) == 0
    out = capsys.readouterr().out
    assert "resnet20" in out and "resnet56" not in out
    assert main(["--format", "json", "modern_gap_cnn"]) == 0
    assert '"params": 77130' in capsys.readouterr().out
