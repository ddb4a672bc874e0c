"""Reading a user's network: which layer is the output layer, what it takes, and how to describe it in JSON.

Architectures made of standard layers in an `nn.Sequential` are described as a layer list, so an artifact
rebuilds them from files alone; any other module class must be supplied again at load time.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from transferkit.errors import BackboneError

# layer type -> (attributes saved, constructor from them): what a layer list may hold
LAYERS: dict[str, tuple[tuple[str, ...], Any]] = {
    "Linear": (("in_features", "out_features", "bias"), lambda a: nn.Linear(a[0], a[1], bias=a[2])),
    "ReLU": ((), lambda a: nn.ReLU()),
    "GELU": (("approximate",), lambda a: nn.GELU(approximate=a[0])),
    "Tanh": ((), lambda a: nn.Tanh()),
    "Sigmoid": ((), lambda a: nn.Sigmoid()),
    "SiLU": ((), lambda a: nn.SiLU()),
    "ELU": (("alpha",), lambda a: nn.ELU(a[0])),
    "LeakyReLU": (("negative_slope",), lambda a: nn.LeakyReLU(a[0])),
    "Dropout": (("p",), lambda a: nn.Dropout(a[0])),
    "Identity": ((), lambda a: nn.Identity()),
    "Flatten": (("start_dim", "end_dim"), lambda a: nn.Flatten(a[0], a[1])),
    "LayerNorm": (("normalized_shape", "eps"), lambda a: nn.LayerNorm(a[0], eps=a[1])),
    "BatchNorm1d": (("num_features", "eps", "momentum"), lambda a: nn.BatchNorm1d(a[0], eps=a[1], momentum=a[2])),
    "BatchNorm2d": (("num_features", "eps", "momentum"), lambda a: nn.BatchNorm2d(a[0], eps=a[1], momentum=a[2])),
    "Conv2d": (
        ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
        lambda a: nn.Conv2d(
            *a[:2],
            tuple(a[2]),
            tuple(a[3]),
            a[4] if isinstance(a[4], str) else tuple(a[4]),
            tuple(a[5]),
            a[6],
            bias=a[7],
        ),
    ),
    "MaxPool2d": (("kernel_size", "stride", "padding"), lambda a: nn.MaxPool2d(a[0], a[1], a[2])),
    "AdaptiveAvgPool2d": (("output_size",), lambda a: nn.AdaptiveAvgPool2d(a[0])),
}
TRAILING_FREE = (nn.Softmax, nn.LogSoftmax, nn.Sigmoid, nn.Dropout, nn.Identity)  # may follow an output layer


def layer_list(module: nn.Module) -> list[dict[str, Any]] | None:
    """An nn.Sequential of known layers as JSON-ready dicts; None when it cannot be described that way."""
    if not isinstance(module, nn.Sequential):
        return None
    described = []
    for layer in module:
        kind = type(layer).__name__
        if kind not in LAYERS or type(layer) is not getattr(nn, kind):
            return None
        attrs = LAYERS[kind][0]
        values = [getattr(layer, a) for a in attrs]
        values = [
            v is not None if a == "bias" else list(v) if isinstance(v, tuple) else v for a, v in zip(attrs, values)
        ]
        described.append({"type": kind, "args": values})
    if repr(build_layers(described)) != repr(module):  # a setting the list does not record (e.g. padding_mode)
        return None
    return described


def build_layers(described: list[dict[str, Any]]) -> nn.Sequential:
    return nn.Sequential(*(LAYERS[d["type"]][1](d["args"]) for d in described))


def parse_mlp_spec(spec: str, data_width: int | None) -> list[dict[str, Any]]:
    """'mlp:1000-128' (input 1000, hidden 128) or 'mlp:128' (input width from the data): a ReLU MLP layer list."""
    body = spec.split(":", 1)[1]
    try:
        widths = [int(w) for w in body.split("-") if w.strip()]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise BackboneError(
            f"Cannot read {spec!r}: an MLP spec lists layer widths, e.g. mlp:1000-128 (1000 inputs, one hidden layer "
            "of 128) or mlp:256-64 (input width from the data, hidden layers 256 and 64)."
        )
    if len(widths) == 1:
        if data_width is None:
            raise BackboneError(f"{spec!r} needs the input width: write mlp:<inputs>-{widths[0]}.")
        widths = [data_width, *widths]
    layers: list[dict[str, Any]] = []
    for width_in, width_out in zip(widths, widths[1:]):
        layers += [{"type": "Linear", "args": [width_in, width_out, True]}, {"type": "ReLU", "args": []}]
    return layers


def flat_sequential(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """(name, layer) of an nn.Sequential, nested Sequentials flattened; None for any other module."""
    if type(module) is not nn.Sequential:
        return None
    flat: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        inner = flat_sequential(child)
        flat += [(f"{name}.{n}", m) for n, m in inner] if inner is not None else [(name, child)]
    return flat


def find_output_layer(module: nn.Module, output_layer: str | None) -> str:
    """The name of the layer to remove: the one given, or the last Linear when that is unambiguous."""
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if output_layer is not None:
        names = dict(module.named_modules())
        if output_layer not in names or not output_layer:
            listed = ", ".join(n for n, _ in linears) or "none"
            raise BackboneError(f"The module has no submodule {output_layer!r}. Its Linear layers: {listed}.")
        return output_layer
    if not linears:
        raise BackboneError(
            f"{type(module).__name__} has no nn.Linear layer, so transferkit cannot tell which layer is the output "
            "layer. Name it with output_layer='<submodule name>'."
        )
    flat = flat_sequential(module)
    if flat is not None:  # an nn.Sequential runs in order: the last Linear is the output layer
        last = max(i for i, (_, m) in enumerate(flat) if isinstance(m, nn.Linear))
        if all(isinstance(m, TRAILING_FREE) for _, m in flat[last + 1 :]):
            return flat[last][0]
    elif len(linears) == 1:
        return linears[0][0]
    described = ", ".join(f"{n} ({m.in_features}->{m.out_features})" for n, m in linears)
    raise BackboneError(
        f"{type(module).__name__} has several Linear layers ({described}) and its forward() decides their order, so "
        f"transferkit will not guess the output layer. The last one registered is {linears[-1][0]!r}: if that is the "
        f"output layer, confirm it with output_layer={linears[-1][0]!r}."
    )


def remove_output_layer(module: nn.Module, name: str) -> tuple[nn.Module, nn.Linear]:
    """A copy of the module without its output layer (and what followed it in a Sequential)."""
    import copy

    layer = module.get_submodule(name)
    if not isinstance(layer, nn.Linear):
        raise BackboneError(f"The output layer {name!r} is a {type(layer).__name__}; it must be an nn.Linear.")
    flat = flat_sequential(module)
    if flat is not None:
        index = [n for n, _ in flat].index(name)
        return nn.Sequential(*(copy.deepcopy(m) for _, m in flat[:index])), layer
    body = copy.deepcopy(module)
    body.set_submodule(name, nn.Identity())
    return body, layer


def first_linear_width(module: nn.Module) -> int:
    for child in module.modules():
        if isinstance(child, nn.Linear):
            return child.in_features
        if isinstance(child, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)):
            break
    raise BackboneError(
        f"{type(module).__name__} does not start with an nn.Linear layer, so its input width is unknown; "
        "user modules take feature vectors (rows of numbers) here."
    )
