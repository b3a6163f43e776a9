#!/usr/bin/env python3
"""Reference chat turns with SmolLM2-135M-Instruct for tests/runtime/chat_session_test.cpp.

Independent of the C++ side: the prompt is rendered by Python jinja2 with Hugging Face's
settings (chat_template_reference.render) from the template file the text room extracted,
tokenized by the Hugging Face `tokenizers` library (tests/fixtures/text/smollm2_tokenizer.json,
special tokens parsed as apply_chat_template's tokenize step does), and each reply is decoded
greedily with the float64 numpy forward of forward_reference.py over gguf.quants.dequantize,
until <|im_end|> or MAX_NEW tokens.

Two turns (the second contains the first's reply, so it checks prefix reuse too). For each
generated token the fixture records the gap between the best and the second-best logit: the
C++ engine computes in float32 (~1e-5 relative error, tests/runtime/smollm2_test.cpp), so a
greedy choice is only reproducible where that gap is clearly larger than the error.

Usage: python3 scripts/reference/chat_session_reference.py   (writes tests/fixtures/runtime/chat_session_smollm2.json)
"""
import json
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chat_template_reference as templates  # noqa: E402
import forward_reference as forward  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "runtime" / "chat_session_smollm2.json"
TEMPLATE = ROOT / "tests" / "fixtures" / "text" / "templates" / "smollm2.jinja"
TOKENIZER = ROOT / "tests" / "fixtures" / "text" / "smollm2_tokenizer.json"

SYSTEM = "Answer in one word."
# Chosen so that each greedy reply ends at <|im_end|> with every top-1/top-2 gap >= 0.9.
USER_TURNS = ["What is the capital of France?", "And of Germany?"]
MAX_NEW = 24


def render(messages):
    result = templates.render(TEMPLATE.read_text(), {
        "messages": messages, "add_generation_prompt": True, "tools": None, "documents": None,
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"})
    assert "output" in result, result
    return result["output"]


def greedy(W, cfg, prompt_ids, stop_id):
    ids, gaps = list(prompt_ids), []
    for _ in range(MAX_NEW):
        last = forward.logits(W, cfg, ids)[-1]
        order = np.argsort(-last)
        gaps.append(float(last[order[0]] - last[order[1]]))
        if int(order[0]) == stop_id:
            return ids[len(prompt_ids):], gaps, "eos"
        ids.append(int(order[0]))
    return ids[len(prompt_ids):], gaps, "max_tokens"


def main():
    W, cfg, _ = forward.read_gguf(forward.SMOLLM2)
    tok = Tokenizer.from_file(str(TOKENIZER))
    stop_id = tok.token_to_id("<|im_end|>")
    messages = [{"role": "system", "content": SYSTEM}]
    turns = []
    for user in USER_TURNS:
        messages.append({"role": "user", "content": user})
        prompt = render(messages)
        prompt_ids = tok.encode(prompt, add_special_tokens=False).ids
        reply_ids, gaps, stop = greedy(W, cfg, prompt_ids, stop_id)
        reply = tok.decode(reply_ids, skip_special_tokens=True)
        print(f"user: {user!r}\nreply: {reply!r} ({len(reply_ids)} tokens, stop {stop}, "
              f"smallest top-1/top-2 logit gap {min(gaps):.4f})")
        turns.append({"user": user, "prompt": prompt, "prompt_ids": prompt_ids, "reply_ids": reply_ids,
                      "reply": reply, "stop": stop, "logit_gaps": gaps})
        messages.append({"role": "assistant", "content": reply})
    OUT.write_text(json.dumps({
        "source": "scripts/reference/chat_session_reference.py (jinja2 + tokenizers + numpy float64 greedy)",
        "system": SYSTEM, "max_new_tokens": MAX_NEW, "stop_id": stop_id, "turns": turns}, indent=1,
        ensure_ascii=False) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
