"""The study notebook's network: two ConvBNAct layers, global average pooling, a linear classifier."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn

from ..layers import ClassifierHead, ConvBNAct, LayerType
from ..registry import register_model
from ._base import ZooModel, sgd_recipe

__all__ = ["ModernGAPCNN"]

# state-dict keys of the notebook's own class (nn.Sequential features + nn.Linear classifier) -> zoo's keys
_NOTEBOOK_KEYS = {
    "features.0.": "features.0.conv.",
    "features.1.": "features.0.bn.",
    "features.3.": "features.1.conv.",
    "features.4.": "features.1.bn.",
    "classifier.": "head.fc.",
}


class ModernGAPCNN(ZooModel):
    """conv3x3 (in_chans->64) - norm - act, conv3x3 stride 2 (64->128) - norm - act, GAP, Linear(128, classes).

    77,130 parameters and 20.6 M MACs at 32x32 for 10 classes, as in the notebook.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        widths: tuple[int, int] = (64, 128),
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        conv_bias: bool | None = None,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        # conv_bias=None: a bias only where no norm follows (it is redundant before one); True keeps the
        # notebook's pre-BN habit for comparison (the normalization study measures what it costs)
        conv = {"norm_layer": norm_layer, "act_layer": act_layer, "bias": conv_bias}
        self.features = nn.Sequential(
            ConvBNAct(in_chans, widths[0], 3, **conv),
            ConvBNAct(widths[0], widths[1], 3, stride=2, **conv),
        )
        self.num_features = widths[1]
        self.feature_info = [
            {"num_chs": widths[0], "reduction": 1, "module": "features.0"},
            {"num_chs": widths[1], "reduction": 2, "module": "features.1"},
        ]
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    @staticmethod
    def checkpoint_filter_fn(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Accept the notebook's own state-dict keys (``features.0.weight``, ``classifier.bias``, ...)."""
        if not any(k.startswith("classifier.") for k in state):
            return dict(state)
        out = {}
        for key, value in state.items():
            for old, new in _NOTEBOOK_KEYS.items():
                if key.startswith(old):
                    key = new + key[len(old) :]
                    break
            out[key] = value
        return out


@register_model(
    family="simple",
    paper="Batch Normalization in CNNs study notebook (Ioffe & Szegedy 2015 BN; Lin et al. 2013 GAP head)",
    recipe=sgd_recipe(lr=0.2, epochs=30, warmup_epochs=1, label_smoothing=0.0),
)
def modern_gap_cnn(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ModernGAPCNN:
    """The notebook's ``ModernGAPCNN``."""
    return ModernGAPCNN(num_classes=num_classes, in_chans=in_chans, **kwargs)
