from __future__ import annotations

import random

import pytest

from replication.checksum import weak_blocks, weak_rolling
from replication.delta import (
    Copy,
    DeltaDecoder,
    DeltaEncoder,
    LinkCodec,
    Literal,
    apply_ops,
    literal_bytes,
    plan_delta,
    rebuilt_signature,
)
from replication.signatures import signature_of_bytes


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.mark.parametrize("block", [700, 1024, 4096])
def test_rolling_weak_matches_aligned_blocks(block: int) -> None:
    data = _data(50_000)
    rolling = weak_rolling(data, block)
    aligned = weak_blocks(data, block)
    assert len(rolling) == len(data) - block + 1
    assert (rolling[::block][: len(aligned)] == aligned).all()


def _roundtrip(old: bytes, new: bytes) -> tuple[list, int]:
    sig = signature_of_bytes(old)
    ops = plan_delta(new, sig)
    assert apply_ops(ops, old, sig) == new
    return ops, sig.block_size


def test_unchanged_file_is_all_copies() -> None:
    old = _data(300_000)
    ops, _ = _roundtrip(old, old)
    assert literal_bytes(ops) == 0
    assert all(isinstance(op, Copy) for op in ops)


def test_in_place_rewrites_send_only_the_pages() -> None:
    old = _data(1 << 20)
    new = bytearray(old)
    for page in (3, 50, 90):
        new[page * 8192 : (page + 1) * 8192] = _data(8192, seed=page)
    ops, _ = _roundtrip(old, bytes(new))
    assert literal_bytes(ops) == 3 * 8192


def test_append_sends_only_the_tail() -> None:
    old = _data(1_000_003)
    tail = _data(50_000, seed=9)
    ops, _ = _roundtrip(old, old + tail)
    assert literal_bytes(ops) == len(tail)


def test_mid_file_insert_does_not_fall_back_to_whole_file() -> None:
    old = _data(2 << 20)
    insert = _data(3000, seed=5)
    new = old[:777_777] + insert + old[777_777:]
    ops, block = _roundtrip(old, new)
    assert literal_bytes(ops) <= len(insert) + block
    assert literal_bytes(ops) < len(new) / 100


def test_deletions_truncation_and_reordering() -> None:
    old = _data(600_000)
    new = old[300_000:] + old[:100_000] + old[100_500:250_000]
    ops, block = _roundtrip(old, new)
    assert literal_bytes(ops) <= 3 * block


def test_encoder_roundtrip_and_compression() -> None:
    old = _data(200_000)
    new = old[:100_000] + b"abc" * 20_000 + old[100_000:]
    sig = signature_of_bytes(old)
    ops = plan_delta(new, sig)
    for level in (0, 6):
        enc, dec = DeltaEncoder(level), DeltaDecoder()
        wire = [enc.encode(op) for op in ops]
        assert apply_ops([dec.decode(r) for r in wire], old, sig) == new
        size = sum(map(len, wire))
        if level:
            assert size < literal_bytes(ops) / 10  # the repeated insert compresses
        else:
            assert size >= literal_bytes(ops)


def test_link_codec_shares_one_context_across_files() -> None:
    words = b" ".join(b"word%03d" % (i * 7 % 100) for i in range(5000))
    codec = LinkCodec(3)
    first, op1 = codec.transmit(Literal(words))
    second, op2 = codec.transmit(Literal(words[::-1][::-1]))
    assert op1.data == op2.data == words
    assert second < first / 5  # the second file compresses against the first
    raw, op = LinkCodec(0).transmit(Literal(words))
    assert op.data is words and raw > len(words)


def test_random_edits_always_rebuild_exactly() -> None:
    rng = random.Random(42)
    for _ in range(150):
        old = rng.randbytes(rng.randrange(1, 40_000))
        new = bytearray(old)
        for _ in range(rng.randrange(0, 5)):
            at = rng.randrange(0, len(new) + 1)
            if rng.random() < 0.5:
                new[at:at] = rng.randbytes(rng.randrange(0, 3000))  # insert
            else:
                new[at : at + rng.randrange(0, 3000)] = rng.randbytes(rng.randrange(0, 200))
        _roundtrip(old, bytes(new))


@pytest.mark.parametrize("edit", ["rewrite", "append", "insert", "truncate", "same"])
def test_rebuilt_signature_equals_a_fresh_one(edit: str) -> None:
    rng = random.Random(11)
    old = rng.randbytes(300_000)
    if edit == "rewrite":
        new = bytearray(old)
        for page in (2, 9, 30):
            new[page * 4096 : (page + 1) * 4096] = rng.randbytes(4096)
        new = bytes(new)
    elif edit == "append":
        new = old + rng.randbytes(5000)
    elif edit == "insert":
        new = old[:50_001] + rng.randbytes(777) + old[50_001:]
    elif edit == "truncate":
        new = old[:200_123]
    else:
        new = old
    basis = signature_of_bytes(old)
    fresh = signature_of_bytes(new)
    got = rebuilt_signature(plan_delta(new, basis), basis, new, fresh.file_hash)
    assert (got.size, got.block_size, got.file_hash) == (
        fresh.size,
        fresh.block_size,
        fresh.file_hash,
    )
    assert got.weak.tolist() == fresh.weak.tolist()
    assert got.strong.tolist() == fresh.strong.tolist()
