"""Model families; importing this package registers every built-in model."""

from ..registry import attach_published_weights
from ._base import ZooModel, check_input, init_weights
from .airbench import AirbenchNet
from .mobilenetv2 import MobileNetV2
from .preact_resnet import PreActResNet
from .resnet import ResNet
from .resnet9 import ResNet9
from .simple import ModernGAPCNN
from .vgg import VGG
from .wide_resnet import wide_resnet

attach_published_weights()  # the weights shipped in zoo/pretrained/, with their pinned hashes

__all__ = [
    "VGG",
    "AirbenchNet",
    "MobileNetV2",
    "ModernGAPCNN",
    "PreActResNet",
    "ResNet",
    "ResNet9",
    "ZooModel",
    "check_input",
    "init_weights",
    "wide_resnet",
]
