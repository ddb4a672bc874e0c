"""`--fsdp`: train a phase of a multi-process run on a sharded copy of the model (PyTorch FSDP2, `fully_shard`).

Each process holds 1/N of every parameter, gradient and optimizer state; a block's full weights exist only while it
runs forward or backward. The plain model stays as it was (on the CPU when training on GPUs: the usual way to
shard a model that does not fit one device), and receives the trained weights at the end of the phase, so
everything after training (cached features, calibration, saving, export) sees an ordinary module.

Why not accelerate's FSDP plugin: accelerate turns FSDP into plain DDP on CPU (its FSDP path is GPU-only), and the
tests here run on CPU with gloo, where torch's own `fully_shard` works. Why a copy: FSDP2 swaps the module's class
and its parameters for DTensors, with no supported way back.

The loss weighting of distributed.py carries over unchanged: FSDP2 averages gradients over processes as DDP does.
Checkpoints hold full (unsharded) weights and optimizer state in the plain layout, gathered by every process and
written by rank 0: a sharded run checkpoints the same file a one-process run would, and resumes either way.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from transferkit.errors import ConfigError


def wants_sharding(fsdp: bool, module: nn.Module) -> bool:
    """Shard this phase? With --fsdp, several processes, and a whole model (a backbone and a head) to train; a
    head-only phase on cached features is too small to shard and trains under DDP."""
    from transferkit.training.distributed import world

    if not fsdp:
        return False
    if world()[1] == 1:
        raise ConfigError(
            "--fsdp shards the model between processes: run with --nproc N (N >= 2) or under torchrun, or drop --fsdp."
        )
    return hasattr(module, "backbone") and hasattr(module, "head")


def shard_copy(model: nn.Module, param_groups: list[dict], device: torch.device, mixed_precision: str):
    """(a sharded copy of `model` on `device`, `param_groups` pointing at the copy's parameters)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from transferkit.training.distributed import world

    names = {id(p): name for name, p in model.named_parameters()}
    sharded = copy.deepcopy(
        model
    )  # copied where the plain model is (the CPU): fully_shard moves each shard to `device`
    mesh = init_device_mesh(device.type, (world()[1],))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
    options: dict[str, Any] = {"mesh": mesh}
    if dtype is not None:
        options["mp_policy"] = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    for block in sharded.backbone.blocks():  # one all-gather per block: its weights are whole only while it runs
        fully_shard(block, **options)
    fully_shard(sharded, **options)  # the rest (embeddings, head, ...) as one group
    params = dict(sharded.named_parameters())
    groups = [{**g, "params": [params[names[id(p)]] for p in g["params"]]} for g in param_groups]
    return sharded, groups


def is_sharded(module: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def _options(**extra: Any):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **extra)


def full_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, whole, on the CPU, in every process (a collective: all processes call it)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    state = get_model_state_dict(module, options=_options())
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def load_full_state(module: nn.Module, state: dict[str, torch.Tensor]):
    """Load a whole state dict into a sharded module (each process keeps its shard); returns missing/unexpected."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    return set_model_state_dict(module, state, options=_options(strict=False))


def full_optimizer_state(module: nn.Module, optimizer) -> dict[str, Any]:
    """The optimizer's whole state (a collective) in plain `optimizer.state_dict()` form: parameters numbered in
    param-group order, so a checkpoint of a sharded run resumes unsharded, with any number of processes."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    named = get_optimizer_state_dict(module, optimizer, options=_options())
    order = {name: i for i, name in enumerate(n for g in named["param_groups"] for n in g["params"])}
    return {
        "state": {order[name]: state for name, state in named["state"].items()},
        "param_groups": [{**g, "params": [order[n] for n in g["params"]]} for g in named["param_groups"]],
    }


def load_full_optimizer_state(module: nn.Module, optimizer, state: dict[str, Any]) -> None:
    """The inverse of full_optimizer_state: plain numbered state into a sharded module's optimizer."""
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    names_of = {id(p): name for name, p in module.named_parameters()}
    names = [names_of[id(p)] for g in optimizer.param_groups for p in g["params"]]
    named = {
        "state": {names[i]: value for i, value in state["state"].items()},
        "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]],
    }
    set_optimizer_state_dict(module, optimizer, named, options=_options())


def unshard_into(model: nn.Module, sharded: nn.Module) -> None:
    """Give the plain `model` the sharded copy's trained weights (a collective)."""
    model.load_state_dict(full_state(sharded))  # copied into the plain model's tensors, on their own devices


def mirror_modes(source: nn.Module, target: nn.Module) -> None:
    """Copy train/eval mode module by module (the strategies set it on the plain model: frozen parts in eval)."""
    for (_, a), (_, b) in zip(source.named_modules(), target.named_modules()):
        b.training = a.training
