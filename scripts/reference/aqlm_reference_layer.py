#!/usr/bin/env python3
"""Runs the public reference implementation's AQLM layer quantizer (github Vahe1994/AQLM,
AQEngine from aq_engine.py, imported from a checkout given on the command line: nothing of it
is copied here) on one W/XTX layer problem (.safetensors with tensors W [out, in] and
XTX [in, in], as written by scripts/reference/synthetic_layer.py or bench_quant_layer
--save-problem) and prints one JSON object: the relative output error
tr(E XTX E^T) / tr(W XTX W^T) (E = W' - W, float64) and the seconds after each epoch.

Needs torch (CUDA for realistic times) and tqdm. Example, on the GPU machine:

    python3 scripts/reference/synthetic_layer.py --out 4096 --in 4096 --seed 0 /tmp/layer.safetensors
    python3 scripts/reference/aqlm_reference_layer.py /tmp/layer.safetensors \
        --aqlm-repo /path/to/AQLM --config 1x16g8 --epochs 2 --device cuda

Reference settings follow its README recipes: Adam lr 1e-4 with betas (0, 0.95) (its AQEngine
adds amsgrad), 100 steps per epoch, beam 1 for 1x16 and 8 for 2x8, k-means init with
--init-max-iter iterations. The early-stopping tolerance is off so exactly --epochs epochs run.
"""
import argparse
import json
import random
import re
import subprocess
import sys
import time


def parse_config(text):
    m = re.fullmatch(r"(\d+)x(\d+)g(\d+)", text)
    if not m:
        raise SystemExit(f"config '{text}' is not of the form MxBgG")
    return int(m[1]), int(m[2]), int(m[3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("problem", help=".safetensors with W and XTX")
    ap.add_argument("--aqlm-repo", required=True, help="root of a Vahe1994/AQLM checkout (holds aq_engine.py, src/)")
    ap.add_argument("--config", default="1x16g8")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100, help="Adam steps per epoch")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--beam", type=int, default=0, help="0: 1 when B >= 12, else 8")
    ap.add_argument("--init-max-iter", type=int, default=100)
    ap.add_argument("--init-max-points-per-centroid", type=int, default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    M, B, g = parse_config(a.config)
    beam = a.beam or (1 if B >= 12 else 8)

    import torch
    from safetensors.torch import load_file

    sys.path.insert(0, a.aqlm_repo)
    from aq_engine import AQEngine  # noqa: E402  (the reference implementation)

    try:
        commit = subprocess.run(["git", "-C", a.aqlm_repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    device = torch.device(a.device)
    if device.type == "cuda" and device.index is None:  # AQEngine compares it with the weight's device, cuda:N
        device = torch.device("cuda", torch.cuda.current_device())
    tensors = load_file(a.problem)
    w = tensors["W"].to(device=device, dtype=torch.float32)
    xtx = tensors["XTX"].to(device=device, dtype=torch.float64)
    out_features, in_features = w.shape

    layer = torch.nn.Linear(in_features, out_features, bias=False, device=device)
    with torch.no_grad():
        layer.weight.copy_(w)
    engine = AQEngine(layer, accumulator_dtype=torch.float64)
    engine.XTX = xtx.clone()
    energy = float((w.double() @ xtx).flatten() @ w.double().flatten())

    def relative_error():
        with torch.no_grad():
            e = engine.quantized_weight().double() - w.double()
            return float((e @ xtx).flatten() @ e.flatten()) / energy

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    # Record the error after each epoch's beam search; the measuring time is left out.
    epochs = []
    clock = {"start": None, "excluded": 0.0}
    original_beam = engine.beam_search_update_codes_

    def beam_and_measure(*args, **kwargs):
        result = original_beam(*args, **kwargs)
        sync()
        t = time.perf_counter()
        err = relative_error()
        epochs.append({"epoch": len(epochs) + 1, "seconds": t - clock["start"] - clock["excluded"],
                       "relative_error": err})
        clock["excluded"] += time.perf_counter() - t
        return result

    engine.beam_search_update_codes_ = beam_and_measure
    args = argparse.Namespace(
        devices=[device], out_group_size=1, in_group_size=g, num_codebooks=M, nbits_per_codebook=B,
        codebook_value_nbits=16, codebook_value_num_groups=1, scale_nbits=0, init_max_iter=a.init_max_iter,
        init_max_points_per_centroid=a.init_max_points_per_centroid, use_faiss=False, lr=a.lr, beam_size=beam,
        max_epochs=a.epochs, steps_per_epoch=a.steps, relative_mse_tolerance=None, print_frequency=10**9)
    sync()
    clock["start"] = time.perf_counter()
    engine.quantize(args=args, verbose=False)
    sync()
    total = time.perf_counter() - clock["start"] - clock["excluded"]
    print(json.dumps({
        "implementation": "Vahe1994/AQLM AQEngine", "commit": commit, "problem": a.problem,
        "shape": [out_features, in_features], "config": a.config, "beam": beam, "adam_steps": a.steps,
        "lr": a.lr, "device": str(device), "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "",
        "epochs": epochs, "seconds": total, "relative_error": relative_error(),
        "note": "epoch seconds are cumulative from the start of AQEngine.quantize, k-means init included"}))


if __name__ == "__main__":
    main()
