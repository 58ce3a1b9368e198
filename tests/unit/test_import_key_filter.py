"""The importer's key filter (bank/importer.py `_KeyFilter`): a fixed-size Bloom filter that tells the
streaming importer which identity keys may already be in the bank. A key added is always reported (no
false negative: a missed key would add a duplicate entry); keys never added are rarely reported."""

from __future__ import annotations

import hashlib

from mirrorwatch.bank.importer import _KeyFilter


def _keys(prefix: str, n: int) -> list[str]:
    return [f"sha256:{hashlib.sha256(f'{prefix}{i}'.encode()).hexdigest()}" for i in range(n)] + \
        [f"v:{prefix}{i}" for i in range(n)]


def test_every_key_added_is_reported_and_few_others_are():
    f = _KeyFilter(bits=1 << 22)  # 512 KiB: 200k keys at ~21 bits each
    added = _keys("in-", 100_000)
    for i in range(0, len(added), 7_000):  # in batches, as the importer adds them
        f.add(added[i : i + 7_000])
    assert f.may_contain(added).all()
    others = f.may_contain(_keys("out-", 50_000))
    assert others.mean() < 0.005


def test_an_empty_filter_reports_nothing_and_takes_empty_batches():
    f = _KeyFilter(bits=1 << 16)
    f.add([])
    assert f.may_contain([]).shape == (0,)
    assert not f.may_contain(_keys("x", 100)).any()
