from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.etcd_cluster import EtcdCluster, etcd_cluster


@pytest.fixture
def cluster() -> Iterator[EtcdCluster]:
    """Three etcd members of the test's own on loopback."""
    with etcd_cluster() as members:
        yield members
