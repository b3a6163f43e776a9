#!/usr/bin/env python3
"""Writes a version-1 run database with Python's own sqlite3 module, and the answers the
RunDatabase queries must give on it, computed here in plain Python (no SQL aggregation),
so tests/store checks the C++ queries against an independent reference. The file also
stays as the "database from the field" that every later schema migration must open.

    python3 scripts/reference/store_v1_fixture.py
writes tests/fixtures/store/v1_reference.sqlite and v1_reference_expected.json.
"""
import json
import math
import random
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "core/store/migrations/001_initial.sql"
OUT_DB = ROOT / "tests/fixtures/store/v1_reference.sqlite"
OUT_JSON = ROOT / "tests/fixtures/store/v1_reference_expected.json"
APPLICATION_ID = 0x41514C4D  # "AQLM"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms

rng = random.Random(20260101)


def real(x):
    """SQLite stores NaN as NULL; the JSON answer says null."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


models, runs, layers, steps, evals, artifacts, convs, messages = [], [], [], [], [], [], [], []

models.append(dict(id=1, name="SmolLM2-135M-Instruct", path="/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                   format="gguf", architecture="llama", parameters=134515008, dtype="Q4_1",
                   size_bytes=94_000_000, added_ms=T0 + 1000))
models.append(dict(id=2, name="stories260K", path="/shared/models/stories260K/stories260K.bin",
                   format="llama2c", architecture="llama", parameters=260_000, dtype="float32",
                   size_bytes=1_040_000, added_ms=T0 + 500))   # added earlier: listed first
models.append(dict(id=3, name="empty", path="/models/empty", format="safetensors", architecture="qwen2",
                   parameters=0, dtype="bfloat16", size_bytes=0, added_ms=T0 + 2000))

run_specs = [  # model, method, config, status, bits_predicted, bits_measured
    (1, "aqlm", "1x16g8", "finished", 2.05, 2.0601),
    (1, "aqlm", "2x8g8", "finished", 2.02, 2.0302),
    (1, "gptq", "w2g128", "finished", 2.25, 2.2498),
    (1, "rtn", "w3g64", "failed", 3.3, None),
    (1, "aqlm", "1x8g8", "running", 1.1, None),
    (1, "rtn", "w2g64", "finished", None, None),  # no bit figure at all
    (2, "aqlm", "1x8g4", "finished", 2.3, 2.31),
    (2, "gptq", "w3g32", "queued", 3.5, None),
]
for i, (model_id, method, config, status, bp, bm) in enumerate(run_specs, start=1):
    created = T0 + 10_000 * i
    runs.append(dict(
        id=i, model_id=model_id, method=method, config=config,
        settings_json=json.dumps({"seed": i, "calibration": {"dataset": "wikitext2", "samples": 128},
                                  "beam": 8, "lr": 1e-4 * i}, sort_keys=True),
        status=status, error_message="out of memory while quantizing block 3" if status == "failed" else "",
        created_ms=created, started_ms=None if status == "queued" else created + 100,
        finished_ms=created + 5000 if status in ("finished", "failed") else None,
        output_dir=f"/out/run{i}", checkpoint_dir=f"/ckpt/run{i}" if i % 2 else "",
        bits_predicted=bp, bits_measured=bm, output_bytes=int(30e6 + i) if bm else None))

LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
next_layer_id = 1
for run in runs:
    if run["id"] in (6, 8):
        continue  # runs with no layer rows
    for block in range(3 if run["id"] != 5 else 1):
        for name in LINEARS:
            loss = rng.uniform(1e-4, 1e-2)
            rel = rng.uniform(0.01, 0.2)
            if run["id"] == 2 and block == 1 and name == "mlp.up_proj":
                loss = float("nan")      # a diverged loss: stored as NULL
            if run["id"] == 2 and block == 2 and name == "self_attn.k_proj":
                rel = float("nan")       # not counted in the mean
            layers.append(dict(id=next_layer_id, run_id=run["id"], block=block, layer=name, config=run["config"],
                               loss=loss, relative_error=rel, seconds=rng.uniform(0.5, 30.0),
                               bits=rng.uniform(1.9, 2.2)))
            next_layer_id += 1
# Recorded out of block order (a resumed run redoing block 0 at the end keeps its first id).
layers.append(dict(id=next_layer_id, run_id=1, block=0, layer="lm_head", config="1x16g8", loss=0.5,
                   relative_error=0.3, seconds=2.0, bits=2.0))

for run_id, blocks in ((1, 2), (2, 2), (5, 1)):
    for block in range(blocks):
        for name in ("self_attn.q_proj", "mlp.down_proj"):
            for step in range(12):
                steps.append(dict(run_id=run_id, block=block, layer=name, step=step, phase="adam",
                                  loss=rng.uniform(0.001, 0.1)))
                if step % 4 == 3:
                    steps.append(dict(run_id=run_id, block=block, layer=name, step=step, phase="beam",
                                      loss=rng.uniform(0.001, 0.1)))
        for step in range(5):
            steps.append(dict(run_id=run_id, block=block, layer="", step=step, phase="finetune",
                              loss=float("nan") if (run_id, block, step) == (2, 1, 3) else rng.uniform(0.01, 1.0)))

eval_specs = [  # run or None, model, dataset, seqlen, ppl
    (None, 1, "wikitext2", 2048, 17.6), (None, 1, "wikitext2", 2048, 17.5),   # the second is newer
    (None, 1, "c4", 2048, 21.0),
    (1, 1, "wikitext2", 2048, 26.0), (1, 1, "wikitext2", 2048, 25.1),        # rerun: newer wins
    (1, 1, "c4", 2048, 31.0), (1, 1, "wikitext2", 4096, 24.0),
    (2, 1, "wikitext2", 2048, 25.1),                                          # ties run 1 on ppl
    (3, 1, "wikitext2", 2048, 40.5), (4, 1, "wikitext2", 2048, 19.0),
    (5, 1, "wikitext2", 2048, 95.0), (6, 1, "wikitext2", 2048, 28.0),
    (7, 2, "wikitext2", 2048, 9.5), (None, 2, "wikitext2", 2048, 7.1),
    (3, 1, "wikitext2", 2048, float("nan")),                                  # newest of run 3 diverged
]
for i, (run_id, model_id, dataset, seqlen, ppl) in enumerate(eval_specs, start=1):
    windows = rng.randint(10, 200)
    evals.append(dict(id=i, model_id=model_id, run_id=run_id, dataset=dataset, seqlen=seqlen, windows=windows,
                      perplexity=ppl, nll=math.log(ppl) if not math.isnan(ppl) else ppl,
                      tokens=windows * seqlen, seconds=rng.uniform(1, 100), created_ms=T0 + 100_000 + i))

for i, (run_id, kind, path) in enumerate([(1, "hf-aqlm", "/out/run1"), (1, "log", "/out/run1/log.jsonl"),
                                           (7, "hf-aqlm", "/out/run7")], start=1):
    artifacts.append(dict(id=i, run_id=run_id, kind=kind, path=path, bytes=rng.randint(1, 10**9),
                          sha256="".join(rng.choice("0123456789abcdef") for _ in range(64)),
                          created_ms=T0 + 200_000 + i))

convs.append(dict(id=1, title="Hello", model_id=1, run_id=None, system_prompt="You are helpful.",
                  sampling_json=json.dumps({"temperature": 0.7, "top_p": 0.9}), created_ms=T0 + 300_000))
convs.append(dict(id=2, title="Quantized chat", model_id=None, run_id=2, system_prompt="",
                  sampling_json=json.dumps({"temperature": 0.0}), created_ms=T0 + 300_100))
convs.append(dict(id=3, title="Empty", model_id=None, run_id=None, system_prompt="",
                  sampling_json="{}", created_ms=T0 + 300_200))
message_specs = [(1, "system", "You are helpful.", 5, None, None, 301_000),
                 (2, "user", "Quantize me, \u00e9l\u00e8ve \u2014 \U0001F600", 9, None, None, 301_500),
                 (1, "user", "What is AQLM?", 6, None, None, 302_000),
                 (1, "assistant", "Additive quantization of language models.", 9, 41.5, 0.123, 302_400),
                 (2, "assistant", "", 0, None, None, 301_600)]
for i, (conv, role, content, tokens, tps, ttft, t) in enumerate(message_specs, start=1):
    messages.append(dict(id=i, conversation_id=conv, role=role, content=content, tokens=tokens,
                         tokens_per_second=tps, time_to_first_token_s=ttft, created_ms=T0 + t))


def write_database():
    OUT_DB.unlink(missing_ok=True)
    db = sqlite3.connect(OUT_DB)
    db.executescript(SCHEMA.read_text())
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.execute("PRAGMA foreign_keys = ON")

    def insert(table, rows):
        for row in rows:
            cols = list(row)
            db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                       [real(row[c]) if isinstance(row[c], float) else row[c] for c in cols])

    for table, rows in (("models", models), ("runs", runs), ("layer_metrics", layers), ("step_losses", steps),
                        ("evaluations", evals), ("artifacts", artifacts), ("conversations", convs),
                        ("messages", messages)):
        insert(table, rows)
    db.commit()
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.execute("VACUUM")
    db.close()


# ------------------------------------------------------------------ expected answers
def eval_json(e):
    return dict(id=e["id"], model_id=e["model_id"], run_id=e["run_id"], dataset=e["dataset"], seqlen=e["seqlen"],
                windows=e["windows"], perplexity=real(e["perplexity"]), nll=real(e["nll"]), tokens=e["tokens"],
                seconds=e["seconds"], created_ms=e["created_ms"])


def newest(rows, key):
    best = {}
    for r in rows:  # ids grow with insertion: the newest has the largest id
        k = key(r)
        if k not in best or r["id"] > best[k]["id"]:
            best[k] = r
    return best


def bits_of(run):
    return run["bits_measured"] if run["bits_measured"] is not None else run["bits_predicted"]


def compare_points(model_id, dataset, seqlen):
    chosen = newest([e for e in evals if e["model_id"] == model_id and e["dataset"] == dataset
                     and e["seqlen"] == seqlen], key=lambda e: e["run_id"])
    points = []
    for e in chosen.values():
        run = next((r for r in runs if r["id"] == e["run_id"]), None)
        model = next(m for m in models if m["id"] == model_id)
        points.append(dict(evaluation_id=e["id"], run_id=e["run_id"], method=run["method"] if run else None,
                           config=run["config"] if run else model["dtype"], bits=bits_of(run) if run else None,
                           perplexity=real(e["perplexity"])))
    # SQLite order: model file (NULL method) first, then method, bits (NULL first), evaluation id.
    points.sort(key=lambda p: (p["method"] is not None, p["method"] or "", p["bits"] is not None,
                               p["bits"] or 0.0, p["evaluation_id"]))
    return points


def best_near(model_id, dataset, seqlen, target, tolerance):
    best = None
    for p in compare_points(model_id, dataset, seqlen):
        if p["bits"] is None or p["perplexity"] is None or abs(p["bits"] - target) > tolerance:
            continue
        key = (p["perplexity"], abs(p["bits"] - target))
        if best is None or key < best[0]:
            best = (key, p)
    return best[1] if best else None


def expected():
    out = {}
    out["models"] = [dict(m, run_count=sum(r["model_id"] == m["id"] for r in runs),
                          finished_run_count=sum(r["model_id"] == m["id"] and r["status"] == "finished"
                                                 for r in runs))
                     for m in sorted(models, key=lambda m: (m["added_ms"], m["id"]))]
    out["runs_of_model"] = {}
    for m in models:
        summaries = []
        for r in sorted((r for r in runs if r["model_id"] == m["id"]), key=lambda r: r["id"]):
            mine = [l for l in layers if l["run_id"] == r["id"]]
            rels = [l["relative_error"] for l in mine if not math.isnan(l["relative_error"])]
            latest = newest([e for e in evals if e["run_id"] == r["id"]], key=lambda e: (e["dataset"], e["seqlen"]))
            summaries.append(dict(r, settings=json.loads(r["settings_json"]), layers_done=len(mine),
                                  mean_relative_error=sum(rels) / len(rels) if rels else None,
                                  layer_seconds=sum(l["seconds"] for l in mine),
                                  latest_evaluations=[eval_json(latest[k]) for k in sorted(latest)]))
        out["runs_of_model"][str(m["id"])] = summaries
    out["layer_tables"] = {str(r["id"]): [dict(block=l["block"], layer=l["layer"], config=l["config"],
                                               loss=real(l["loss"]), relative_error=real(l["relative_error"]),
                                               seconds=l["seconds"], bits=l["bits"])
                                          for l in sorted((l for l in layers if l["run_id"] == r["id"]),
                                                          key=lambda l: (l["block"], l["id"]))]
                           for r in runs}
    order = lambda s: (s["block"], s["layer"].encode(), s["step"], s["phase"].encode())  # BINARY collation
    step_json = lambda s: dict(block=s["block"], layer=s["layer"], step=s["step"], phase=s["phase"],
                               loss=real(s["loss"]))
    out["step_losses"] = {str(r["id"]): [step_json(s) for s in sorted((s for s in steps if s["run_id"] == r["id"]),
                                                                      key=order)] for r in runs}
    out["step_losses_of_layer"] = [
        dict(run_id=run_id, block=block, layer=layer,
             losses=[step_json(s) for s in sorted((s for s in steps if (s["run_id"], s["block"], s["layer"]) ==
                                                   (run_id, block, layer)), key=order)])
        for run_id, block, layer in ((2, 1, "mlp.down_proj"), (2, 1, ""), (5, 0, "self_attn.q_proj"),
                                     (1, 0, "mlp.gate_proj"))]
    out["evaluations_of_model"] = {str(m["id"]): [eval_json(e) for e in sorted(evals, key=lambda e: e["id"])
                                                  if e["model_id"] == m["id"]] for m in models}
    out["compare_points"] = [dict(model_id=m, dataset=d, seqlen=s, points=compare_points(m, d, s))
                             for m, d, s in ((1, "wikitext2", 2048), (1, "c4", 2048), (1, "wikitext2", 4096),
                                             (2, "wikitext2", 2048), (3, "wikitext2", 2048))]
    out["best_near_budget"] = [dict(model_id=m, dataset=d, seqlen=s, target=t, tolerance=tol,
                                    best=best_near(m, d, s, t, tol))
                               for m, d, s, t, tol in ((1, "wikitext2", 2048, 2.0, 0.1),   # tie 25.1: closer wins
                                                       (1, "wikitext2", 2048, 2.06, 0.005),
                                                       (1, "wikitext2", 2048, 2.25, 0.01),
                                                       (1, "wikitext2", 2048, 3.0, 0.4),   # failed run's 19.0
                                                       (1, "wikitext2", 2048, 2.25, 0.3),  # nan ppl skipped
                                                       (1, "wikitext2", 2048, 5.0, 0.5),   # none
                                                       (1, "wikitext2", 2048, 2.2, 1.2),   # 95 / 25.1 / 19.0
                                                       (1, "wikitext2", 2048, 1.5, 0.6),   # 95 / 25.1
                                                       (2, "wikitext2", 2048, 2.3, 0.1))]
    out["artifacts"] = {str(r["id"]): [a for a in artifacts if a["run_id"] == r["id"]] for r in runs}
    last = {c["id"]: max([m["created_ms"] for m in messages if m["conversation_id"] == c["id"]],
                         default=c["created_ms"]) for c in convs}
    out["conversations"] = [dict(c, sampling=json.loads(c["sampling_json"]),
                                 message_count=sum(m["conversation_id"] == c["id"] for m in messages),
                                 last_activity_ms=last[c["id"]],
                                 messages=[m for m in messages if m["conversation_id"] == c["id"]])
                            for c in sorted(convs, key=lambda c: (last[c["id"]], c["id"]), reverse=True)]
    return out


if __name__ == "__main__":
    write_database()
    OUT_JSON.write_text(json.dumps(expected(), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT_DB.relative_to(ROOT)} ({OUT_DB.stat().st_size} bytes) and {OUT_JSON.relative_to(ROOT)}")
