#!/usr/bin/env python3
"""Loads AQLM folders with transformers + the `aqlm` package and compares their logits with a
reference (our runtime's logits, or the numpy float64 reference of a published-layout fixture).

For each folder (one given, or every subfolder of --all ROOT holding a reference.json):
  1. config.json's quantization_config is parsed by transformers into an AqlmConfig;
  2. the model loads (AutoModelForCausalLM, dtype float16 on CUDA, float32 on the CPU);
  3. every projection stored as AQLM became an aqlm QuantizedLinear, every dense one (and
     lm_head) stayed an nn.Linear;
  4. which of the authors' kernels each quantized shape runs (CUDA 1x16 / 2x8 / 1x8, Triton,
     numba, dequantize + matmul) is recorded;
  5. logits for the reference's token ids: max |ours - reference| / max |reference| must stay
     below --rtol (1e-2: fp16 activations on the GPU against a float32/float64 reference give
     ~1e-3; a wrong code, scale or head gives O(1));
  6. where the reference has a prompt and the folder a tokenizer, AutoTokenizer's ids for the
     prompt are compared with the reference's ids (reported, not part of the verdict).
A JSON report goes to --out. Exit status 0 only when every folder passes.

The GPU machine has torch, transformers, accelerate and triton; carry the aqlm wheel
(`python3 -m pip download --no-deps aqlm==1.1.7 -d .whl`) and the folders
(`build-format/bin/format_interop_export .device-carry/aqlm-interop`); scripts/gpu/README.md
has the command. On the CPU (--device cpu) numba runs 2^8-codeword layers: this script pins it
to one thread, because the authors' numba kernel accumulates over input groups in parallel
into one output vector and gives wrong results with several threads (docs/aqlm-format.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path


def stored_tensor_names(folder: Path) -> set[str]:
    names: set[str] = set()
    files = sorted(folder.glob("*.safetensors"))
    for f in files:
        with open(f, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            names.update(k for k in json.loads(fh.read(n)) if k != "__metadata__")
    return names


def with_module_names(folder: Path, tmp: Path) -> Path:
    """A copy of FOLDER (tensors linked) whose linear_weights_not_to_quantize also names the dense
    nn.Linear modules without '.weight', as our writer does (transformers >= 5 needs that)."""
    out = tmp / folder.name
    out.mkdir()
    for f in folder.iterdir():
        if f.name != "config.json":
            os.symlink(f.resolve(), out / f.name)
    config = json.loads((folder / "config.json").read_text())
    listed = config["quantization_config"].setdefault("linear_weights_not_to_quantize", [])
    extra = [n[: -len(".weight")] for n in listed if n.endswith("_proj.weight") or n == "lm_head.weight"]
    listed += [n for n in extra if n not in listed]
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def check_folder(folder: Path, args, tmp: Path) -> dict:
    import numpy as np
    import torch
    import torch.nn as nn
    import transformers
    from aqlm import QuantizedLinear
    from aqlm.inference_kernels.kernel_selector import get_forward_pass_kernel

    report: dict = {"folder": str(folder), "passed": False}
    ref = json.loads((folder / "reference.json").read_text())
    stored = stored_tensor_names(folder)
    load_from = with_module_names(folder, tmp) if args.add_module_names else folder

    config = transformers.AutoConfig.from_pretrained(load_from)
    q = config.quantization_config
    q = q if isinstance(q, dict) else q.to_dict()
    report["quantization_config"] = {k: q.get(k) for k in ("quant_method", "num_codebooks", "nbits_per_codebook",
                                                           "in_group_size", "out_group_size")}
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    start = time.time()
    model = transformers.AutoModelForCausalLM.from_pretrained(load_from, dtype=dtype, device_map=args.device)
    model.eval()
    report["load_seconds"] = round(time.time() - start, 2)

    # Module types against what the file stores.
    wrong = []
    kernels = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Linear, QuantizedLinear)):
            continue
        quantized_in_file = f"{name}.codes" in stored
        if isinstance(module, QuantizedLinear) != quantized_in_file:
            wrong.append(f"{name}: {type(module).__name__} but the file stores it "
                         f"{'as AQLM codes' if quantized_in_file else 'dense'}")
        if isinstance(module, QuantizedLinear):
            key = f"{tuple(module.codebooks.shape)}"
            if key not in kernels:
                k = get_forward_pass_kernel(module.codebooks, False)
                kernels[key] = getattr(k, "__name__", None) or str(k)
    report["module_mismatches"] = wrong
    report["kernels"] = kernels

    ids = ref["ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids], device=args.device)).logits[0].float().cpu().numpy().astype(np.float64)
    expected = np.asarray(ref["logits"], dtype=np.float64)
    report["logits_shape"] = list(logits.shape)
    if logits.shape != expected.shape:
        report["error"] = f"logits shape {logits.shape} differs from the reference's {expected.shape}"
        return report
    finite = bool(np.isfinite(logits).all())
    rel = float(np.abs(logits - expected).max() / np.abs(expected).max()) if finite else float("inf")
    report["relative_error"] = rel
    report["top1_agreement"] = float((logits.argmax(-1) == expected.argmax(-1)).mean())

    if "prompt" in ref and (folder / "tokenizer.json").exists():
        tok = transformers.AutoTokenizer.from_pretrained(folder)
        hf_ids = tok(ref["prompt"])["input_ids"]
        report["tokenizer_ids_equal"] = hf_ids == ids
        if hf_ids != ids:
            report["tokenizer_ids"] = {"transformers": hf_ids, "reference": ids}

    report["passed"] = finite and rel < args.rtol and not wrong
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", type=Path, help="AQLM folders, each with a reference.json")
    ap.add_argument("--all", nargs="*", type=Path, default=[], help="check every subfolder holding reference.json")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--rtol", type=float, default=1e-2)
    ap.add_argument("--add-module-names", action="store_true",
                    help="also list dense modules without '.weight' (what transformers >= 5 needs for folders "
                         "in the authors' layout; our writer does it already)")
    ap.add_argument("--out", type=Path, help="JSON report")
    args = ap.parse_args()
    if args.device == "cpu":
        os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # see the docstring

    from importlib import metadata

    import torch
    import transformers

    folders = list(args.folders)
    for root in args.all:
        folders += sorted(p.parent for p in root.glob("*/reference.json"))
    if not folders:
        print("no folders to check", file=sys.stderr)
        return 2
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "aqlm": metadata.version("aqlm"),
                "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"}
    print(json.dumps(versions))
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, folder in enumerate(folders):
            sub = Path(tmp) / str(i)
            sub.mkdir()
            try:
                r = check_folder(folder, args, sub)
            except Exception as e:  # one folder's failure must not hide the others' results
                r = {"folder": str(folder), "passed": False, "error": f"{type(e).__name__}: {e}",
                     "traceback": traceback.format_exc(limit=4)}
            reports.append(r)
            line = f"{'PASS' if r['passed'] else 'FAIL'} {folder}"
            if "relative_error" in r:
                line += f"  rel {r['relative_error']:.2e}  top1 {r['top1_agreement']:.2f}  kernels {r['kernels']}"
            for m in r.get("module_mismatches", []):
                line += f"\n    module: {m}"
            if "error" in r:
                line += f"\n    error: {r['error']}"
            if "tokenizer_ids_equal" in r:
                line += f"\n    tokenizer ids equal: {r['tokenizer_ids_equal']}"
            print(line, flush=True)
    passed = sum(r["passed"] for r in reports)
    print(f"{passed} passed, {len(reports) - passed} failed")
    if args.out:
        args.out.write_text(json.dumps({"versions": versions, "folders": reports}, indent=1) + "\n")
    return 0 if passed == len(reports) else 1


if __name__ == "__main__":
    sys.exit(main())
