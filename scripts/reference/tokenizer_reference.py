#!/usr/bin/env python3
"""Reference values for the tokenizer tests (tests/text/tokenizer*_test.cpp).

Everything here comes from implementations independent of ours: the Hugging Face `tokenizers`
library (Rust), Google's `sentencepiece`, and a plain-Python transcription of llama2.c's encoder.

    python3 scripts/reference/tokenizer_reference.py generate
        writes tests/fixtures/text/*.json and tests/fixtures/text/reference_checks.txt
    AQLM_TOKENIZER_EXPORT_DIR=/tmp/tok build-tok/bin/test_text --gtest_filter='TokenizerWriter.*'
    python3 scripts/reference/tokenizer_reference.py check-written /tmp/tok
        loads the tokenizer.json files our C++ writer left there with `tokenizers`, checks their
        ids against the fixtures and records the result in tests/fixtures/text/hf_writer_checks.txt

Needs: tokenizers, gguf, numpy; for `generate` also sentencepiece, protobuf and transformers
(only for its SentencePiece merge generation), the SmolLM2 GGUF in the models cache, ../shared,
and the Mistral SentencePiece model shipped in the PyPI package mistral-common (Apache-2.0):
    python3 -m pip download --no-deps mistral-common==1.13.1 -d /tmp/mc && cd /tmp/mc && unzip *.whl
    MISTRAL_SPM=/tmp/mc/mistral_common/data/tokenizer.model.v1
"""
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "text"
SHARED = Path(os.environ.get("AQLM_SHARED_DIR", ROOT.parent / "shared"))
SMOLLM2 = Path(os.environ.get("AQLM_MODELS_DIR", Path.home() / ".cache" / "aqlm-studio" / "models")) / \
    "SmolLM2-135M-Instruct.Q4_1.gguf"
MISTRAL_SPM = Path(os.environ.get("MISTRAL_SPM", "/tmp/mc/mistral_common/data/tokenizer.model.v1"))
SPACE = "\u2581"

# The string set every tokenizer is checked on.
STRINGS = [
    "Hello world",
    "Hello, world! How's it going? I'm fine; we'll see, they've done it, you'd know.",
    "DON'T SHOUT: IT'S 'QUOTED' and WE'LL, THEY'RE, I'VE, I'M, HE'D",
    "def square(x):\n    return x ** 2  # 12345\n\n\tif (a != b) { c++; }\n",
    "I love 🦙 llamas and 👩‍👩‍👧 families 🎉🎉!",
    "日本語のテキストです。中文文本，한국어 텍스트",
    "a\n\n\nb",
    "\t\tindented\twith tabs\t",
    "trailing spaces   ",
    "   leading spaces",
    "multiple     spaces and\r\nwindows\r\n\r\nline ends",
    "12345 and 3.14159, 1,000,000; 2024-01-01 x1y22z333 ٣٤٥ ²³ Ⅻ",
    "Café naïve résumé Ångström ſ's 'S",
    "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
    "<s>Hello</s> <unk>",
    "antidisestablishmentarianism",
    " ",
    "\n",
    "",
    "Ünïcödé — “quotes” … ½ µ ™ \u00a0nbsp \u3000ideographic\u2028sep",
    # Decomposed forms, which an NFC normalizer (Qwen2) composes: e+acute, Angstrom sign, Hangul
    # jamo, marks out of canonical order, a composition exclusion (U+0958).
    "Cafe\u0301 nai\u0308ve \u212Bngstro\u0308m \u1100\u1161\u11A8 a\u0302\u0323 \u0958 Ω\u0313\u0342\u0345",
]
EMOJI_CJK = [4, 5]  # indices of the strings StreamDecoder is checked on
# For added tokens that swallow white space: <|im_start|> with lstrip, <|im_end|> with rstrip.
STRIP_STRINGS = ["a   <|im_start|>  b <|im_end|>   c", "<|im_start|><|im_end|> \n x", " \u3000<|im_start|>x",
                 "x<|im_end|>\u00a0\u2028y", "<|im_end|>", "  <|im_start|>"]


def fnv1a64(ids):
    """FNV-1a over the ids as little-endian uint32: a compact fingerprint of a long id list."""
    h = 0xCBF29CE484222325
    for b in struct.pack(f"<{len(ids)}I", *ids):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


# ---------------------------------------------------------------------------------------------
# SmolLM2: the GGUF's tokenizer keys, and tokenizer.json with SmolLM2's published structure.

def smollm2_gguf_keys():
    import gguf
    reader = gguf.GGUFReader(str(SMOLLM2))
    keys = {}
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer.ggml."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            if field.types[1] == gguf.GGUFValueType.STRING:
                keys[name] = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            else:
                keys[name] = [field.parts[i].tolist()[0] for i in field.data]
        elif field.types[0] == gguf.GGUFValueType.STRING:
            keys[name] = bytes(field.parts[field.data[0]]).decode("utf-8")
        else:
            keys[name] = field.parts[field.data[0]].tolist()[0]
    return keys


def smollm2_tokenizer(keys):
    tokens = keys["tokenizer.ggml.tokens"]
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ")) for m in keys["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    from tokenizers import AddedToken
    control = [t for t, ty in zip(tokens, keys["tokenizer.ggml.token_type"]) if ty == 3]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    return tok


def smollm2_config(keys):
    tokens = keys["tokenizer.ggml.tokens"]
    return {"bos_token": tokens[keys["tokenizer.ggml.bos_token_id"]],
            "eos_token": tokens[keys["tokenizer.ggml.eos_token_id"]],
            "unk_token": tokens[keys["tokenizer.ggml.unknown_token_id"]],
            "pad_token": tokens[keys["tokenizer.ggml.padding_token_id"]],
            "add_bos_token": keys["tokenizer.ggml.add_bos_token"]}


# ---------------------------------------------------------------------------------------------
# SentencePiece BPE in tokenizer.json form (Llama-2 / Mistral): normalizer Prepend + Replace,
# BPE with byte fallback, merges generated from the scores as transformers converts them.

def sentencepiece_tokenizer_json(pieces, scores, special_ids, add_bos=True):
    from transformers.tokenization_utils_base import generate_merges
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = generate_merges(vocab, dict(zip(pieces, scores)))
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=pieces[0], fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(pieces[i], special=True, normalized=False) for i in special_ids])
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{pieces[1]} $A", pair=f"{pieces[1]} $A {pieces[1]} $B",
                                                           special_tokens=[(pieces[1], 1)])
    return tok


def read_tok512():
    data = (SHARED / "models/stories260K/tok512.bin").read_bytes()
    pos = 4
    pieces, scores = [], []
    while pos < len(data):
        score, n = struct.unpack_from("<fi", data, pos)
        pos += 8
        pieces.append(data[pos:pos + n])
        pos += n
        scores.append(score)
    return pieces, scores


def llama2c_encode(pieces, scores, text, bos=True):
    """llama2.c's encode(), transcribed: dummy-prefix space, code points (else bytes + 3), then
    repeatedly merge the adjacent pair whose joined piece has the best score (leftmost on ties)."""
    lookup = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p, i)
    ids = [1] if bos else []
    toks = []
    if text:
        toks.append(lookup[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup:
            toks.append(lookup[b])
        else:
            toks.extend(x + 3 for x in b)
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for i in range(len(toks) - 1):
            j = lookup.get(pieces[toks[i]] + pieces[toks[i + 1]])
            if j is not None and scores[j] > best:
                best, best_id, best_i = scores[j], j, i
        if best_i < 0:
            break
        toks[best_i:best_i + 2] = [best_id]
    return ids + toks


def tok512_llama_tokenizer():
    raw, scores = read_tok512()
    pieces = ["<unk>", "<s>", "</s>"] + [p.decode("utf-8").replace(" ", SPACE) for p in raw[3:]]
    return sentencepiece_tokenizer_json(pieces, scores, [0, 1, 2]), raw, scores


def mistral_pieces():
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(MISTRAL_SPM))
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    types = []
    for i in range(n):  # llama.cpp's token types
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1)
    return sp, pieces, scores, types


# ---------------------------------------------------------------------------------------------

def hf_encode(tok, text, add_special, parse_special):
    tok.encode_special_tokens = not parse_special
    try:
        return tok.encode(text, add_special_tokens=add_special).ids
    finally:
        tok.encode_special_tokens = False


LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def qwen2_pattern():
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    return PRETOKENIZE_REGEX


def nfc_cases():
    """Inputs for our NFC against the `tokenizers` NFC normalizer: every code point that
    normalization touches, decomposed, plus seeded random mixes of bases and combining marks."""
    import random
    import unicodedata2 as ud
    nfc = normalizers.NFC()
    touched = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and
               (ud.combining(chr(c)) or ud.decomposition(chr(c)) and not ud.decomposition(chr(c)).startswith("<"))]
    inputs = [ud.normalize("NFD", chr(c)) for c in touched]
    inputs += [chr(c) for c in touched]
    rng = random.Random(1234)
    marks = [c for c in touched if ud.combining(chr(c))]
    bases = [c for c in touched if not ud.combining(chr(c))] + [ord(x) for x in "aeiouAEIOU"] + \
        list(range(0x1100, 0x1113)) + list(range(0x1161, 0x1176)) + list(range(0x11A8, 0x11C3))
    for _ in range(3000):
        s = "".join(chr(rng.choice(bases if rng.random() < 0.5 else marks)) for _ in range(rng.randint(1, 6)))
        inputs.append(s)
    return {"input": inputs, "expected": [nfc.normalize_str(s) for s in inputs]}


def splits():
    QWEN2 = qwen2_pattern()
    llama3 = LLAMA3
    pres = {
        "gpt2": pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        "digits_gpt2": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
        "llama3": pre_tokenizers.Split(Regex(llama3), "isolated"),
        "qwen2": pre_tokenizers.Split(Regex(QWEN2), "isolated"),
    }
    out = {"patterns": {"llama3": llama3, "qwen2": QWEN2}}
    for name, pre in pres.items():
        # Offsets are in characters of the original string, so the raw pieces are slices of it.
        out[name] = [[s[a:b] for _, (a, b) in pre.pre_tokenize_str(s)] for s in STRINGS]
    return out


def check_unicode_classes(log):
    """Our generated classes against the `tokenizers` regex engine on every code point."""
    sys.path.insert(0, str(Path(__file__).parent))
    import gen_unicode_tables as g
    for name, pattern, cls in (("\\p{L}", r"\p{L}", g.LETTER), ("\\p{N}", r"\p{N}", g.NUMBER), ("\\s", r"\s", g.SPACE)):
        split = pre_tokenizers.Split(Regex(pattern), "removed", invert=True)  # keeps only the matches
        hf = set()
        for start in range(0, 0x110000, 50000):
            cps = [c for c in range(start, min(start + 50000, 0x110000)) if not 0xD800 <= c < 0xE000]
            text = "".join(chr(c) + "\x01" for c in cps)
            hf.update(ord(ch) for piece, _ in split.pre_tokenize_str(text) for ch in piece)
        ours = {c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and g.char_class(c) == cls}
        log(f"unicode class {name}: {len(ours)} code points, {len(ours ^ hf)} differ from tokenizers' regex engine")
        assert ours == hf


def generate():
    lines = []

    def log(msg):
        print(msg)
        lines.append(msg)

    FIXTURES.mkdir(parents=True, exist_ok=True)
    import tokenizers
    log(f"tokenizers {tokenizers.__version__}")
    check_unicode_classes(log)
    cases = {"strings": STRINGS, "stream_strings": EMOJI_CJK, "splits": splits()}

    # SmolLM2 from its GGUF.
    keys = smollm2_gguf_keys()
    (FIXTURES / "smollm2_gguf_tokenizer.json").write_text(json.dumps(keys, ensure_ascii=False, separators=(",", ":")))
    smol = smollm2_tokenizer(keys)
    smol_json = json.loads(smol.to_str())
    (FIXTURES / "smollm2_tokenizer.json").write_text(json.dumps(smol_json, ensure_ascii=False, separators=(",", ":")))
    (FIXTURES / "smollm2_tokenizer_config.json").write_text(json.dumps(smollm2_config(keys), indent=1))
    smol = Tokenizer.from_file(str(FIXTURES / "smollm2_tokenizer.json"))  # as the C++ test will read it
    cases["smollm2"] = tokenizer_cases(smol)
    log(f"smollm2: {len(keys['tokenizer.ggml.tokens'])} tokens, {len(keys['tokenizer.ggml.merges'])} merges")
    transformers_gguf_crosscheck(keys, smol, log)

    # tok512 (stories260K) as llama2.c encodes it, and as a Llama-style tokenizer.json.
    tok512_json, raw, scores = tok512_llama_tokenizer()
    (FIXTURES / "tok512_llama_tokenizer.json").write_text(tok512_json.to_str())
    tok512_json = Tokenizer.from_file(str(FIXTURES / "tok512_llama_tokenizer.json"))
    cases["tok512_llama"] = tokenizer_cases(tok512_json)
    text = (SHARED / "data/tinystories-sample.txt").read_text(encoding="utf-8")
    story = text.split("<|endoftext|>")[0].strip()
    story_ids = llama2c_encode(raw, scores, story)
    readme_prefix = [1, 403, 407, 261, 378, 383, 286, 261, 376, 268, 414, 422, 395, 368, 302, 426, 368, 302, 401, 396]
    assert story_ids[:20] == readme_prefix and len(story_ids) == 374, (len(story_ids), story_ids[:20])
    log(f"tok512: first story -> {len(story_ids)} ids with llama2.c's algorithm; the README's prefix matches")
    cases["tok512_llama2c"] = {"ids": [llama2c_encode(raw, scores, s) for s in STRINGS], "story_ids": story_ids}
    same = sum(hf_encode(tok512_json, s, True, False) == llama2c_encode(raw, scores, s) for s in STRINGS + [story])
    log(f"tok512: tokenizer.json (merges from scores) equals llama2.c's algorithm on {same}/{len(STRINGS) + 1} strings")

    # Mistral 7B v0.1's SentencePiece model: tokenizer.json (rank merges) and GGUF keys (scores).
    sp, pieces, mscores, types = mistral_pieces()
    mistral = sentencepiece_tokenizer_json(pieces, mscores, [0, 1, 2])
    (FIXTURES / "mistral_tokenizer.json").write_text(mistral.to_str())
    mistral = Tokenizer.from_file(str(FIXTURES / "mistral_tokenizer.json"))
    cases["mistral"] = tokenizer_cases(mistral)
    gguf_keys = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": pieces, "tokenizer.ggml.scores": mscores,
                 "tokenizer.ggml.token_type": types, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
                 "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.add_bos_token": True,
                 "tokenizer.ggml.add_eos_token": False}
    (FIXTURES / "mistral_gguf_tokenizer.json").write_text(json.dumps(gguf_keys, ensure_ascii=False, separators=(",", ":")))
    # The newer spelling of the same tokenizer: Metaspace(prepend_scheme="first") instead of the
    # normalizer, so only text at the very start gets the "▁" prefix.
    first = json.loads(mistral.to_str())
    first["normalizer"] = None
    first["pre_tokenizer"] = {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "first", "split": False}
    cases["mistral_metaspace_first"] = tokenizer_cases(Tokenizer.from_str(json.dumps(first)))
    first["pre_tokenizer"]["prepend_scheme"] = "always"
    cases["mistral_metaspace_always"] = tokenizer_cases(Tokenizer.from_str(json.dumps(first)))
    agree = sum(hf_encode(mistral, s, True, False) == [1] + sp.encode(s) for s in STRINGS)
    log(f"mistral: {len(pieces)} pieces; tokenizers (merges from scores) equals sentencepiece on {agree}/{len(STRINGS)} strings")

    # SmolLM2's vocabulary behind the Llama-3 and Qwen2 structures (pattern, ignore_merges, NFC),
    # to check those pipelines end to end without another large vocabulary.
    for name, pattern, extra in (("smollm2_as_llama3", LLAMA3, {"ignore_merges": True}),
                                 ("smollm2_as_qwen2", qwen2_pattern(), {"normalizer": {"type": "NFC"}})):
        j = json.loads(smol.to_str())
        j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        if "ignore_merges" in extra:
            j["model"]["ignore_merges"] = True
        if "normalizer" in extra:
            j["normalizer"] = extra["normalizer"]
        cases[name] = tokenizer_cases(Tokenizer.from_str(json.dumps(j)))
    from tokenizers import AddedToken
    strip = Tokenizer.from_str(smol.to_str())
    strip.add_special_tokens([AddedToken("<|im_start|>", lstrip=True, special=True, normalized=False),
                              AddedToken("<|im_end|>", rstrip=True, special=True, normalized=False)])
    cases["smollm2_strip"] = {"strings": STRIP_STRINGS, "ids": [strip.encode(s).ids for s in STRIP_STRINGS]}
    cases["nfc"] = nfc_cases()
    log(f"nfc: {len(cases['nfc']['input'])} strings normalized by tokenizers' NFC normalizer")

    # Long texts: count and fingerprint of the ids, for exact equality on megabytes of text.
    for name in ("wikitext2-test.txt", "c4-validation-2k.txt"):
        path = SHARED / "data" / name
        if not path.exists():
            continue
        body = path.read_text(encoding="utf-8")
        cases.setdefault("long_texts", {})[name] = {
            "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
            "bytes": len(body.encode("utf-8")),
            "smollm2": summary(hf_encode(smol, body, False, False)),
            "mistral": summary(hf_encode(mistral, body, False, False)),
        }
        log(f"{name}: smollm2 {cases['long_texts'][name]['smollm2']}, mistral {cases['long_texts'][name]['mistral']}")

    (FIXTURES / "tokenizer_cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1))
    (FIXTURES / "reference_checks.txt").write_text("\n".join(lines) + "\n")


def summary(ids):
    return {"count": len(ids), "fnv1a64": fnv1a64(ids)}


def tokenizer_cases(tok):
    out = {}
    for add in (True, False):
        for parse in (True, False):
            out[f"ids_add{int(add)}_parse{int(parse)}"] = [hf_encode(tok, s, add, parse) for s in STRINGS]
    out["decode"] = [tok.decode(ids, skip_special_tokens=True) for ids in out["ids_add1_parse1"]]
    out["decode_keep_special"] = [tok.decode(ids, skip_special_tokens=False) for ids in out["ids_add1_parse1"]]
    return out


def transformers_gguf_crosscheck(keys, smol, log):
    """transformers' own GGUF tokenizer conversion, for comparison (it ignores pre "smollm")."""
    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer
    except Exception as e:  # noqa: BLE001 - an optional cross-check
        log(f"transformers GGUF conversion unavailable: {e}")
        return
    names = {"tokenizer.ggml.model": "tokenizer_type", "tokenizer.ggml.pre": "pre_tokenizer_type",
             "tokenizer.ggml.tokens": "tokens", "tokenizer.ggml.merges": "merges",
             "tokenizer.ggml.token_type": "token_type"}
    tdict = {names[k]: v for k, v in keys.items() if k in names}
    conv, _ = convert_gguf_tokenizer("llama", tdict)
    differ = [i for i, s in enumerate(STRINGS) if conv.encode(s).ids != hf_encode(smol, s, False, True)]
    log(f"transformers {__import__('transformers').__version__} GGUF conversion of SmolLM2 differs from the published "
        f"structure on strings {differ} (" + "; ".join(repr(STRINGS[i][:30]) for i in differ) +
        "): it keeps no Digits split for pre 'smollm'")


def check_with_transformers(path, cases, expected):
    """The written tokenizer.json + tokenizer_config.json as a model folder, loaded by transformers."""
    import shutil
    import tempfile
    config = path.with_name(path.name.replace(".tokenizer.json", ".tokenizer_config.json"))
    if not config.exists():
        return 0, 0
    from transformers import AutoTokenizer
    checked = failures = 0
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(path, Path(folder) / "tokenizer.json")
        shutil.copy(config, Path(folder) / "tokenizer_config.json")
        tok = AutoTokenizer.from_pretrained(folder)
        for s, ids in zip(cases["strings"], expected["ids_add1_parse1"]):
            checked += 1
            got = tok(s)["input_ids"]
            if got != ids:
                failures += 1
                print(f"FAIL transformers {path.name} {s!r}: {got} != {ids}")
    return checked, failures


def check_written(directory):
    """The C++ writer's tokenizer.json files, loaded by `tokenizers`, against the fixtures."""
    cases = json.loads((FIXTURES / "tokenizer_cases.json").read_text(encoding="utf-8"))
    directory = Path(directory)
    failures = 0
    lines = []
    files = sorted(directory.glob("*.tokenizer.json"))
    assert files, f"no *.tokenizer.json in {directory}"
    for path in files:
        name = path.name.split(".")[0]  # <fixture case>.<source>.tokenizer.json
        tok = Tokenizer.from_file(str(path))
        expected = cases[name]
        checked = 0
        for key, lists in expected.items():
            if not key.startswith("ids_"):
                continue
            add, parse = key[len("ids_add")] == "1", key.endswith("parse1")
            for s, ids in zip(cases["strings"], lists):
                got = hf_encode(tok, s, add, parse)
                checked += 1
                if got != ids:
                    failures += 1
                    print(f"FAIL {path.name} {key} {s!r}: {got} != {ids}")
        for s, ids, text in zip(cases["strings"], expected["ids_add1_parse1"],
                                expected["decode"]):
            checked += 1
            if tok.decode(ids, skip_special_tokens=True) != text:
                failures += 1
                print(f"FAIL {path.name} decode {s!r}")
        for text_name, expected_long in cases.get("long_texts", {}).items():
            text_path = SHARED / "data" / text_name
            if name not in expected_long or not text_path.exists():
                continue
            got = summary(hf_encode(tok, text_path.read_text(encoding="utf-8"), False, False))
            checked += 1
            if got != expected_long[name]:
                failures += 1
                print(f"FAIL {path.name} {text_name}: {got} != {expected_long[name]}")
        checked_tf, failures_tf = check_with_transformers(path, cases, expected)
        checked += checked_tf
        failures += failures_tf
        lines.append(f"{path.name}: {checked} checks (ids in 4 modes and decode of {len(cases['strings'])} strings, "
                     f"long-text fingerprints, {checked_tf} through transformers with the written tokenizer_config.json)")
        print(lines[-1])
    lines.append(f"{len(files)} files written by tokenizer_spec_to_hf_json, loaded by tokenizers "
                 f"{__import__('tokenizers').__version__}: {failures} failures")
    print(lines[-1])
    (FIXTURES / "hf_writer_checks.txt").write_text("\n".join(lines) + "\n")
    return failures == 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "generate":
        generate()
    elif len(sys.argv) == 3 and sys.argv[1] == "check-written":
        sys.exit(0 if check_written(sys.argv[2]) else 1)
    else:
        sys.exit(__doc__)
