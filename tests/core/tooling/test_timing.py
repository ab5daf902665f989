"""count_kernels: the aten ops a function dispatches, views left out."""

import torch

from nvrepro.core.tooling.timing import count_kernels


def test_count_kernels_counts_compute_ops_not_views():
    x = torch.ones(3, 4)
    # x.t() and x.view() are views; reshaping the transposed (non-contiguous) tensor copies it.
    assert count_kernels(lambda: (x.t().reshape(12) * 2).sum() + x.view(-1).exp().sum()) == \
        {"sum": 2, "clone": 1, "mul": 1, "exp": 1, "add": 1}
    assert count_kernels(lambda: x.t().unsqueeze(0)) == {}
