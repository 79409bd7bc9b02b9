"""Driven by tests/test_distributed.py under torchrun: train on fake data, dump each rank's weights and eval."""

import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file

from zoo.data import load_cifar
from zoo.engine import Trainer, build_config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--sync-bn", action="store_true")
    p.add_argument("--nchw", action="store_true", help="contiguous NCHW instead of channels_last")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--stop-after-epoch", type=int, default=None, help="rank 0 alone asks to stop at that epoch end")
    p.add_argument("--crash-rank", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    rank = int(os.environ.get("RANK", "0"))

    def callbacks(trainer, epoch, step):
        last = step == trainer.steps_per_epoch - 1
        if args.stop_after_epoch is not None and rank == 0 and epoch + 1 == args.stop_after_epoch and last:
            trainer.request_stop("test stop on rank 0 only")
        if args.crash_rank == rank and step == 1:
            raise RuntimeError(f"injected failure on rank {rank}")

    if args.resume:
        trainer = Trainer.resume(os.path.join(args.out, args.name), callbacks=[callbacks])
    else:
        cfg = build_config(
            "resnet20",
            overrides={
                "data_dir": args.data_dir,
                "out": args.out,
                "run_name": args.name,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "sync_bn": args.sync_bn,
                "precision": "fp32",
                "progress": False,
                "plot": False,
                "eval_batch_size": 8,
                "download": False,
                "lr": args.lr,
                "channels_last": not args.nchw,
            },
        )
        trainer = Trainer(cfg, callbacks=[callbacks])
    summary = trainer.fit()
    test = load_cifar("cifar10", "test", args.data_dir, download=False)
    result = trainer.evaluate(test)
    tag = os.path.join(args.out, f"{args.name}.rank{rank}")
    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, tag + ".safetensors")
    with open(tag + ".json", "w") as f:
        json.dump({"status": summary["status"], "n": result["n"], "top1": result["top1"], "loss": result["loss"]}, f)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
