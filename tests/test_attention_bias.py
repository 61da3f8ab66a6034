"""Pure bias-table functions against an independent, loop-based reference."""
import itertools

import pytest
import torch

from levit_mm.attention_bias import attention_bias, table_index


def official_bias_index(res, stride):
    return table_index((res, res), stride)


def loop_index(res, stride):
    """The official code's construction: offsets numbered in order of first appearance."""
    sub = (res - 1) // stride + 1
    keys = list(itertools.product(range(res), range(res)))
    queries = list(itertools.product(range(sub), range(sub)))
    offsets, idxs = {}, []
    for qy, qx in queries:
        for ky, kx in keys:
            off = (abs(qy * stride - ky), abs(qx * stride - kx))
            offsets.setdefault(off, len(offsets))
            idxs.append(offsets[off])
    return torch.tensor(idxs).view(len(queries), len(keys))


@pytest.mark.parametrize('res, stride', [(14, 1), (7, 1), (4, 1), (14, 2), (7, 2), (5, 2)])
def test_official_index_matches_loop_construction(res, stride):
    assert torch.equal(official_bias_index(res, stride), loop_index(res, stride))


@pytest.mark.parametrize('res, stride', [(14, 1), (14, 2), (7, 2)])
def test_bias_at_trained_grid_is_the_official_gather(res, stride):
    table = torch.randn(3, res * res)
    q = ((res - 1) // stride + 1, ) * 2
    bias = attention_bias(table, (res, res), q, (res, res), stride)
    assert torch.equal(bias, table[:, loop_index(res, stride)])
