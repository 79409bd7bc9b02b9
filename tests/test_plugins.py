import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo
from zoo import registry

ROOT = Path(__file__).resolve().parents[1]

PLUGINS = {
    "plug_good": "import zoo\n@zoo.register_model(family='p')\ndef plugin_good_net(**kw):\n"
    "    return zoo.create('modern_gap_cnn', **kw)\n",
    "plug_importerror": "import a_module_that_does_not_exist\n",
    "plug_exception": "raise RuntimeError('boom at import')\n",
    "plug_systemexit": "import sys\nsys.exit(3)\n",
    "plug_clash": "import zoo\n@zoo.register_model\ndef plugin_half_net(**kw):\n    return None\n"
    "@zoo.register_model\ndef resnet20(**kw):\n    return None\n",
}


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    for name, code in PLUGINS.items():
        (tmp_path / f"{name}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [importlib.metadata.EntryPoint(n, n, registry.ENTRY_POINT_GROUP) for n in PLUGINS]
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: eps)
    before = dict(registry._models)
    yield
    registry._models.clear()
    registry._models.update(before)
    registry._plugins_loaded = True
    for name in PLUGINS:
        sys.modules.pop(name, None)


def test_broken_plugins_warn_and_the_rest_stays_usable(fake_plugins):
    registry._plugins_loaded = False
    with pytest.warns(RuntimeWarning) as record:
        assert zoo.is_model("plugin_good_net")  # discovery happens lazily, on first lookup
    messages = "\n".join(str(w.message) for w in record)
    for name in ("plug_importerror", "plug_exception", "plug_systemexit", "plug_clash"):
        assert f"'{name}'" in messages
    assert "SystemExit" in messages and "already registered" in messages
    assert zoo.model_info("resnet20").source == "zoo"  # not replaced
    assert not zoo.is_model("plugin_half_net")  # a failing plugin registers nothing, atomically
    assert zoo.model_info("plugin_good_net").source.startswith("plug_good")
    assert "plugin_good_net" in zoo.list_models() and "plugin_good_net" not in zoo.list_models(source="zoo")
    assert "resnet20" in zoo.list_models(source="zoo")
    assert zoo.list_models(source=zoo.model_info("plugin_good_net").source) == ["plugin_good_net"]
    assert zoo.create("plugin_good_net") is not None
    assert zoo.create("resnet20") is not None


def test_discovery_can_be_disabled(fake_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "1")
    registry._plugins_loaded = False
    assert not zoo.is_model("plugin_good_net")


@pytest.mark.slow
def test_example_plugin_installs_and_registers(tmp_path):
    site = tmp_path / "site"  # an isolated install target: the test environment itself is left untouched
    src = shutil.copytree(ROOT / "examples" / "plugin", tmp_path / "plugin")  # builds write next to the sources
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    code = textwrap.dedent("""
        import torch, zoo
        assert "tiny_allconv" in zoo.list_models(), zoo.list_models()
        m = zoo.create("tiny_allconv", num_classes=5)
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 5)
        print(zoo.model_info("tiny_allconv").source)
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    assert "example" in out.stdout
