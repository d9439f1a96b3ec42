"""The counter-based hash: independent 64-bit values per (key, row, field), computed a column at a time.

Any value of any profile is a function of its hash, so a profile can be generated on its own, in any
order, with the same result.
"""

from __future__ import annotations

import hashlib
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.arrays import U64


def key64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@cache
def u64(value: int) -> pa.Scalar:
    return pa.scalar(value, U64)


def mix(x: pa.Array) -> pa.Array:
    """SplitMix64's finalizer: a bijection of uint64 whose output bits all depend on every input bit."""
    x = pc.bit_wise_xor(x, pc.shift_right(x, u64(30)))
    x = pc.multiply(x, u64(0xBF58476D1CE4E5B9))
    x = pc.bit_wise_xor(x, pc.shift_right(x, u64(27)))
    x = pc.multiply(x, u64(0x94D049BB133111EB))
    return pc.bit_wise_xor(x, pc.shift_right(x, u64(31)))


class Hasher:
    """Independent 64-bit hashes of the same rows for each named field (or event, by ordinal)."""

    def __init__(self, key: int, ids: pa.Array, salt: pa.Array | None = None):
        base = pc.multiply(pc.cast(ids, U64), u64(0x9E3779B97F4A7C15))
        if salt is not None:
            base = pc.bit_wise_xor(base, mix(pc.add(pc.cast(salt, U64), u64(0xD1B54A32D192ED03))))
        self._base = base
        self._key = key

    def __call__(self, field: str) -> pa.Array:
        return mix(pc.bit_wise_xor(self._base, u64(key64(f"{self._key}\x00{field}"))))


def high(h: pa.Array) -> pa.Array:
    return pc.shift_right(h, u64(32))


def low(h: pa.Array) -> pa.Array:
    return pc.bit_wise_and(h, u64(0xFFFFFFFF))


def scaled(bits32: pa.Array, n: int) -> pa.Array:
    """Uniform in [0, n) from 32 uniform bits (n < 2**32): multiply and shift, no modulo bias to speak of."""
    return pc.shift_right(pc.multiply(bits32, u64(n)), u64(32))


def below(h: pa.Array, n: int) -> pa.Array:
    return scaled(high(h), n)


def chance(h: pa.Array, share: float, shift: int = 0) -> pa.Array:
    """True for about `share` of rows, decided by 16 bits of `h` starting at `shift`."""
    bits = pc.bit_wise_and(pc.shift_right(h, u64(shift)), u64(0xFFFF))
    return pc.less(bits, u64(int(share * 65536)))


def digits(h: pa.Array, width: int) -> pa.Array:
    """A string of exactly `width` decimal digits (width <= 18) from a hash."""
    value = pc.shift_right(h, u64(64 - int(width * 3.3219280948873626)))
    return pc.utf8_lpad(pc.cast(value, pa.string()), width=width, padding="0")
