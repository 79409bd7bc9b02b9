"""torch.hub entry points: ``torch.hub.load("OWNER/zoo", "resnet20", pretrained=True)`` or, from a checkout,
``torch.hub.load(PATH, "resnet20", source="local", pretrained=True)``. One entry per registered model."""

import zoo as _zoo

dependencies = ["torch", "torchvision", "timm", "safetensors"]


def _entry(name: str):
    def builder(pretrained: bool = False, **kwargs):
        return _zoo.create(name, pretrained=pretrained, **kwargs)

    builder.__name__ = name
    info = _zoo.model_info(name)
    builder.__doc__ = f"{name}: {info.paper}. Weights: {', '.join(info.tags) or 'none'}."
    return builder


for _name in _zoo.list_models():
    globals()[_name] = _entry(_name)
