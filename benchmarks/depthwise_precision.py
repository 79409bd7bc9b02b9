"""Strided depthwise convs under CPU bf16 autocast: bf16 vs fp32, side by side in one run.

oneDNN has a bf16 depthwise kernel for the forward pass and the weight gradient, but the input gradient of a
*strided* depthwise conv falls back to a generic kernel; the engine therefore computes those convs in fp32
under CPU bf16 autocast (``zoo.engine.device.fp32_strided_depthwise``). This script measures that choice on
the machine it runs on:

(a) each strided depthwise conv of the model alone, at its real input shape: forward + backward in bf16 vs fp32;
(b) a whole training step (SGD, bf16 autocast, channels_last) with every conv in bf16 vs the engine's policy,
    in interleaved rounds so that both see the same machine state.

    python benchmarks/depthwise_precision.py [--model mobilenetv2_x0_5] [--batch-size 128] [--rounds 5]

Run it with nothing else on the cores; ``ONEDNN_VERBOSE=1`` shows which kernel each conv runs.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from _throughput import bare_loop_images_per_s, machine_line, time_calls

import zoo
from zoo.engine.device import is_strided_depthwise


def conv_ms(conv: nn.Conv2d, shape: tuple[int, ...], dtype: torch.dtype) -> float:
    """Forward + backward (input and weight gradients) of ``conv`` on a channels_last batch of ``shape``."""
    conv = copy.deepcopy(conv).to(dtype=dtype, memory_format=torch.channels_last)
    x = torch.randn(shape, dtype=dtype).to(memory_format=torch.channels_last).requires_grad_()

    def run() -> None:
        conv(x).float().sum().backward()

    return min(time_calls(run, torch.device("cpu"), steps=5, warmup=1)) * 1e3  # warm-up: oneDNN builds kernels


def input_shapes(model: nn.Module, batch_size: int) -> dict[str, tuple[int, ...]]:
    """The input shape of each strided depthwise conv of ``model`` at ``batch_size``, by module name."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            shapes[name] = (batch_size, *args[0].shape[1:])

        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in model.named_modules() if is_strided_depthwise(m)]
    with torch.no_grad():
        model.eval()(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    return shapes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mobilenetv2_x0_5")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the whole-step comparison")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = zoo.create(args.model)
    shapes = input_shapes(model, args.batch_size)
    if not shapes:
        print(f"{args.model} has no strided depthwise conv: the policy changes nothing")
        return 0
    print(f"{machine_line()}, batch {args.batch_size}")
    print("\n(a) strided depthwise conv alone, forward + backward, channels_last")
    print("| conv | input | bf16 ms | fp32 ms | bf16 / fp32 |")
    print("| --- | --- | --- | --- | --- |")
    modules = dict(model.named_modules())
    for name, shape in shapes.items():
        bf16, fp32 = (conv_ms(modules[name], shape, dtype) for dtype in (torch.bfloat16, torch.float32))
        print(f"| {name} | {'x'.join(map(str, shape))} | {bf16:.1f} | {fp32:.1f} | {bf16 / fp32:.1f} |")

    torch.manual_seed(0)
    policy_label = f"engine policy ({len(shapes)} strided depthwise convs in fp32)"
    models = {"all convs bf16": (zoo.create(args.model), False), policy_label: (zoo.create(args.model), True)}
    rate: dict[str, float] = {k: 0.0 for k in models}
    for _ in range(args.rounds):  # interleaved, so both variants see the same machine state
        for key, (model, policy) in models.items():
            measured = bare_loop_images_per_s(
                model, args.batch_size, steps=1, warmup=1, device="cpu", precision="bf16", precision_policy=policy
            )
            rate[key] = max(rate[key], measured)
    print(f"\n(b) {args.model} training step, bf16 autocast, best of {args.rounds} interleaved rounds")
    print("| variant | images/s |")
    print("| --- | --- |")
    for key, value in rate.items():
        print(f"| {key} | {value:.0f} |")
    print(f"engine policy / all bf16: {rate[policy_label] / rate['all convs bf16']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
