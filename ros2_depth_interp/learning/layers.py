"""The building blocks of the networks (after Makarov et al.): ELU, 3x3 convolutions, residual
and projection blocks."""
import torch
from torch import nn
from torch.nn import functional as F


def elu(x):
    """ELU. In an ONNX export it is written as max(x, exp(min(x, 0)) - 1), the same function
    (e^x - 1 >= x for every x, with equality at 0): ONNX Runtime's CPU Elu kernel is several times
    slower than its Exp, Min and Max."""
    if torch.onnx.is_in_onnx_export():
        return torch.maximum(x, torch.exp(torch.clamp(x, max=0.0)) - 1.0)
    return F.elu(x)


class ELU(nn.Module):
    """``elu`` as a module, for ``nn.Sequential``."""

    def forward(self, x):
        return elu(x)


def conv3x3(cin, cout, dilation=1, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with ELU and an identity skip; a projection block (1x1 convolution on
    the identity path) where the width or the resolution changes."""

    def __init__(self, cin, cout, dilation=1, stride=1):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, dilation, stride)
        self.conv2 = conv3x3(cout, cout, dilation)
        projects = cin != cout or stride != 1
        self.project = nn.Conv2d(cin, cout, 1, stride=stride) if projects else nn.Identity()

    def forward(self, x):
        y = elu(self.conv1(x))
        y = self.conv2(y)
        return elu(y + self.project(x))
