"""What a sidecar on the embedded default loads: not the libraries of features it is not
configured for. ``cryptography`` (~10 MB resident) comes with a crypto component or a TLS
certificate, ``zeroconf`` (~4 MB) with an mDNS announcement or lookup, the Dapr SDK's client
(``dapr.clients``, pulled in by ``dapr/ext/workflow/__init__.py``) never: the sidecar takes only
the generated Durable Task stubs from that package (pylotto.proto.durabletask). Each check runs in
a fresh interpreter, since the test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

NOT_AT_IDLE = ("cryptography", "zeroconf", "dapr.clients", "croniter")
"""Top-level packages an idle embedded-default sidecar must not have imported."""

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path

    import pylotto.cli  # what `python -m pylotto run` imports, then `run` itself:
    from pylotto.process import dapr_run, instances  # noqa: F401
    from pylotto.process.hotreload import ComponentSources  # noqa: F401
    from pylotto.process.server import serve  # noqa: F401
    import pylotto.facades.dapr.durabletask, pylotto.facades.dapr.http  # the Dapr APIs: on
    import pylotto.facades.dapr.servicer  # noqa: F401  (the server imports them as it starts)
    from pylotto.config.model import embedded_default
    from pylotto.process.runtime import Runtime

    async def main() -> list[str]:
        # the configuration `pylotto run` makes with no file: the embedded default, with
        # Dapr's self-hosted default name resolution (mDNS); components and services started
        # as the server starts them (the servers' ports are not bound here)
        config = dapr_run.with_default_resolution(
            embedded_default().model_copy(update={"data_dir": Path(sys.argv[1])}))
        assert config.name_resolution is not None and config.name_resolution.type == "mdns"
        runtime = Runtime(config)
        await runtime.start()
        try:
            await asyncio.sleep(0.2)  # anything started in the background has run
            return sorted(sys.modules)
        finally:
            await runtime.stop()

    print(json.dumps(asyncio.run(main())))
""")


def loaded_at_idle(data_dir: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_an_idle_embedded_sidecar_loads_no_optional_library(tmp_path: Path) -> None:
    modules = loaded_at_idle(tmp_path)
    # the modules that used to import them are there: the check is not vacuous
    assert {"pylotto.capabilities.crypto.api", "pylotto.capabilities.crypto.enc_v1",
            "pylotto.components.crypto.base", "pylotto.facades.dapr.crypto",
            "pylotto.proto.durabletask", "pylotto.resolution.mdns",
            "pylotto.core.schedule"} <= modules
    found = sorted(m for m in modules
                   if any(m == name or m.startswith(f"{name}.") for name in NOT_AT_IDLE))
    assert found == []


def test_the_workflow_sdk_is_whole_for_code_that_uses_it_after_the_stubs() -> None:
    """The SDK package registered without its ``__init__`` runs it when a name of it is asked
    for: an app or test in the sidecar's process sees the whole SDK."""
    script = textwrap.dedent("""
        import sys
        from pylotto.proto import durabletask as dt
        assert "dapr.clients" not in sys.modules
        from dapr.ext.workflow import DaprWorkflowClient, WorkflowRuntime
        import dapr.ext.workflow as sdk
        from dapr.ext.workflow._durabletask.internal import orchestration_pb2
        assert "dapr.clients" in sys.modules and sdk.WorkflowRuntime is WorkflowRuntime
        assert orchestration_pb2 is dt.orchestration and "WorkflowState" in sdk.__all__
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "ok", done.stderr
