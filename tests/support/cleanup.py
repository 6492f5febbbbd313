"""Remove what a test run left on the shared servers: every table, key or node whose name
carries the run's random prefix (the conformance cases put it in every table name, key prefix
path and app id)."""

from __future__ import annotations

import asyncio
import logging

from tests.support.servers import CONNECTION, SERVERS, is_up

log = logging.getLogger("tests.cleanup")


async def _postgresql(prefix: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(CONNECTION["postgresql"])
    try:
        for (table,) in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", f"{prefix}%"):
            await conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
        for (sequence,) in await conn.fetch(
                "SELECT sequencename FROM pg_sequences WHERE sequencename LIKE $1", f"{prefix}%"):
            await conn.execute(f'DROP SEQUENCE IF EXISTS "{sequence}"')
        for (function,) in await conn.fetch(
                "SELECT proname FROM pg_proc WHERE proname LIKE $1", f"{prefix}%"):
            await conn.execute(f'DROP FUNCTION IF EXISTS "{function}"()')
    finally:
        await conn.close()


async def _mysql(prefix: str) -> None:
    import aiomysql

    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", db="test")
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SELECT table_name FROM information_schema.tables "
                                 "WHERE table_schema = 'test' AND table_name LIKE %s",
                                 (f"{prefix}%",))
            for (table,) in await cursor.fetchall():
                await cursor.execute(f"DROP TABLE IF EXISTS `{table}`")
    finally:
        conn.close()


async def _redis(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis(host="127.0.0.1", port=6379)
    try:
        batch = [key async for key in client.scan_iter(match=f"*{prefix}*", count=1000)]
        for start in range(0, len(batch), 500):
            await client.delete(*batch[start:start + 500])
    finally:
        await client.aclose()


async def _etcd(prefix: str) -> None:
    import grpc

    from pylotto.proto.etcd import rpc_pb2, rpc_pb2_grpc

    async with grpc.aio.insecure_channel(CONNECTION["etcd"]) as channel:
        root = f"{prefix}/".encode()
        end = root[:-1] + bytes([root[-1] + 1])
        await rpc_pb2_grpc.KVStub(channel).DeleteRange(
            rpc_pb2.DeleteRangeRequest(key=root, range_end=end), timeout=10)


async def _zookeeper(prefix: str) -> None:
    from aiozk import ZKClient, exc

    client = ZKClient(CONNECTION["zookeeper"])
    await asyncio.wait_for(client.start(), 10)
    try:
        await client.deleteall(f"/{prefix}")
    except exc.NoNode:
        pass
    finally:
        await client.close()


async def _rabbitmq(prefix: str) -> None:
    import shutil

    import aio_pika

    if shutil.which("rabbitmqctl") is None:
        return
    names: dict[str, list[str]] = {}
    for kind in ("queues", "exchanges"):
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", "--no-table-headers", f"list_{kind}", "name",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        names[kind] = [n for n in out.decode().split() if prefix in n]
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/", timeout=10)
    try:
        channel = await connection.channel()
        for queue in names["queues"]:
            await channel.queue_delete(queue)
        for exchange in names["exchanges"]:
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()


async def _nats(prefix: str) -> None:
    import nats

    connection = await nats.connect("nats://127.0.0.1:4222", connect_timeout=5,
                                    max_reconnect_attempts=0)
    try:
        js = connection.jetstream()
        for stream in await js.streams_info():
            if stream.config.name.startswith(prefix):
                await js.delete_stream(stream.config.name)
    finally:
        await connection.close()


CLEANERS = {"postgresql": _postgresql, "mysql": _mysql, "redis": _redis, "etcd": _etcd,
            "zookeeper": _zookeeper, "rabbitmq": _rabbitmq, "nats": _nats}


async def remove_run_data(prefix: str) -> None:
    """Best effort: a server that is down (its tests failed already) is left alone."""
    for server, clean in CLEANERS.items():
        if not is_up(SERVERS[server]):
            continue
        try:
            await clean(prefix)
        except Exception as exc:  # cleaning must never fail the run
            log.warning("cleaning %s for %s failed: %r", server, prefix, exc)
