#!/usr/bin/env python3
"""Write the seeds of the `pth` fuzz target: tiny DeepIPR reference state dicts.

The generator of the verifier's fixtures (crates/ipr-verify/tests/fixtures/make_reference.py)
at one input channel and two classes, so that each file holds a few kilobytes of weights:
AlexNet at width 1/32, V1 and V2 (passports at features.4/5/6), and V1 also in the legacy
(pre-1.6, non-zip) format; ResNet-18 at width 1/64, V1 (passports in layer4).

Usage:  pip install torch && python3 fuzz/make_pth_seeds.py [OUT_DIR]   (default fuzz/seeds/pth)
"""

import os
import sys
import warnings

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "crates", "ipr-verify", "tests", "fixtures"))

import torch  # noqa: E402
import make_reference as ref  # noqa: E402

ref.NUM_CLASSES = 2
ref.IN_CHANNELS = 1
ref.ALEX_CH = {0: 2, 2: 6, 4: 12, 5: 8, 6: 8}
ref.RES_PLANES = (1, 2, 4, 8)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "seeds", "pth")
    os.makedirs(out, exist_ok=True)
    specs = [("alexnet", "v1", 1, True), ("alexnet", "v2", 2, True), ("resnet18", "v1", 3, True), ("alexnet", "v1", 1, False)]
    for arch, scheme, seed, zip_format in specs:
        path = os.path.join(out, f"{arch}_{scheme}{'' if zip_format else '_legacy'}.pth")
        torch.save(ref.build(arch, scheme, seed).state_dict(), path, _use_new_zipfile_serialization=zip_format)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
