"""The watcher runtime's pure part (ADR 0014): decoding a message value per format."""

from __future__ import annotations

import pytest
from ledgerflow.scheduler.watchers import decode_value


def test_watcher_value_decoding():
    assert decode_value(b'{"a": [1, 2]}', "json") == ({"a": [1, 2]}, {"a": [1, 2]})
    assert decode_value(None, "json") == (None, None)
    assert decode_value("héllo".encode(), "text") == ("héllo", "héllo")
    assert decode_value(b"\xff\x00", "text")[0] == "\ufffd\x00"
    assert decode_value(b"\xff\x00", "bytes") == (b"\xff\x00", "/wA=")
    for bad in (b"{not json", b"\xff", b"NaN", b'{"x": Infinity}', b"[" * 100_000):
        with pytest.raises(ValueError):
            decode_value(bad, "json")
