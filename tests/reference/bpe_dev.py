"""bpe_dev.py - minimal llama2.c-style BPE encoder (development aid only).

Used to develop the NumPy reference while `qjit tokenize` did not exist yet;
the test suite itself tokenizes with qjit. tokenizer.bin: int32
max_token_length, then per token float32 score, int32 len, bytes.
encode = dummy prefix " " + one token per UTF-8 codepoint (byte fallback:
byte + 3) + repeatedly merge the adjacent pair whose concatenation is a token
with the highest score (leftmost on ties).

    python3 bpe_dev.py tok512.bin text.txt MAX_TOKENS [MAX_CHARS]
"""
import heapq
import struct
import sys


def load_tokenizer(path):
    with open(path, "rb") as f:
        raw = f.read()
    off = 4
    vocab, scores = [], []
    while off < len(raw):
        score, n = struct.unpack_from("<fi", raw, off)
        off += 8
        vocab.append(raw[off:off + n])
        scores.append(score)
        off += n
    return vocab, scores


def encode(text, vocab, scores):
    lookup = {}
    for i, t in enumerate(vocab):
        lookup.setdefault(t, i)
    toks = []
    if text:
        toks.append(lookup[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup:
            toks.append(lookup[b])
        else:
            toks.extend(x + 3 for x in b)
    # doubly linked list + lazy heap: (-score, left index, right index, merged id)
    n = len(toks)
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    alive = [True] * n
    heap = []

    def push(i):
        j = nxt[i]
        if j < n:
            m = lookup.get(vocab[toks[i]] + vocab[toks[j]])
            if m is not None:
                heapq.heappush(heap, (-scores[m], i, j, toks[i], toks[j], m))

    for i in range(n - 1):
        push(i)
    while heap:
        _, i, j, ti, tj, m = heapq.heappop(heap)
        if not (alive[i] and alive[j] and nxt[i] == j and toks[i] == ti and toks[j] == tj):
            continue
        toks[i] = m
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[j] < n:
            prv[nxt[j]] = i
        if prv[i] >= 0:
            push(prv[i])
        push(i)
    return [toks[i] for i in range(n) if alive[i]]


if __name__ == "__main__":
    vocab, scores = load_tokenizer(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        text = f.read(int(sys.argv[4]) if len(sys.argv) > 4 else 40000)
    ids = encode(text, vocab, scores)[: int(sys.argv[3])]
    print(" ".join(map(str, ids)))
