#!/usr/bin/env python3
"""Reference implementation of the original Python forger lottery.

This reproduces the election of the Python project that posd descends from
(hash/Lot/winnerLot below are transcribed from it), with one clarification:
stakers are met in sorted order (sorted by the UTF-8 bytes of the key, which
is the same as code point order), each staker's lots in iteration order
1..stake. It also defines the full ranking used by the Go package: stakers
ordered by their best (smallest) offset, ties broken by first met.

Only the standard library is used (hashlib + json instead of PyCryptodome's
SHA256, which produces the same digests).

It also carries an independent transcription of posd's own "weighted" rule
(not part of the original) so that its Go implementation has external vectors.

Running this script regenerates the vectors that the Go tests read:

    python3 lottery_reference.py    # writes lottery_vectors.json,
                                    # weighted_vectors.json and
                                    # pyquote_vectors.json next to it
"""

import hashlib
import json
import os
import sys


# --- the original, transcribed -------------------------------------------


def hash(data):  # noqa: A001 - name kept from the original
    # Original: SHA256.new(json.dumps(data).encode('utf-8'))
    return hashlib.sha256(json.dumps(data).encode("utf-8"))


class Lot:
    def __init__(self, publicKey, iteration, lastBlockHash):
        self.publicKey = str(publicKey)
        self.iteration = iteration
        self.lastBlockHash = lastBlockHash

    def lotHash(self):
        hashData = self.publicKey + self.lastBlockHash
        for _ in range(self.iteration):
            hashData = hash(hashData).hexdigest()
        return hashData


def generateLots(stakes, seed):
    lots = []
    for staker in sorted_stakers(stakes):
        for stake in range(stakes[staker]):
            lots.append(Lot(staker, stake + 1, seed))
    return lots


def winnerLot(lots, seed):
    winnerLot = None
    leastOffset = None
    referenceHashIntValue = int(hash(seed).hexdigest(), 16)
    for lot in lots:
        lotIntValue = int(lot.lotHash(), 16)
        offset = abs(lotIntValue - referenceHashIntValue)
        if leastOffset is None or offset < leastOffset:
            leastOffset = offset
            winnerLot = lot
    return winnerLot.publicKey


def original_forger(stakes, seed):
    """The original algorithm, literally (O(stake^2) hashes per staker)."""
    stakes = {k: v for k, v in stakes.items() if v > 0}
    if not stakes:
        return None
    return winnerLot(generateLots(stakes, seed), seed)


# --- fast equivalent + ranking ------------------------------------------


def sorted_stakers(stakes):
    return sorted(stakes, key=lambda s: s.encode("utf-8"))


def best_offsets(stakes, seed):
    """[(staker, best offset)] in met order; lots chained (one hash per lot)."""
    ref = int(hash(seed).hexdigest(), 16)
    out = []
    for staker in sorted_stakers(stakes):
        n = stakes[staker]
        if n <= 0:
            continue
        h = hash(staker + seed).hexdigest()
        best = None
        for i in range(n):
            if i > 0:
                h = hash(h).hexdigest()
            off = abs(int(h, 16) - ref)
            if best is None or off < best:
                best = off
        out.append((staker, best))
    return out


def ranking(stakes, seed):
    # sorted() is stable, so equal offsets keep met order.
    return [s for s, _ in sorted(best_offsets(stakes, seed), key=lambda p: p[1])]


# --- weighted (posd's own rule, not in the original) ----------------------


def weighted_rank(stakes, seed, n):
    """Independent transcription of the Go "weighted" rule, for vectors."""
    stakers = [s for s in sorted_stakers(stakes) if stakes[s] > 0]
    n = min(n, len(stakers))
    total = sum(stakes[s] for s in stakers)
    assert total < 1 << 64
    seedb = seed.encode("utf-8")
    j = 0

    def uniform(bound):
        nonlocal j
        x = int.from_bytes(hashlib.sha256(seedb + j.to_bytes(8, "big")).digest()[:8], "big")
        j += 1
        prod = x * bound
        hi, lo = prod >> 64, prod & ((1 << 64) - 1)
        if lo < bound and lo < ((1 << 64) - bound) % bound:
            return None
        return hi

    picked = []
    while len(picked) < n and j < 64 * n:
        x = uniform(total)
        if x is None:
            continue
        acc = 0
        for s in stakers:
            acc += stakes[s]
            if acc > x:
                break
        if s not in picked:
            picked.append(s)
    while len(picked) < n:  # fallback: draw among the not yet picked
        rest = [s for s in stakers if s not in picked]
        x = uniform(sum(stakes[s] for s in rest))
        if x is None:
            continue
        acc = 0
        for s in rest:
            acc += stakes[s]
            if acc > x:
                picked.append(s)
                break
    return picked


def weighted_vectors():
    cases = [
        ("design", {"genesis": 1, "bob": 3, "alice": 2}, "abc"),
        ("design-empty-seed", {"genesis": 1, "bob": 3, "alice": 2}, ""),
        ("unicode-seed", {"zoë": 5, "🦊": 5, "a\nb": 1}, "sééd🚀"),
        ("whale-fallback", {"whale": 1 << 40, "a": 1, "b": 2, "c": 7}, "fall"),
        ("big-total", {"x": (1 << 63) - 5, "y": (1 << 62) + 3, "z": 12345}, "big"),
        ("many", {"s%02d" % i: 1 + (i * 5) % 13 for i in range(40)}, "many"),
    ]
    out = []
    for name, stakes, seed in cases:
        n = len(stakes)
        out.append({"name": name, "stakes": stakes, "seed": seed,
                    "ranking": weighted_rank(stakes, seed, n)})
    return out


# --- vectors --------------------------------------------------------------

PEM_A = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    "4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n"
    "+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh\n"
    "kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ\n"
    "0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg\n"
    "cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc\n"
    "mwIDAQAB\n"
    "-----END PUBLIC KEY-----"
)
PEM_B = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxV9+3u5Hc1Ye3yZ7Pq9B\n"
    "Qm1h2k8xP3wO0f4nL6sVbR9yT2uE8cWdJ5aHqXg7ZkNvMp4rCs1tLo0iYbFe6DwA\n"
    "IDAQAB\n"
    "-----END PUBLIC KEY-----\n"
)


def tie_pair(seed, stake_a, prefix):
    """Find a staker a (with stake stake_a >= 2) and a staker b such that
    b + seed == hex(lot_1(a)): then b's lot_i equals a's lot_{i+1}, an exact
    tie. Search a among prefix+N so that a's best lot is a chained one (>= 2)
    and hex(lot_1(a)) ends with seed."""
    ref = int(hash(seed).hexdigest(), 16)
    for k in range(1, 1000000):
        a = "%s%d" % (prefix, k)
        h1 = hash(a + seed).hexdigest()
        if not h1.endswith(seed):
            continue
        b = h1[: len(h1) - len(seed)]
        offs = []
        h = h1
        for i in range(stake_a):
            if i > 0:
                h = hash(h).hexdigest()
            offs.append(abs(int(h, 16) - ref))
        if min(offs[1:]) < offs[0]:
            return a, b
    raise RuntimeError("no tie pair found")


def vectors():
    v = []

    def add(name, stakes, seed):
        v.append({"name": name, "stakes": stakes, "seed": seed})

    add("design", {"genesis": 1, "bob": 3, "alice": 2}, "abc")
    add("single", {"solo": 1}, "seed")
    add("newline-key", {"line1\nline2": 3, "carol": 3, "dave\r\n": 2}, "blockhash-1")
    add("control-chars", {"tab\there": 2, "nul\x00x": 2, "bell\x07\x1f\x7f": 2, "bs\b\f": 2}, "ctl")
    add("non-ascii", {"zoë": 4, "zoe": 4, "ålice": 2, "Ωmega": 3}, "ünïcödé seed")
    add("emoji", {"🦊fox": 3, "bob": 3, "𝄞clef": 2, "a😀b": 1}, "seed🚀")
    add("quote-backslash", {'q"b\\s': 3, "plain": 3, '\\"\\': 2, "slash/": 1}, 'se"ed\\')
    add("pem-keys", {PEM_A: 5, PEM_B: 5, "genesis": 1}, "0" * 64)
    add("empty-seed", {"alice": 3, "bob": 3, "carol": 3}, "")
    add("hex-seed", {"alice": 7, "bob": 5, "carol": 3, "dave": 1},
        hash("previous block").hexdigest())

    # Exact ties: b's lots are a's lots shifted by one.
    for seed, prefix in (("", "tie-empty-"), ("c", "tie-c-"), ("9f", "tie-9f-")):
        a, b = tie_pair(seed, 3, prefix)
        add("tie-" + (seed or "empty"), {a: 3, b: 2, "zz-other": 2}, seed)

    many = {}
    for i in range(25):
        many["staker-%02d" % i] = 1 + (i * 7) % 11
    add("many-stakers", many, "many")

    add("large-stakes", {"whale": 20000, "minnow": 1, "mid": 3000}, "big")
    add("large-equal", {"x": 5000, "y": 5000}, "eq")

    for e in v:
        e["winner"] = None
        e["ranking"] = ranking(e["stakes"], e["seed"])
        e["winner"] = e["ranking"][0]
    return v


def pyquote_vectors():
    strs = [
        "",
        "abc",
        "a\"b",
        "back\\slash",
        "\n\r\t\b\f",
        "".join(chr(c) for c in range(0x20)),
        " !~\x7f",
        "\x80\x9f\xa0\xff",
        "zoë",
        "ålice Ωmega",
        "\u2028\u2029",
        "\ufeff\uffff\ufffd",
        "🦊",
        "𝄞",
        "a😀b",
        "\U0010ffff",
        "\U00010000",
        "日本語",
        "</script>&'",
        PEM_A,
        "x" * 100,
    ]
    return [
        {"in_utf8_hex": s.encode("utf-8").hex(), "in": s, "out": json.dumps(s)}
        for s in strs
    ]


def self_check(vs):
    for e in vs:
        if sum(e["stakes"].values()) > 200:
            continue
        want = original_forger(e["stakes"], e["seed"])
        if want != e["winner"]:
            raise SystemExit("mismatch with literal original on %s: %r != %r"
                             % (e["name"], want, e["winner"]))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    vs = vectors()
    self_check(vs)
    with open(os.path.join(here, "lottery_vectors.json"), "w") as f:
        json.dump(vs, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(here, "weighted_vectors.json"), "w") as f:
        json.dump(weighted_vectors(), f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(here, "pyquote_vectors.json"), "w") as f:
        json.dump(pyquote_vectors(), f, indent=1)
        f.write("\n")
    for e in vs:
        print("%-16s winner=%r" % (e["name"], e["winner"]), file=sys.stderr)


if __name__ == "__main__":
    main()
