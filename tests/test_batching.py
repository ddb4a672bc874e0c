import torch

from transferkit.training.batching import LengthGroupedBatches, inference_batches
from transferkit.training.schedule import adamw, warmup_decay


def test_length_grouped_batches_cover_every_index_once_and_are_deterministic():
    lengths = [(i * 37) % 101 for i in range(250)]
    sampler = LengthGroupedBatches(lengths, batch_size=8, seed=3)
    sampler.set_epoch(1)
    first = list(sampler)
    assert sorted(i for batch in first for i in batch) == list(range(250))
    again = LengthGroupedBatches(lengths, 8, 3)
    again.set_epoch(1)
    assert list(again) == first
    sampler.set_epoch(2)
    assert list(sampler) != first  # a new order each epoch


def test_grouping_reduces_padding():
    lengths = [(i * 37) % 101 + 1 for i in range(400)]

    def padding(group: bool) -> int:
        sampler = LengthGroupedBatches(lengths, 16, 0, group_by_length=group)
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in sampler)

    assert padding(True) < padding(False) / 3


def test_inference_batches_sorted_longest_first():
    batches = inference_batches([3, 9, 1, 7], 2)
    assert batches == [[1, 3], [0, 2]]


def test_warmup_then_linear_and_cosine_decay():
    assert warmup_decay(0, 100, 10, "linear") == 0.1
    assert warmup_decay(9, 100, 10, "linear") == 1.0
    assert warmup_decay(100, 100, 10, "linear") == 0.0
    assert abs(warmup_decay(55, 100, 10, "cosine") - 0.5) < 1e-9
    assert warmup_decay(80, 100, 10, "constant") == 1.0


def test_adamw_is_fused_on_cpu_and_steps_like_the_default():
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    copies = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    fused = adamw([{"params": weights, "lr": 1e-2, "weight_decay": 0.01}])
    plain = torch.optim.AdamW([{"params": copies, "lr": 1e-2, "weight_decay": 0.01}])
    assert fused.defaults["fused"] is True
    for _ in range(3):
        for params, optimizer in ((weights, fused), (copies, plain)):
            optimizer.zero_grad()
            sum((p**2).sum() for p in params).backward()
            optimizer.step()
    for a, b in zip(weights, copies):
        torch.testing.assert_close(a, b)


def test_adamw_keeps_the_default_for_parameters_the_fused_kernel_cannot_take():
    class Wrapped(torch.Tensor):  # a tensor subclass (as sharded DTensor weights are)
        pass

    wrapped = torch.nn.Parameter(torch.randn(3).as_subclass(Wrapped))
    assert not adamw([{"params": [wrapped], "lr": 1e-3}]).defaults["fused"]
