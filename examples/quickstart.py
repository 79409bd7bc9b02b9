"""Ten lines of zoo: pick a model by name, run it, save and reload its weights as safetensors."""

import tempfile
from pathlib import Path

import torch

import zoo

print(zoo.list_models("resnet*", max_params=1_000_000))
model = zoo.create("modern_gap_cnn").eval()  # the study notebook's network
print(zoo.model_info("modern_gap_cnn").params, "parameters")
x = torch.randn(4, 3, 32, 32)  # normalised CIFAR-sized images
path = Path(tempfile.mkdtemp()) / "modern_gap_cnn.safetensors"
zoo.save_weights(model, path, note="quickstart")
assert torch.equal(zoo.load(path).eval()(x), model(x))
print("logits:", tuple(model(x).shape), "- reloaded from", path.name)
