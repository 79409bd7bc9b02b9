"""Small helpers the engine tests share: a tiny run's config, a model snapshot, a stop at a given step."""

import os
import signal

from zoo.engine import build_config


def tiny_cfg(data_dir, out, **overrides):
    base = {
        "data_dir": str(data_dir),
        "out": str(out),
        "epochs": 2,
        "batch_size": 16,
        "progress": False,
        "plot": False,
        "eval_batch_size": 16,
        "download": False,
    }
    base.update(overrides)
    return build_config(base.pop("model", "modern_gap_cnn"), overrides=base)


def snapshot(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def stop_at(epoch_stop, step_stop, how="request"):
    def callback(trainer, epoch, step):
        if (epoch, step) == (epoch_stop, step_stop):
            if how == "signal":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                trainer.request_stop("test stop")

    return callback
