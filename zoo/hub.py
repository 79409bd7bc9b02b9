"""The Hugging Face Hub, in timm's layout: a repo holds ``model.safetensors`` (a zoo weight file) and ``config.json``
(timm's hub config, with zoo's own under ``"zoo"``: builder kwargs, the weights' sha256), plus a model card.

``zoo.create("hf-hub:ORG/REPO")`` / ``zoo.load(...)`` download both (``@REVISION`` pins a commit), check the weights'
sha256 against the config (and against ``sha256=`` when given) and rebuild the model; `push_to_hub` uploads a model.
timm reads the same repos (``timm.create_model("hf-hub:ORG/REPO")``, after `zoo.timm_bridge.register_timm_models`),
and zoo reads folders timm's ``save_for_hf`` writes. ``$HF_ENDPOINT`` and ``$HF_TOKEN`` are honoured at call time.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch.nn as nn

from ._version import __version__
from .errors import WeightsError
from .weights import file_sha256, save_weights

__all__ = ["HF_PREFIX", "TIMM_PREFIX", "download_repo", "is_hub", "push_to_hub", "read_folder", "zoo_name"]

HF_PREFIX = "hf-hub:"
TIMM_PREFIX = "zoo_"  # zoo's models in timm's registry (zoo.timm_bridge): some zoo names are timm's own too
WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"


def zoo_name(timm_name: str) -> str:
    """``zoo_resnet20`` (timm) -> ``resnet20`` (zoo); other names are returned unchanged."""
    return timm_name[len(TIMM_PREFIX) :] if timm_name.startswith(TIMM_PREFIX) else timm_name


def is_hub(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(HF_PREFIX)


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def download_repo(spec: str) -> Path:
    """Download ``hf-hub:ORG/REPO[@REVISION]``'s config and weights into the Hugging Face cache; return the folder."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo_id, _, revision = spec[len(HF_PREFIX) :].partition("@")
    try:
        config = hf_hub_download(repo_id, CONFIG, revision=revision or None, endpoint=_endpoint())
        weights = hf_hub_download(repo_id, WEIGHTS, revision=revision or None, endpoint=_endpoint())
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise WeightsError(f"could not download {spec}: {exc}") from None
    if Path(config).parent != Path(weights).parent:  # both from one snapshot folder of the cache
        raise WeightsError(f"{spec}: config and weights came from different revisions")
    return Path(weights).parent


def read_folder(folder: str | os.PathLike[str], *, sha256: str | None = None) -> tuple[Path, dict[str, Any]]:
    """``model.safetensors`` and the parsed ``config.json`` of a hub-layout folder, the weights' hash checked
    against the config's (zoo's own repos record it) and against ``sha256``."""
    folder = Path(folder)
    weights, config_path = folder / WEIGHTS, folder / CONFIG
    if not weights.is_file() or not config_path.is_file():
        raise WeightsError(f"{folder}: expected {WEIGHTS} and {CONFIG} (the Hugging Face Hub layout timm writes)")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{config_path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise WeightsError(f"{config_path} names no architecture")
    actual = file_sha256(weights)
    for expected in (sha256, (config.get("zoo") or {}).get("sha256")):
        if expected is not None and expected.lower() != actual:
            raise WeightsError(f"sha256 mismatch for {weights}: expected {expected}, got {actual}")
    return weights, config


def folder_kwargs(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The zoo model name and builder kwargs a hub config describes (zoo's own record, else timm's model_args)."""
    zoo_part = config.get("zoo") or {}
    kwargs = dict(zoo_part.get("model_kwargs") or config.get("model_args") or {})
    kwargs.setdefault("num_classes", config.get("num_classes"))
    return zoo_name(config["architecture"]), {k: v for k, v in kwargs.items() if v is not None}


def _card(model: nn.Module, repo_id: str, card: str | None) -> str:
    cfg = model.pretrained_cfg
    metrics = "".join(f"| {k} | {v} |\n" for k, v in (model.zoo_cfg.get("metrics") or {}).items())
    body = card or (
        f"# {repo_id}\n\n`{cfg['architecture']}` from [zoo](https://github.com/), {cfg.get('paper_name') or ''}.\n\n"
        + (f"| metric | value |\n| --- | --- |\n{metrics}\n" if metrics else "")
    )
    usage = (
        f'\n## Use\n\n```python\nimport zoo\n\nmodel = zoo.create("hf-hub:{repo_id}")\n```\n\nor, in timm after '
        f'`zoo.timm_bridge.register_timm_models()`: `timm.create_model("hf-hub:{repo_id}", pretrained=True)`.\n'
    )
    front = "---\nlibrary_name: timm\nlicense: mit\ntags:\n- image-classification\n- zoo\n---\n"
    return front + body + ("" if "## Use" in body else usage)


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    card: str | None = None,
    commit_message: str = "Add zoo model",
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
) -> str:
    """Upload ``model`` to ``repo_id``: weights (a zoo safetensors file, never pickle), timm's config.json with
    zoo's builder kwargs and the weights' sha256, and a model card (``card``, markdown, else a short one).
    Returns the commit URL."""
    from huggingface_hub import HfApi
    from timm.models._hub import save_config_for_hf

    cfg = model.pretrained_cfg
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sha256 = save_weights(model, folder / WEIGHTS)
        zoo_part = {"sha256": sha256, "zoo_version": __version__, "model_kwargs": model.zoo_cfg.get("model_kwargs", {})}
        save_config_for_hf(
            model,
            str(folder / CONFIG),
            model_config={"pretrained_cfg": {"architecture": TIMM_PREFIX + cfg["architecture"]}, "zoo": zoo_part},
            model_args={"num_classes": model.num_classes},
        )
        (folder / CARD).write_text(_card(model, repo_id, card))
        api = HfApi(endpoint=_endpoint(), token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message, revision=revision)
    return info.commit_url
