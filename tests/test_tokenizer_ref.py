#!/usr/bin/env python3
# test_tokenizer_ref.py — `qjit tokenize` against an independent pure-Python
# implementation of llama2.c's encode (Karpathy's run.c, the naive O(n^2)
# greedy merge loop), on real text from ../shared with both real vocabs.
# ctest-labels: unit
import os
import struct
import subprocess
import sys
import tempfile

QJIT = os.environ.get("QJIT")
SHARED = os.environ.get("QJ_SHARED")


def skip(why):
    print("skip:", why)
    sys.exit(77)


if not QJIT or not os.path.exists(QJIT):
    skip("QJIT is not set or missing")
if not SHARED or not os.path.isdir(SHARED):
    skip("QJ_SHARED is not set or missing")

TOKENIZERS = {
    "tok512": os.path.join(SHARED, "models/stories260K/tok512.bin"),
    "llama2-32k": os.path.join(SHARED, "models/llama2-tokenizer/tokenizer.bin"),
}
TEXTS = {
    "tinystories": os.path.join(SHARED, "data/tinystories/valid_prefix.txt"),
    "wikitext": os.path.join(SHARED, "data/wikitext-2/valid.txt"),
}
for p in list(TOKENIZERS.values()) + list(TEXTS.values()):
    if not os.path.exists(p):
        skip(p + " is missing")

F32_MINUS_1E10 = struct.unpack("<f", struct.pack("<f", -1e10))[0]


class RefTokenizer:
    """llama2.c tokenizer.bin: int32 max_token_length, then (f32 score, i32 len, bytes)*."""

    def __init__(self, path):
        data = open(path, "rb").read()
        (self.max_len,) = struct.unpack_from("<i", data, 0)
        off = 4
        self.vocab, self.scores = [], []
        while off < len(data):
            score, n = struct.unpack_from("<fi", data, off)
            off += 8
            self.vocab.append(data[off : off + n])
            self.scores.append(score)
            off += n
        self.index = {}
        for i, piece in enumerate(self.vocab):
            self.index.setdefault(piece, i)

    def encode(self, text, bos=False):
        tokens = [1] if bos else []
        if text:
            tokens.append(self.index[b" "])  # the dummy prefix
        for ch in text:
            b = ch.encode("utf-8")
            if b in self.index:
                tokens.append(self.index[b])
            else:
                tokens.extend(byte + 3 for byte in b)  # byte fallback
        vocab, index, scores = self.vocab, self.index, self.scores
        while True:  # merge the best-scoring adjacent pair, leftmost on ties
            best, best_id, best_i = F32_MINUS_1E10, -1, -1
            for i in range(len(tokens) - 1):
                j = index.get(vocab[tokens[i]] + vocab[tokens[i + 1]])
                if j is not None and scores[j] > best:
                    best, best_id, best_i = scores[j], j, i
            if best_i < 0:
                return tokens
            tokens[best_i : best_i + 2] = [best_id]

    def decode(self, ids):
        out, prev = b"", -1
        for i in ids:
            piece = self.vocab[i]
            if prev == 1 and piece.startswith(b" "):
                piece = piece[1:]
            if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
                piece = bytes([int(piece[3:5], 16)])
            out += piece
            prev = i
        return out


failures = 0
checks = 0


def qjit_tokenize(tok_path, text, extra=()):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False,
                                     dir=os.environ.get("QJ_TEST_TMP")) as f:
        f.write(text.encode("utf-8"))
        name = f.name
    try:
        r = subprocess.run([QJIT, "tokenize", "--tokenizer", tok_path, "--text", name, *extra],
                           capture_output=True)
    finally:
        os.unlink(name)
    if r.returncode != 0:
        raise RuntimeError("qjit tokenize failed: " + r.stderr.decode(errors="replace"))
    out = r.stdout.decode()
    assert out.endswith("\n"), "output must end with a newline"
    return [int(x) for x in out.split()]


def check(label, tok_name, text, bos=False):
    global failures, checks
    ref = REF[tok_name].encode(text, bos)
    got = qjit_tokenize(TOKENIZERS[tok_name], text, ["--bos"] if bos else [])
    checks += 1
    if ref != got:
        failures += 1
        k = next((i for i in range(min(len(ref), len(got))) if ref[i] != got[i]), min(len(ref), len(got)))
        print(f"FAIL {tok_name} {label}: {len(text)} chars, ref {len(ref)} ids, qjit {len(got)} ids, "
              f"first difference at {k}: ref {ref[k:k + 8]} qjit {got[k:k + 8]}")


def paragraphs(path, start, count, max_chars):
    text = open(path, encoding="utf-8").read()[start:]
    paras = [p for p in text.split("\n\n" if "tinystories" in path else "\n \n") if p.strip()]
    return [p[:max_chars] for p in paras[1:count + 1]]  # [0] may start mid-paragraph


REF = {name: RefTokenizer(path) for name, path in TOKENIZERS.items()}

edge_cases = [
    "", "a", " ", "  ", "\n", "Hello world", " leading space", "trailing space ", "tab\tand\nnewline",
    "é café naïve", "中文字符 and 日本語", "emoji 😀 🚀!", "<unk> <s> </s> literal", "<0x41> text",
    "don't stop—never; (ok) [x] {y} \"q\" ‘single’",
] + ["a" + " " * n + "b" for n in range(1, 41)] + [" " * n for n in range(1, 20)] + ["x\n" + " " * 17 + "y"]

for tok_name in TOKENIZERS:
    for i, s in enumerate(edge_cases):
        check(f"edge case {i} {s[:20]!r}", tok_name, s)
    check("bos", tok_name, "Once upon a time", bos=True)
    check("bos empty", tok_name, "", bos=True)
    for text_name, path in TEXTS.items():
        for i, p in enumerate(paragraphs(path, 5000, 8, 1200)):
            check(f"{text_name} paragraph {i}", tok_name, p)
        whole = open(path, encoding="utf-8").read()[20000:23000]
        check(f"{text_name} 3 KB chunk", tok_name, whole)

# decode: the reference decoding of the ids equals the text (plus BOS handling)
text = "Once upon a time, Lily saw a big dog. 😀\nThe end."
for tok_name, tok_path in TOKENIZERS.items():
    ids = REF[tok_name].encode(text, bos=True)
    r = subprocess.run([QJIT, "tokenize", "--tokenizer", tok_path, "--decode", "--string",
                        " ".join(map(str, ids[1:]))], capture_output=True)
    checks += 1
    want = REF[tok_name].decode(ids[1:])
    if r.returncode != 0 or r.stdout != want:
        failures += 1
        print(f"FAIL decode {tok_name}: {r.stdout!r} vs {want!r} {r.stderr!r}")

# the command line: --max-tokens, --bos, --help, errors
def cli(*args):
    return subprocess.run([QJIT, "tokenize", *args], capture_output=True)


def expect(label, cond, r=None):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print(f"FAIL cli {label}" + (f": rc {r.returncode} out {r.stdout[:200]!r} err {r.stderr[:300]!r}"
                                     if r is not None else ""))


tok = TOKENIZERS["llama2-32k"]
full = REF["llama2-32k"].encode("Once upon a time there was a cat", bos=True)
r = cli("--tokenizer", tok, "--string", "Once upon a time there was a cat", "--bos", "--max-tokens", "4")
expect("--max-tokens", r.returncode == 0 and r.stdout == (" ".join(map(str, full[:4])) + "\n").encode(), r)
r = cli("--tokenizer", tok, "--string", "")
expect("empty text prints an empty line", r.returncode == 0 and r.stdout == b"\n", r)
r = cli("--help")
expect("--help", r.returncode == 0 and b"usage: qjit tokenize" in r.stdout, r)
with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False, dir=os.environ.get("QJ_TEST_TMP")) as f:
    f.write(b"good text \xc3\x28 bad")
    bad_path = f.name
r = cli("--tokenizer", tok, "--text", bad_path)
expect("invalid UTF-8", r.returncode != 0 and r.stdout == b"" and
       r.stderr.startswith(f"qjit tokenize: {bad_path}: invalid UTF-8 at byte offset 10".encode()), r)
os.unlink(bad_path)
for args, needle in [
    (["--string", "x"], b"--tokenizer PATH is required"),
    (["--tokenizer", tok], b"exactly one of --text FILE and --string S"),
    (["--tokenizer", tok, "--string", "x", "--bogus"], b"unknown option \"--bogus\""),
    (["--tokenizer", tok, "--string", "x", "--max-tokens", "-3"], b"--max-tokens \"-3\""),
    (["--tokenizer", tok, "--string", "x", "--max-tokens"], b"--max-tokens needs a value"),
    (["--tokenizer", "/nonexistent/tok.bin", "--string", "x"], b"/nonexistent/tok.bin: cannot open"),
    (["--tokenizer", tok, "--text", "/nonexistent/t.txt"], b"/nonexistent/t.txt: cannot open"),
    (["--tokenizer", tok, "--decode", "--string", "1 2 x3"], b"\"x3\" at byte offset 4 is not a token id"),
    (["--tokenizer", tok, "--decode", "--string", "1 32000"], b"id 32000 at byte offset 2 is out of range"),
]:
    r = cli(*args)
    expect(" ".join(args[-2:]), r.returncode != 0 and r.stderr.startswith(b"qjit tokenize: ") and
           needle in r.stderr, r)

print(f"{checks - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
