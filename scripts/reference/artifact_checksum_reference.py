#!/usr/bin/env python3
"""SHA-256 values that tests/store/artifact_checksum_test.cpp expects, from Python's hashlib
(independent of the OpenSSL call the store makes). The patterned file is longer than the store's
1 MiB read piece, so the digest spans several pieces and a short last one."""
import hashlib


def patterned(n: int) -> bytes:
    # byte i is (7 i + 3) mod 251: no period of 2^k, so a piece read twice or skipped changes the digest
    return bytes((i * 7 + 3) % 251 for i in range(n))


if __name__ == "__main__":
    print("abc           ", hashlib.sha256(b"abc").hexdigest())
    print("empty         ", hashlib.sha256(b"").hexdigest())
    print("patterned 3 MiB + 17", hashlib.sha256(patterned(3 * 1024 * 1024 + 17)).hexdigest())
