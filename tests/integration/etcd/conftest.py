from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.etcd_cluster import EtcdCluster, etcd_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """Three etcd members of the test's own on loopback."""
    with etcd_cluster(tmp_path / "etcd") as members:
        yield members
