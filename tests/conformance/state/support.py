"""Helpers of the state conformance suite (its fixtures: conftest.py) and the case traits
its etag tests read."""

from __future__ import annotations

from pathlib import Path

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import StateCapability
from pylotto.components.state.base import StateStore
from pylotto.config.model import AppConfig
from tests.conformance.cases import Case, load_cases
from tests.conformance.conftest import STORE


def cases_with(feature: str) -> list[object]:
    return load_cases("state", where=lambda c: c.has(feature))


def capability_over(store: StateStore, app_id: str = "conformance") -> StateCapability:
    return StateCapability(ComponentSet("state store", {STORE: store}),
                           RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")))


async def value_of(state: StateCapability, key: str) -> bytes:
    return (await state.get_state(STORE, key)).value


async def etag_of(state: StateCapability, key: str) -> str:
    etag = (await state.get_state(STORE, key)).etag
    assert etag, f"no etag for {key}"
    return etag


REDIS_ETAGS = "redis-etags"
"""Case trait: etags as components-contrib's ``state/redis/redis.go`` (v1.5.2 lines 27-28
setQuery/delQuery, 363-373 parseETag; the same at v1.18.4 lines 39-60, 535-545). Without it a
store has the strict reading of every other contrib store (v1.18.4 ``state/in-memory/
in_memory.go`` 154-179 doValidateEtag, ``state/etcd/etcd.go`` 279-306, ``state/sqlite/
sqlite_dbaccess.go`` 348-413, ``state/mysql/mysql.go`` 623-666, ``common/component/postgresql/
v1/postgresql.go`` 241-272, 445-463): a given etag must match, a missing key matches none."""


def redis_etags(case: Case) -> bool:
    return REDIS_ETAGS in case.traits


NUMERIC_ETAGS = "numeric-etags"
"""Case trait: a non-number etag is EtagInvalid (contrib's postgresql v1 ``strconv.ParseUint``,
common/component/postgresql/v1/postgresql.go 241-250 at main; redis ``parseETag``). Without
it, contrib compares the etag as text (in_memory.go doValidateEtag, sqlite_dbaccess.go 390-414,
mysql.go 623-666, etcd.go 279-306 at main): any other text is a mismatch."""

MISSING_KEY_TAKES_ETAG = "missing-key-takes-etag"
"""Case trait: a save to a missing key creates it whatever its etag, a delete of one succeeds
(redis.go setQuery ``not var1``; zookeeper zk.go Set: ``ErrNoNode`` → Create, Delete:
``ErrNoNode`` → nil, at v1.5.2 and main)."""
