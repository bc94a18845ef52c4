#!/usr/bin/env python3
"""Load a model exported by `cargo xtask export` into PyTorch and evaluate it.

The modules here have the module names of the DeepIPR reference's *normal* models
(`AlexNetNormal`, `ResNet18`, ResNet-9: github.com/kamwoh/DeepIPR), written for this check,
with the channel counts scaled by the file's `width` (the reference's are width 1). The state
dict is loaded with `load_state_dict(safetensors.torch.load_file(path), strict=True)`; the test
images get the transform the file's metadata describe (IDX images zero-padded, centred, to the
model's input size, then normalised with its mean and std).

Usage:
    python3 bench/pytorch_load.py --model model.safetensors [--data /usr/share/datasets/fashion-mnist] [--save-pth model.pth]
Prints the accuracy on the test split; `--save-pth` also saves the module's state dict as the
reference saves its checkpoints (`torch.save(model.state_dict())`). Needs torch and safetensors.
"""

import argparse
import gzip
import json
import os
import struct
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def norm_layer(kind, c):
    return {"bn": lambda: nn.BatchNorm2d(c), "gn": lambda: nn.GroupNorm(max(1, c // 16), c), "in": lambda: nn.InstanceNorm2d(c)}.get(kind, lambda: None)()


class ConvBlock(nn.Module):
    def __init__(self, i, o, k=3, s=1, p=1, norm="bn"):
        super().__init__()
        self.conv = nn.Conv2d(i, o, k, s, p, bias=norm == "none")
        layer = norm_layer(norm, o)
        if layer is not None:
            self.bn = layer
        self.norm = norm

    def forward(self, x):
        x = self.conv(x)
        return F.relu(self.bn(x) if self.norm != "none" else x)


def ch(base, width):
    return max(1, round(base * width))


class AlexNetNormal(nn.Module):
    def __init__(self, in_channels, classes, norm, width, side):
        super().__init__()
        spec = {0: (64, 5, 2), 2: (192, 5, 2), 4: (384, 3, 1), 5: (256, 3, 1), 6: (256, 3, 1)}
        layers, c = [], in_channels
        for idx in range(8):
            if idx in (1, 3, 7):
                layers.append(nn.MaxPool2d(2, 2))
                side //= 2
                continue
            base, k, p = spec[idx]
            layers.append(ConvBlock(c, ch(base, width), k, 1, p, norm))
            c = ch(base, width)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * side * side, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, i, planes, stride, norm):
        super().__init__()
        self.convbnrelu_1 = ConvBlock(i, planes, 3, stride, 1, norm)
        self.convbn_2 = ConvBlock(planes, planes, 3, 1, 1, norm)
        self.shortcut = ConvBlock(i, planes, 1, stride, 0, norm) if stride != 1 or i != planes else nn.Sequential()

    def forward(self, x):
        return F.relu(self.convbn_2(self.convbnrelu_1(x)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks, in_channels, classes, norm, width):
        super().__init__()
        self.convbnrelu_1 = ConvBlock(in_channels, ch(64, width), 3, 1, 1, norm)
        c = ch(64, width)
        for n, (base, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)], start=1):
            stage = []
            for i in range(blocks):
                stage.append(BasicBlock(c, ch(base, width), stride if i == 0 else 1, norm))
                c = ch(base, width)
            setattr(self, f"layer{n}", nn.Sequential(*stage))
        self.linear = nn.Linear(c, classes)

    def forward(self, x):
        for n in range(1, 5):
            x = getattr(self, f"layer{n}")(self.convbnrelu_1(x) if n == 1 else x)
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x0803:
        rows, cols = struct.unpack(">II", data[8:16])
        return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).view(n, 1, rows, cols)
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise SystemExit(f"{folder}: no {stem}[.gz]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--save-pth", help="also write the loaded module's state dict with torch.save (a reference-style .pth)")
    args = ap.parse_args()
    with safe_open(args.model, "pt") as f:
        meta = f.metadata()
    classes, channels, side = int(meta["num_classes"]), int(meta["in_channels"]), int(meta["input_size"])
    width, norm = float(meta["width"]), meta["norm"]
    if meta["arch"] == "alexnet":
        model = AlexNetNormal(channels, classes, norm, width, side)
    else:
        model = ResNet(2 if meta["arch"] == "resnet18" else 1, channels, classes, norm, width)
    state = load_file(args.model)
    model.load_state_dict(state, strict=True)
    model.eval()
    images = read_idx(find(args.data, "t10k-images-idx3-ubyte")).float() / 255.0
    labels = read_idx(find(args.data, "t10k-labels-idx1-ubyte"))
    pad = (side - images.shape[-1]) // 2
    images = F.pad(images, (pad, side - images.shape[-1] - pad, pad, side - images.shape[-2] - pad))
    mean, std = torch.tensor(json.loads(meta["mean"])), torch.tensor(json.loads(meta["std"]))
    images = (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), 500):
            correct += (model(images[i:i + 500]).argmax(1) == labels[i:i + 500]).sum().item()
    if args.save_pth:
        torch.save(model.state_dict(), args.save_pth)
    print(json.dumps({"model": args.model, "module": meta["module"], "strict": True, "tensors": len(state), "test_images": len(images), "accuracy": correct / len(images)}))


if __name__ == "__main__":
    main()
