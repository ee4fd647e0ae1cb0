"""Plain-PyTorch versions of the d2l networks, written from
shared/reference/classic-cnns.md and independently of specc. Each module's
parameters are created in the order the spec writes its layers."""
import torch
from torch import nn


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


def lenet_bn():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10))


def alexnet():
    return nn.Sequential(
        nn.Conv2d(1, 96, 11, 4, 1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10))


def _vgg(arch, fc_in):
    layers, c = [], 1
    for convs, channels in arch:
        for _ in range(convs):
            layers += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU()]
            c = channels
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(fc_in, 4096), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10))


def vgg11():
    arch = [(1, 16), (1, 32), (2, 64), (2, 128), (2, 128)]
    return _vgg(arch, 128 * 7 * 7)


def vgg16():
    return _vgg([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], 512 * 7 * 7)


def _nin_block(cin, cout, k, s, p):
    return [nn.Conv2d(cin, cout, k, s, p), nn.ReLU(), nn.Conv2d(cout, cout, 1), nn.ReLU(),
            nn.Conv2d(cout, cout, 1), nn.ReLU()]


def nin():
    return nn.Sequential(
        *_nin_block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), *_nin_block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
        *_nin_block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5), *_nin_block(384, 10, 3, 1, 1),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


class Inception(nn.Module):
    def __init__(self, cin, c1, c2, c3, c4):
        super().__init__()
        self.p1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
        self.p2 = nn.Sequential(nn.Conv2d(cin, c2[0], 1), nn.ReLU(), nn.Conv2d(c2[0], c2[1], 3, padding=1), nn.ReLU())
        self.p3 = nn.Sequential(nn.Conv2d(cin, c3[0], 1), nn.ReLU(), nn.Conv2d(c3[0], c3[1], 5, padding=2), nn.ReLU())
        self.p4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, c4, 1), nn.ReLU())

    def forward(self, x):
        return torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], dim=1)


def googlenet():
    return nn.Sequential(
        nn.Conv2d(1, 64, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        Inception(192, 64, (96, 128), (16, 32), 32), Inception(256, 128, (128, 192), (32, 96), 64),
        nn.MaxPool2d(3, 2, 1),
        Inception(480, 192, (96, 208), (16, 48), 64), Inception(512, 160, (112, 224), (24, 64), 64),
        Inception(512, 128, (128, 256), (24, 64), 64), Inception(512, 112, (144, 288), (32, 64), 64),
        Inception(528, 256, (160, 320), (32, 128), 128), nn.MaxPool2d(3, 2, 1),
        Inception(832, 256, (160, 320), (32, 128), 128), Inception(832, 384, (192, 384), (48, 128), 128),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(1024, 10))


class Residual(nn.Module):
    """d2l's Residual with its layers created in reading order (conv1 bn1 conv2 bn2 conv3)."""

    def __init__(self, cin, cout, stride=1, projection=False):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout))
        self.shortcut = nn.Conv2d(cin, cout, 1, stride) if projection else nn.Identity()

    def forward(self, x):
        return torch.relu(self.main(x) + self.shortcut(x))


def resnet18():
    return nn.Sequential(
        nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        Residual(64, 64), Residual(64, 64),
        Residual(64, 128, 2, True), Residual(128, 128),
        Residual(128, 256, 2, True), Residual(256, 256),
        Residual(256, 512, 2, True), Residual(512, 512),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))


class DenseBlock(nn.Module):
    def __init__(self, convs, cin, growth):
        super().__init__()
        self.net = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(cin + i * growth), nn.ReLU(), nn.Conv2d(cin + i * growth, growth, 3, padding=1))
            for i in range(convs))

    def forward(self, x):
        for block in self.net:
            x = torch.cat((x, block(x)), dim=1)
        return x


def densenet():
    layers, c = [nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], 64
    for i in range(4):
        layers.append(DenseBlock(4, c, 32))
        c += 4 * 32
        if i != 3:
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1), nn.AvgPool2d(2, 2)]
            c //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                         nn.Linear(c, 10))


REFERENCES = {f.__name__: f for f in (lenet, lenet_bn, alexnet, vgg11, vgg16, nin, googlenet, resnet18, densenet)}
