#!/usr/bin/env python3
"""Checks that a Hugging Face folder written by AQLM Studio (save_hf_folder / the AQLM writer)
loads in transformers exactly as the original model: config, tokenizer, weights (no missing or
unexpected tensors), and logits against a reference.

References (any combination; at least one is needed for the logits check):
  --reference-gguf FILE     the GGUF the folder was converted from, loaded by transformers'
                            own GGUF reader (needs the `gguf` package). A dequantized F32 folder
                            must give the same logits up to float32 summation order.
  --reference-model DIR     another Hugging Face folder (e.g. the original float16 model).
  --reference-logits FILE   JSON {"token_ids": [...], "logits": [[...], ...]} (one row per
                            position, or only the last row), e.g. from the C++ engine, or
                            written by --write-logits of an earlier run.
  --expect-greedy TEXT      greedy continuation of the prompt (--max-new-tokens tokens) must
                            decode to TEXT exactly (e.g. the stories260K golden story).

usage examples:
  check_hf_folder_transformers.py out/smollm2 --reference-gguf SmolLM2-135M-Instruct.Q4_1.gguf
  check_hf_folder_transformers.py out/stories --prompt "" --bos-only --max-new-tokens 80 \\
      --expect-greedy " Once upon a time, there was a little girl named Lily. ..."
  check_hf_folder_transformers.py out/aqlm-2bit --reference-model smollm2-hf --rtol 0.5  (AQLM needs
      the `aqlm` package; loose tolerance: a quantized model only approximates the original)

Prints one line per check and a last line "N passed, N failed"; exits non-zero on a failure.
"""
import argparse
import json
import os
import sys


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}  {what}{': ' + detail if detail else ''}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def compare_logits(checks, name, logits, reference, atol, rtol):
    """logits, reference: float64 arrays [positions, vocab] (reference may hold only the last rows)."""
    import numpy as np
    logits = logits[-reference.shape[0]:]
    if not checks.check(logits.shape == reference.shape, f"{name}: logits shape",
                        f"{logits.shape} vs reference {reference.shape}"):
        return
    diff = np.abs(logits - reference)
    scale = np.abs(reference).max()
    top1 = float((logits.argmax(-1) == reference.argmax(-1)).mean())
    limit = atol + rtol * scale
    checks.check(float(diff.max()) <= limit, f"{name}: logits",
                 f"max |diff| {diff.max():.3e}, mean {diff.mean():.3e}, max |ref| {scale:.3f}, "
                 f"limit {limit:.3e}, top-1 agreement {top1:.3f}")
    checks.check(top1 >= (1.0 if rtol < 1e-3 else 0.9), f"{name}: top-1 token agreement", f"{top1:.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder")
    p.add_argument("--reference-gguf")
    p.add_argument("--reference-model")
    p.add_argument("--reference-logits")
    p.add_argument("--expect-greedy")
    p.add_argument("--prompt", default="The capital of France is Paris. The capital of Germany is")
    p.add_argument("--bos-only", action="store_true", help="ignore --prompt: the input is the BOS token alone")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "" else "cpu")
    p.add_argument("--atol", type=float, default=1e-3,
                   help="absolute logit tolerance (default 1e-3: float32 sums in another order)")
    p.add_argument("--rtol", type=float, default=1e-4, help="tolerance relative to the largest reference logit")
    p.add_argument("--write-logits", help="write the folder's logits as a reference JSON")
    args = p.parse_args()

    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if args.device == "cuda" and not torch.cuda.is_available():
        args.device = "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # a TF32 matmul would hide or invent differences
    torch.backends.cudnn.allow_tf32 = False
    checks = Checks()
    folder = args.folder

    config = AutoConfig.from_pretrained(folder)
    checks.check(True, "config.json loads",
                 f"{config.model_type}, {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
                 f"vocab {config.vocab_size}, torch_dtype {getattr(config, 'torch_dtype', None)}")
    quant = getattr(config, "quantization_config", None)
    if quant:
        print(f"      quantization_config: {quant if isinstance(quant, dict) else quant.to_dict()}")

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if args.bos_only:
        ids = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else config.bos_token_id]
    else:
        ids = tokenizer(args.prompt)["input_ids"]
    checks.check(len(ids) > 0, "tokenizer loads and encodes", f"{len(ids)} ids: {ids[:16]}{' ...' if len(ids) > 16 else ''}")
    if not args.bos_only:
        back = tokenizer.decode(ids, skip_special_tokens=True)
        checks.check(back.strip() == args.prompt.strip(), "tokenizer decodes the prompt back", repr(back[:80]))

    model, info = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if not (config.tie_word_embeddings and k == "lm_head.weight")]
    checks.check(not missing and not info["unexpected_keys"] and not info["mismatched_keys"], "weights load",
                 f"missing {missing[:5]}, unexpected {list(info['unexpected_keys'])[:5]}, "
                 f"mismatched {list(info['mismatched_keys'])[:5]}")
    model = model.to(args.device).eval()

    def logits_of(m, token_ids):
        with torch.no_grad():
            out = m(torch.tensor([token_ids], device=args.device)).logits[0]
        return out.double().cpu().numpy()

    logits = logits_of(model, ids)
    checks.check(bool(np.isfinite(logits).all()), "logits are finite", f"shape {logits.shape}")
    if args.write_logits:
        with open(args.write_logits, "w") as fh:
            json.dump({"token_ids": ids, "logits": logits.astype(np.float32).tolist()}, fh)
        print(f"      wrote {args.write_logits}")

    if args.reference_gguf:
        directory, name = os.path.split(os.path.abspath(args.reference_gguf))
        ref_tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        if not args.bos_only:
            ref_ids = ref_tok(args.prompt)["input_ids"]
            checks.check(ref_ids == ids, "token ids equal the GGUF tokenizer's", f"{ref_ids[:16]}")
        ref_model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
        compare_logits(checks, "vs GGUF", logits, logits_of(ref_model.to(args.device).eval(), ids), args.atol, args.rtol)
        del ref_model
    if args.reference_model:
        ref_tok = AutoTokenizer.from_pretrained(args.reference_model)
        if not args.bos_only:
            checks.check(ref_tok(args.prompt)["input_ids"] == ids, "token ids equal the reference model's")
        ref_model = AutoModelForCausalLM.from_pretrained(args.reference_model, torch_dtype=torch.float32)
        compare_logits(checks, "vs reference model", logits, logits_of(ref_model.to(args.device).eval(), ids),
                       args.atol, args.rtol)
        del ref_model
    if args.reference_logits:
        with open(args.reference_logits) as fh:
            ref = json.load(fh)
        checks.check(ref["token_ids"] == ids, "token ids equal the reference file's", f"{ref['token_ids'][:16]}")
        reference = np.array(ref["logits"], dtype=np.float64)
        compare_logits(checks, "vs reference logits", logits, reference.reshape(-1, logits.shape[-1]), args.atol,
                       args.rtol)
    if args.expect_greedy is not None:
        with torch.no_grad():
            out = model.generate(torch.tensor([ids], device=args.device), max_new_tokens=args.max_new_tokens,
                                 do_sample=False, num_beams=1)
        text = tokenizer.decode(out[0][len(ids):], skip_special_tokens=True)
        # Compared without surrounding whitespace: llama2.c prints the dummy-prefix space of the
        # first token, a Hugging Face decoder strips it.
        checks.check(text.strip() == args.expect_greedy.strip(), "greedy continuation", repr(text[:200]))

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
