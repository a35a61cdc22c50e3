"""PyTorch models for ``initcheck model``: correct ones, and the bugs that live in models.

    initcheck model examples/torch_models.py:tiny_transformer
    initcheck model examples/torch_models.py:skips_subclass --rules examples/xavier_rules.toml

Every factory returns a freshly built model; initcheck seeds torch before
each call.
"""

import torch
from torch import nn


# ----------------------------------------------------------------------------- correct models


def mlp():
    """The tutorial MLP: every parameter keeps its layer's default."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def small_cnn():
    """Convolutions, batch norm and a linear head, with their defaults."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, groups=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )


class TinyTransformer(nn.Module):
    """An embedding with a padding row, two encoder layers (fused attention
    projections, layer norms) and a language-model head tied to the embedding."""

    def __init__(self, vocab=1000, width=64):
        super().__init__()
        self.embed = nn.Embedding(vocab, width, padding_idx=0)
        layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=128, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied on purpose


def tiny_transformer():
    return TinyTransformer()


def xavier_mlp():
    """The pattern tutorials teach: ``net.apply(init_weights)`` with xavier
    weights and zero biases (check it with examples/xavier_rules.toml)."""
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    return net.apply(init_weights)


# ----------------------------------------------------------------------------- planted bugs


class ResidualLinear(nn.Linear):
    """A subclass of nn.Linear (say, with a residual connection in forward)."""


def skips_subclass():
    """``type(m) == nn.Linear`` skips the subclass: its layer keeps torch's
    default U(±1/√fan_in) while the rules say xavier and zero bias."""
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), ResidualLinear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def init_weights(module):
        if type(module) == nn.Linear:  # noqa: E721 (the bug)
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    return net.apply(init_weights)


def reseeded_blocks():
    """Every block re-seeds the global generator alike before it is built: all
    blocks are the same tensors, in every instance."""
    blocks = []
    for _ in range(3):
        torch.manual_seed(1234)
        blocks.append(nn.Sequential(nn.Linear(128, 128), nn.Tanh()))
    return nn.Sequential(*blocks)


def ignores_seed():
    """The factory seeds torch itself: every instance is the same model."""
    torch.manual_seed(0)
    return mlp()


def fused_two_laws():
    """A fused attention projection whose value third is re-initialized with
    another law: one tensor, two laws (rows 128-191 of in_proj_weight)."""
    attention = nn.MultiheadAttention(64, num_heads=4)
    with torch.no_grad():
        nn.init.normal_(attention.in_proj_weight[128:], std=0.02)
    return attention


def padding_overwritten():
    """``normal_`` over a whole embedding after construction: the padding row
    is no longer zero."""
    embed = nn.Embedding(500, 64, padding_idx=0)
    nn.init.normal_(embed.weight, std=1.0)
    return nn.Sequential(embed)


class Scaled(nn.Module):
    """A layer of the user's own with a parameter no framework documents."""

    def __init__(self, width=64):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.scale = nn.Parameter(torch.ones(width))


def custom_parameter():
    return Scaled()
