#!/usr/bin/env python3
"""PyTorch peer of `cargo xtask bench`: training-step time and evaluation throughput of passport
networks (spec §2, §3, §5) on random data, written independently of the reference code base.

Configurations: AlexNet and ResNet-18 at 32 px × schemes V0 (no passports), V1 (public passport)
and V2 (private passport). Passport layers follow configs/passport/{alexnet,resnet18}.toml:
AlexNet features 4, 5, 6; ResNet-18 every conv block of layer4, shortcut included.

The step is what the reference pays for: zero_grad, forward, loss, backward, optimizer.step (and
reading the loss back, as our Rust step does). V2 runs two full forward passes (public, then
private) through the same conv and the same non-affine batch norm, and one backward.

Usage:
    python3 bench/pytorch_peer.py [--steps N] [--batch B] [--only alexnet-v0,resnet18-v2,...]
                                  [--threads T] [--device cpu|cuda] [--json OUT]
Only torch is needed.
"""

import argparse
import json
import math
import os
import resource
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # numpy is not needed

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ARCHS = ("alexnet", "resnet18")
SCHEMES = ("v0", "v1", "v2")
GAMMA0 = 0.1  # sign-loss margin (spec §2)
SIGN_LOSS = 0.1  # α (spec §2, default)
SEED = 1


class ConvBlock(nn.Module):
    """conv → batch norm → affine (γ, β) → ReLU.

    `passport` is None (a normal block: conv without bias, affine batch norm), "v1" (γ/β from the
    public passports) or "v2" (a public path with trainable γ_pub/β_pub and a private path with
    passport γ/β, sharing the conv and the non-affine batch norm).
    `in_hw` is the spatial size of the block's input, the shape of its passports.
    """

    def __init__(self, cin, cout, k, stride, pad, in_hw, passport=None):
        super().__init__()
        self.passport = passport
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        self.bn = nn.BatchNorm2d(cout, affine=passport is None)
        self.last_gamma = None
        if passport is not None:
            # Fixed tensors: buffers (saved with the model, moved with .to(), never trained).
            self.register_buffer("key_gamma", torch.rand(1, cin, in_hw, in_hw) * 2 - 1)
            self.register_buffer("key_beta", torch.rand(1, cin, in_hw, in_hw) * 2 - 1)
            self.register_buffer("sign", torch.randint(0, 2, (cout,)).float() * 2 - 1)
        if passport == "v2":
            self.gamma_pub = nn.Parameter(torch.ones(cout))
            self.beta_pub = nn.Parameter(torch.zeros(cout))

    def passport_affine(self):
        """γ = mean over (n, h, w) of conv(P_γ; W); β likewise from P_β (same stride, padding)."""
        gamma = self.conv(self.key_gamma).mean(dim=(0, 2, 3))
        beta = self.conv(self.key_beta).mean(dim=(0, 2, 3))
        return gamma, beta

    def forward(self, x, private=False):
        y = self.bn(self.conv(x))
        if self.passport is None:
            return F.relu(y)
        if self.passport == "v1" or private:
            gamma, beta = self.passport_affine()
            self.last_gamma = gamma  # for the sign loss of this step
        else:
            gamma, beta = self.gamma_pub, self.beta_pub
        return F.relu(y * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1))

    def sign_loss(self):
        """α · Σ_c max(0, γ0 − b_c γ_c) + 1e-5 · Σ_c γ_c² on the γ of the last passport pass."""
        g = self.last_gamma
        self.last_gamma = None
        return SIGN_LOSS * F.relu(GAMMA0 - self.sign * g).sum() + 1e-5 * (g * g).sum()


class AlexNet32(nn.Module):
    """Reference AlexNet for 32×32 input; passport layers = feature indices in `passports`."""

    def __init__(self, scheme, classes=10, passports=(4, 5, 6)):
        super().__init__()
        kind = None if scheme == "v0" else scheme
        p = lambda i: kind if i in passports else None  # noqa: E731
        # Keyed by the reference's feature index, so module paths read `features.4` etc.
        self.features = nn.ModuleDict(
            {
                "0": ConvBlock(3, 64, 5, 1, 2, 32, p(0)),  # then 1: maxpool 2
                "2": ConvBlock(64, 192, 5, 1, 2, 16, p(2)),  # then 3: maxpool 2
                "4": ConvBlock(192, 384, 3, 1, 1, 8, p(4)),
                "5": ConvBlock(384, 256, 3, 1, 1, 8, p(5)),
                "6": ConvBlock(256, 256, 3, 1, 1, 8, p(6)),  # then 7: maxpool 2
            }
        )
        self.classifier = nn.Linear(4 * 4 * 256, classes)

    def forward(self, x, private=False):
        f = self.features
        x = F.max_pool2d(f["0"](x, private), 2)
        x = F.max_pool2d(f["2"](x, private), 2)
        x = f["4"](x, private)
        x = f["5"](x, private)
        x = F.max_pool2d(f["6"](x, private), 2)
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """convbnrelu_1 (3×3, stride s), convbn_2 (3×3), optional 1×1 shortcut block; every conv block
    ends in its own ReLU (reference quirk), output ReLU(convbn_2 + shortcut)."""

    def __init__(self, cin, cout, stride, in_hw, kind):
        super().__init__()
        out_hw = (in_hw - 1) // stride + 1
        self.convbnrelu_1 = ConvBlock(cin, cout, 3, stride, 1, in_hw, kind)
        self.convbn_2 = ConvBlock(cout, cout, 3, 1, 1, out_hw, kind)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = ConvBlock(cin, cout, 1, stride, 0, in_hw, kind)

    def forward(self, x, private=False):
        out = self.convbn_2(self.convbnrelu_1(x, private), private)
        short = x if self.shortcut is None else self.shortcut(x, private)
        return F.relu(out + short)


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3×3 stem 64, stages 64/128/256/512 × [2, 2, 2, 2], strides 1, 2, 2, 2,
    global average pool, Linear(512, classes). Passport layers: every conv block of the stages
    listed in `passport_stages` (default layer4)."""

    def __init__(self, scheme, classes=10, passport_stages=(4,)):
        super().__init__()
        kind = None if scheme == "v0" else scheme
        self.convbnrelu_1 = ConvBlock(3, 64, 3, 1, 1, 32, None)
        cin, hw = 64, 32
        stages = []
        for i, (cout, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)], start=1):
            k = kind if i in passport_stages else None
            blocks = []
            for s in (stride, 1):
                blocks.append(BasicBlock(cin, cout, s, hw, k))
                cin, hw = cout, (hw - 1) // s + 1
            stages.append(nn.ModuleList(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512, classes)

    def forward(self, x, private=False):
        x = self.convbnrelu_1(x, private)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                x = block(x, private)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.linear(torch.flatten(x, 1))


def build(arch, scheme):
    return AlexNet32(scheme) if arch == "alexnet" else ResNet18(scheme)


def passport_blocks(model):
    return [m for m in model.modules() if isinstance(m, ConvBlock) and m.passport is not None]


def train_step(model, blocks, scheme, opt, images, labels):
    """One full SGD step; returns (loss, correct count) read back to the host."""
    opt.zero_grad(set_to_none=True)
    if scheme == "v2":
        # Two full forward passes (public, then private), one backward.
        logits_pub = model(images, private=False)
        logits = model(images, private=True)
        loss = F.cross_entropy(logits_pub, labels) + F.cross_entropy(logits, labels)
    else:
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
    for b in blocks:
        loss = loss + b.sign_loss()
    loss.backward()
    opt.step()
    hits = (logits.detach().argmax(dim=1) == labels).sum()
    return loss.item(), int(hits.item())


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(arch, scheme, device, steps, batch):
    torch.manual_seed(SEED)
    model = build(arch, scheme).to(device)
    model.train()
    blocks = passport_blocks(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    # Inputs are drawn on the CPU so that they are the same on every device.
    images = torch.randn(batch, 3, 32, 32).to(device)
    labels = (torch.arange(batch) % 10).to(device)
    times = []
    for i in range(steps + 2):
        sync(device)
        started = time.perf_counter()
        loss, _ = train_step(model, blocks, scheme, opt, images, labels)
        sync(device)
        elapsed = time.perf_counter() - started
        if not math.isfinite(loss):
            raise RuntimeError(f"{arch} {scheme}: the benchmark loss diverged")
        if i >= 2:
            times.append(elapsed)
    times.sort()

    # Evaluation: the public model (V2's public path; V1 still computes γ/β from its passports).
    model.eval()
    eval_images = torch.randn(256, 3, 32, 32).to(device)
    rounds = 4
    with torch.no_grad():
        model(eval_images).cpu()  # warm-up
        sync(device)
        started = time.perf_counter()
        for _ in range(rounds):
            model(eval_images).cpu()
        sync(device)
        eval_s = time.perf_counter() - started
    return {
        "arch": arch,
        "scheme": scheme,
        "step_median_s": times[len(times) // 2],
        "step_min_s": times[0],
        "step_max_s": times[-1],
        "eval_images_per_s": 256 * rounds / eval_s,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps after 2 warm-up steps")
    ap.add_argument("--batch", type=int, default=64, help="training batch size")
    ap.add_argument("--only", default="", help="comma list of arch-scheme, e.g. alexnet-v0,resnet18-v2")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--json", default="", help="write the rows as JSON here")
    args = ap.parse_args()
    if args.steps < 1 or args.batch < 1:
        ap.error("--steps and --batch must be at least 1")

    configs = [(a, s) for a in ARCHS for s in SCHEMES]
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        known = {f"{a}-{s}" for a, s in configs}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            ap.error(f"unknown configuration(s) {unknown}; known: {sorted(known)}")
        configs = [(a, s) for a, s in configs if f"{a}-{s}" in wanted]

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device} ({name})")
    print(f"batch {args.batch}, {args.steps} timed steps after 2 warm-up steps, eval batch 256")

    rows = []
    for arch, scheme in configs:
        row = measure(arch, scheme, device, args.steps, args.batch)
        print(
            f"{row['arch']:<9} {row['scheme']:<3} step median {row['step_median_s']:.3f} s "
            f"(min {row['step_min_s']:.3f}, max {row['step_max_s']:.3f}), "
            f"eval {row['eval_images_per_s']:.0f} images/s",
            flush=True,
        )
        rows.append(row)
    for arch in ARCHS:
        step = {r["scheme"]: r["step_median_s"] for r in rows if r["arch"] == arch}
        if all(s in step for s in SCHEMES):
            print(
                f"{arch:<9} step time V1/V0 {step['v1'] / step['v0']:.2f}, "
                f"V2/V1 {step['v2'] / step['v1']:.2f}, V2/V0 {step['v2'] / step['v0']:.2f}"
            )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if device.type == "cuda":
        print(f"peak CUDA memory allocated {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")
    if args.json:
        parent = os.path.dirname(args.json)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
