"""Train a model class of your own (not registered) on CIFAR-10 with zoo's engine. DIR holds cifar-10-batches-*."""

import sys

import torch.nn as nn

from zoo.engine import configure_process, fit, resolve_device
from zoo.layers import ClassifierHead, ConvBNAct


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvBNAct(3, 32, 3), ConvBNAct(32, 64, 3, stride=2), ConvBNAct(64, 128, 3, 2))
        self.head = ClassifierHead(128, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


configure_process(resolve_device("auto"))  # once per process, as zoo.train does: threads, malloc, cuDNN
summary = fit(TinyNet(), "cifar10", data_dir=sys.argv[1] if len(sys.argv) > 1 else None, epochs=5, lr=0.2)
print(f"test top-1 {summary['test_top1']:.2f}% - weights in {summary['run_dir']}/last.safetensors (weights-only)")
