"""Inference MLP layers (ReLU in place): the same numbers as the plain layers."""

from __future__ import annotations

import pytest
import torch

from neuralbody.models.inference_mlp import linear_act, linear_act_reference, mlp_inference


@pytest.mark.parametrize("activation", ["relu", "none"])
def test_linear_act_equals_reference(activation):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1037, 48, generator=generator)
    weight = torch.randn(32, 48, generator=generator)
    bias = torch.randn(32, generator=generator)
    expected = linear_act_reference(x, weight, bias, activation)
    with torch.no_grad():
        out = linear_act(x, weight, bias, activation)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-5)
    if activation == "relu":
        assert (out >= 0).all() and (out == 0).any()


def test_linear_act_keeps_gradients_and_other_dtypes():
    generator = torch.Generator().manual_seed(1)
    layer = torch.nn.Linear(6, 5).double()
    x = torch.randn(20, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    out = linear_act(x, layer.weight, layer.bias, "relu")  # gradients wanted: the reference path
    assert out.requires_grad
    torch.autograd.gradcheck(lambda v: linear_act(v, layer.weight, layer.bias, "relu"), (x,))
    with torch.no_grad():
        torch.testing.assert_close(linear_act(x, layer.weight, layer.bias), torch.relu(layer(x)), rtol=1e-6, atol=1e-5)


def test_mlp_inference_equals_the_sequential():
    torch.manual_seed(2)
    layers = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(16, 24), torch.nn.ReLU(),
                                 torch.nn.Linear(24, 24), torch.nn.ReLU(), torch.nn.Linear(24, 3))
    x = torch.randn(300, 16)
    kept = x.clone()
    with torch.no_grad():
        expected = layers(x)
        torch.testing.assert_close(mlp_inference(x, layers), expected, rtol=1e-6, atol=1e-5)
        assert torch.equal(x, kept)  # the input is not overwritten unless asked
        torch.testing.assert_close(mlp_inference(x, layers, overwrite_input=True), expected, rtol=1e-6, atol=1e-5)
        assert torch.equal(x, torch.relu(kept))


def test_guards():
    weight = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="activation"):
        linear_act(torch.zeros(2, 3), weight, None, "gelu")
    with pytest.raises(ValueError, match=r"x must be \(N, 3\)"):
        linear_act(torch.zeros(2, 5), weight, None)
    with pytest.raises(ValueError, match="Linear and ReLU"):
        mlp_inference(torch.zeros(2, 3), torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh()))

