"""The connection keys every etcd component shares: the endpoint list (``,`` or Layotto's
``;``, schemes), ``dialTimeout``, and Layotto's TLS files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylotto.components._backends.etcd_client import EtcdSettings, parse_endpoints
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode


def test_every_endpoint_is_kept_in_order() -> None:
    assert parse_endpoints("a:2379, b:2380 ,c:2381") == (["a:2379", "b:2380", "c:2381"], False)
    assert parse_endpoints("a:2379;b:2380") == (["a:2379", "b:2380"], False)  # Layotto's
    assert parse_endpoints("http://a:2379,https://[::1]:2379/") == (
        ["a:2379", "[::1]:2379"], True)


@pytest.mark.parametrize("bad", ["a", "a:b", ":2379", ",", "a:2379,b"])
def test_a_malformed_endpoint_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="endpoints"):
        decode(EtcdSettings, {"endpoints": bad}, component="lock.etcd")


def test_dial_timeout_takes_layotto_seconds_or_a_duration() -> None:
    base = {"endpoints": "127.0.0.1:2379"}
    assert decode(EtcdSettings, base, component="c").dial_timeout == 5.0
    assert decode(EtcdSettings, {**base, "dialTimeout": "2"}, component="c").dial_timeout == 2.0
    assert decode(EtcdSettings, {**base, "dialTimeout": "300ms"},
                  component="c").dial_timeout == 0.3


def test_tls_from_layotto_files_or_an_https_endpoint(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("pem")
    plain = decode(EtcdSettings, {"endpoints": "h:2379"}, component="c")
    assert not plain.tls and plain.credentials() is None
    assert decode(EtcdSettings, {"endpoints": "https://h:2379"}, component="c").tls
    files = decode(EtcdSettings, {"endpoints": "h:2379", "tlsCa": str(ca), "tlsCert": str(cert),
                                  "tlsCertKey": str(key)}, component="c")
    assert files.tls and files.credentials() is not None
    with pytest.raises(ConfigError, match="tlsCertKey go together"):
        decode(EtcdSettings, {"endpoints": "h:2379", "tlsCert": str(cert)}, component="c")
    with pytest.raises(ConfigError, match="tlsCa"):
        decode(EtcdSettings, {"endpoints": "h:2379", "tlsCa": str(tmp_path / "missing.pem")},
               component="c")
