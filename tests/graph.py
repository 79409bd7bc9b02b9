"""The model's dataflow, traced with torch.fx, for structural checks shared by several tests."""

import torch.fx
import torch.nn as nn

from zoo.engine.optim import NORM_TYPES  # what the engine treats as a normalization layer


class _Traceable(nn.Module):
    """forward_features + forward_head without the input check (whose branches torch.fx cannot trace)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_head(self.model.forward_features(x))


def conv_norm_pairs(model):
    """(conv, norm, single_reader) for every norm whose input is a conv's output, directly or through a
    max-pool; ``single_reader`` says nothing else reads that output (so the norm could fold into the conv)."""
    graph = torch.fx.symbolic_trace(_Traceable(model))
    modules = dict(graph.named_modules())
    pairs = []
    for node in graph.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], NORM_TYPES):
            continue
        src, single = node.args[0], True
        if src.op == "call_module" and isinstance(modules[src.target], nn.MaxPool2d):
            single = len(src.users) == 1
            src = src.args[0]
        if src.op == "call_module" and isinstance(modules[src.target], nn.Conv2d):
            pairs.append((modules[src.target], modules[node.target], single and len(src.users) == 1))
    return pairs
