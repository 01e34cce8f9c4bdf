#!/usr/bin/env python3
"""CrypTen 0.4.1 on the same benchmark networks, measured side by side with
`cryptmed bench` on the same machine (not part of CI).

Setup (CrypTen 0.4.1 declares the defunct `sklearn` package, so install it without
dependencies and add the real ones; it needs torch 2.1, as later versions moved an
internal module its ONNX converter imports, and numpy 1 and onnx 1.15 to go with it;
keep the environment isolated: torch 2.1 imports any onnxscript it can see, and the one
python/requirements.txt installs for torch 2.15 does not load under numpy 1):

  python3 -m venv .venv-crypten
  .venv-crypten/bin/pip install "torch==2.1.2" "numpy<2" "onnx==1.15.0" "protobuf<5"
  .venv-crypten/bin/pip install --no-deps crypten==0.4.1
  .venv-crypten/bin/pip install pyyaml "pandas<2.3" "scipy<1.14" "scikit-learn<1.6" omegaconf
  .venv-crypten/bin/python python/crypten_bench.py [--json bench-out/crypten.json]

Two CrypTen parties run as two processes (crypten.mpc.run_multiprocess) with the
default trusted-first-party provider, so offline material is free and what is
measured is CrypTen's online phase: batch 1, the input encrypted by party 1 (the
client), logits revealed. Each CrypTen party counts what it sends and receives, so
the bytes between the two parties are half the sum of both counts (CrypTen's own
note in communicator.py); rounds are CrypTen's count (one per communication call);
time is the median of repeated forwards, the slower party's.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

NETS = {
    "secureml-mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)), (1, 1, 28, 28)),
    "chameleon-cnn": (lambda: nn.Sequential(nn.Conv2d(1, 5, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(980, 100), nn.ReLU(), nn.Linear(100, 10)), (1, 1, 28, 28)),
    "minionn-mnist": (lambda: nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 100), nn.ReLU(), nn.Linear(100, 10)), (1, 1, 28, 28)),
    "securenn-lenet": (lambda: nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10)), (1, 1, 28, 28)),
    "minionn-cifar": (lambda: nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 16, 1), nn.ReLU(), nn.Flatten(), nn.Linear(1024, 10)), (1, 3, 32, 32)),
    "medical-mlp": (lambda: nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2)), (1, 30)),
}


def measure(name, repeats):
    import crypten
    import crypten.communicator as comm

    crypten.cfg.communicator.verbose = True  # count bytes and rounds
    crypten.init()
    torch.manual_seed(0)
    make, shape = NETS[name]
    plain = make().eval()
    dummy = torch.rand(*shape)
    model = crypten.nn.from_pytorch(plain, dummy).encrypt(src=0)
    model.eval()
    times, stats = [], None
    for i in range(repeats):
        x = crypten.cryptensor(torch.rand(*shape), src=1)
        comm.get().reset_communication_stats()
        t = time.perf_counter()
        y = model(x).get_plain_text()
        times.append(time.perf_counter() - t)
        stats = comm.get().get_communication_stats()
    return {"network": name, "bytes_party": stats["bytes"], "rounds": stats["rounds"], "seconds_median": statistics.median(times), "seconds_min": min(times), "seconds_max": max(times)}


def one(name, repeats):
    """Both CrypTen parties on one network; returns the combined row."""
    import crypten.mpc as mpc

    out = mpc.run_multiprocess(world_size=2)(measure)(name, repeats)
    r0, r1 = out[0], out[1]
    return {
        "network": name,
        "system": "crypten-0.4.1",
        "online_bytes": (r0["bytes_party"] + r1["bytes_party"]) // 2,
        "online_rounds": max(r0["rounds"], r1["rounds"]),
        "online_seconds_median": max(r0["seconds_median"], r1["seconds_median"]),
        "online_seconds_min": max(r0["seconds_min"], r1["seconds_min"]),
        "online_seconds_max": max(r0["seconds_max"], r1["seconds_max"]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", nargs="*", default=list(NETS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    results = []
    for name in args.network:
        if len(args.network) == 1:
            row = one(name, args.repeats)
        else:
            # One process per network: a second run_multiprocess in the same
            # process can hang in CrypTen 0.4.1.
            out = subprocess.run([sys.executable, __file__, "--network", name, "--repeats", str(args.repeats)],
                                 check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        results.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
