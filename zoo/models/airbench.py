"""The airbench94 network (Keller Jordan 2024, arXiv:2404.00498), built from zoo's blocks.

A 2x2 patch stem (meant to be whitening-initialised from data, see `AirbenchNet.init_whitening`), three
groups of ``conv -> max-pool -> norm -> act -> conv -> norm -> act``, a global max-pool (the reference's
3x3 max-pool over the final 3x3 map) and a bias-free Linear whose logits are scaled by 1/9.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn

from ..layers import ClassifierHead, ConvBNAct, LayerType, create_act, create_norm, get_norm_layer
from ..registry import register_model
from ._base import ZooModel, sgd_recipe

__all__ = ["AirbenchNet", "airbench_batchnorm"]

# airbench's BatchNorm: running stats with (torch) momentum 0.4 and eps 1e-12.
airbench_batchnorm = functools.partial(nn.BatchNorm2d, eps=1e-12, momentum=0.4)


class ConvGroup(nn.Module):
    """conv1 -> 2x2 max-pool -> norm1 -> act -> conv2 -> norm2 -> act (pooling before the norm is cheaper)."""

    def __init__(self, in_chs: int, out_chs: int, *, norm_layer: LayerType, act_layer: LayerType) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=get_norm_layer(norm_layer) is None)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = create_norm(norm_layer, out_chs)
        self.act1 = create_act(act_layer)
        self.conv2 = ConvBNAct(out_chs, out_chs, 3, norm_layer=norm_layer, act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act1(self.norm1(self.pool(self.conv1(x)))))

    def fold_bn(self) -> None:
        """Fold norm1 into conv1 across the max-pool, which is exact when every BN scale is positive."""
        from ..fuse import fold_through_max_pool, is_foldable

        if is_foldable(self.norm1):
            fused = fold_through_max_pool(self.conv1, self.norm1)
            if fused is not None:
                self.conv1, self.norm1 = fused, nn.Identity()


class AirbenchNet(ZooModel):
    """airbench94's net; ``global_pool="avg"`` swaps the reference max-pool head for GAP."""

    def __init__(
        self,
        *,
        widths: tuple[int, int, int] = (64, 256, 256),
        stem_width: int = 24,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: LayerType = airbench_batchnorm,
        act_layer: LayerType = "gelu",
        drop_rate: float = 0.0,
        global_pool: str = "max",
        logit_scale: float = 1 / 9,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        self.stem = ConvBNAct(in_chans, stem_width, 2, padding=0, bias=True, norm_layer=None, act_layer=act_layer)
        groups, in_chs = [], stem_width
        for width in widths:
            groups.append(ConvGroup(in_chs, width, norm_layer=norm_layer, act_layer=act_layer))
            in_chs = width
        self.layers = nn.Sequential(*groups)
        self.feature_info = [{"num_chs": stem_width, "reduction": 1, "module": "stem"}]
        self.feature_info += [
            {"num_chs": w, "reduction": 2 ** (i + 1), "module": f"layers.{i}"} for i, w in enumerate(widths)
        ]
        self.num_features = in_chs
        self.head = ClassifierHead(
            in_chs, num_classes, pool_type=global_pool, drop_rate=drop_rate, bias=False, scale=logit_scale
        )
        for m in self.modules():  # airbench: identity (dirac) init on the first in_chs filters of each 3x3 conv
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                nn.init.dirac_(m.weight.data[: m.in_channels])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # the whitening stem runs in fp32 even under autocast: its filters scale by 1/sqrt(eigenvalue), and bf16
        # rounding of them and of their output is what the reference avoids (it costs under 1% of a step)
        if isinstance(x, torch.Tensor) and torch.amp.is_autocast_available(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                x = self.stem(x.float())
        else:  # the meta device (parameter and MAC counts) and torch.fx proxies (structure checks)
            x = self.stem(x)
        return self.layers(x)

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the 2x2 stem to whiten patches of ``images`` (normalised, NCHW): eigenvectors of the patch
        covariance scaled by 1/sqrt(eigenvalue), each filter also negated (hence ``stem_width = 2 * 12``)."""
        conv = self.stem.conv
        k = conv.kernel_size[0]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1)  # N, C, h, w, k, k
        patches = patches.transpose(1, 3).reshape(-1, conv.in_channels * k * k)
        patches = patches - patches.mean(0, keepdim=True)
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)
        n = conv.out_channels // 2
        filters = (eigenvectors / torch.sqrt(eigenvalues + eps)[:, None])[:n]
        filters = filters.view(n, conv.in_channels, k, k)  # patch layout was (C, kh, kw) -> back to filters
        conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))

    def init_from_data(self, images: torch.Tensor) -> None:
        """The engine's data-dependent init (``data_init``): whiten the stem on ``images`` and freeze its filters
        (airbench trains only the stem's bias)."""
        self.init_whitening(images)
        self.stem.conv.weight.requires_grad_(False)


@register_model(
    family="airbench",
    paper="Jordan 2024, 94% on CIFAR-10 in 3.29 Seconds on a Single GPU (arXiv:2404.00498), airbench94",
    recipe=sgd_recipe(lr=0.2, batch_size=1024, epochs=10, momentum=0.85, label_smoothing=0.2),
)
def airbench94_net(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> AirbenchNet:
    """airbench94's network (about 1.97 M parameters), reference max-pool head by default."""
    return AirbenchNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
