"""What ``--workers`` makes of the embedded default's components (docs/operations.md).

The embedded default (what ``pylotto run`` serves with no file) keeps several components in
the process's memory. With several workers each would hold its own copy, so for the workers:

- the in-memory **state store, lock store and sequencer** become ``sqlite`` components over
  files in a scratch folder the parent makes for the run and removes after it
  (:data:`SHARED_TYPES`): every worker opens the same files, and the data lives as long as the
  sidecar, as in memory;
- the in-memory **pub/sub broker and configuration store** are left out, named in a warning: a
  message published to one worker would never reach a subscriber on another, nor a
  configuration change another worker's subscriber (configure Redis, NATS, etcd... for them);
- the **sqlite** components of the default already share their file under the data dir;
- **actors** (and the workflows over them) are turned off if the default marks an actor state
  store: placement tells sidecars apart by address, and workers share one;
- the **Jobs API** stays on the store it uses without workers (the durable ``sqlite``), not
  on a scratch file.

A component of the configuration is the embedded default's when it is equal to the default's
component of the same capability and name (type and metadata included): components from a
file or a resources folder are left as they are, and ``refuse_per_process`` refuses those that
keep their data in one process.
"""

from __future__ import annotations

from pathlib import Path

from pylotto.components.state.base import Feature
from pylotto.config.model import ComponentSpec, RuntimeConfig, embedded_default
from pylotto.core.registry import resolve
from pylotto.process.assembly import ACTOR_STORE_KEY

SHARED_TYPES: dict[tuple[str, str], str] = {
    ("state", "in-memory"): "sqlite",
    ("lock", "in-memory"): "sqlite",
    ("sequencer", "in-memory"): "sqlite",
}
"""(capability, type) of a process-local default component → the type the workers share."""

def for_workers(config: RuntimeConfig, scratch: Path) -> tuple[RuntimeConfig, list[str]]:
    """``config`` with the embedded default's components made shareable between workers
    (files under ``scratch``), and what was changed, one warning per line to log."""
    kept, notes = shareable_components(config.components, scratch)
    if not notes:
        return config, notes
    update: dict[str, object] = {"components": kept}
    if not config.scheduler.state_store and (store := _durable_store(config.components)):
        update["scheduler"] = config.scheduler.model_copy(update={"state_store": store})
    return config.model_copy(update=update), notes


def shareable_components(specs: list[ComponentSpec], scratch: Path
                         ) -> tuple[list[ComponentSpec], list[str]]:
    """``specs`` with those of the embedded default made shareable (as the module says), and
    what was changed. Also what a hot reload of the files gives the workers."""
    defaults = {(spec.capability, spec.name): spec for spec in embedded_default().components}
    kept: list[ComponentSpec] = []
    notes: list[str] = []
    for spec in specs:
        if defaults.get((spec.capability, spec.name)) != spec:
            kept.append(spec)
        elif (shared := SHARED_TYPES.get((spec.capability, spec.type))) is not None:
            path = scratch / f"{spec.capability}-{spec.name}.db"
            kept.append(spec.model_copy(update={
                "type": shared, "metadata": {"connectionString": str(path)}}))
            notes.append(f"--workers: {spec.capability}.{spec.name} ({spec.type}) is served by "
                         f"a {shared} file shared by the workers, {path} (removed at exit)")
        elif resolve(spec.capability, spec.type, spec.version).per_process:
            notes.append(f"--workers: {spec.capability}.{spec.name} ({spec.type}) is left out: "
                         "each worker would have its own (what is published or changed on one "
                         "would not reach the others); configure a shared backend for it")
        elif marked := [key for key in spec.metadata if key.lower() == ACTOR_STORE_KEY]:
            kept.append(spec.model_copy(update={"metadata": {
                key: value for key, value in spec.metadata.items() if key not in marked}}))
            notes.append(f"--workers: actors and workflows are off (state.{spec.name} is no "
                         "longer the actor state store): workers share one address, which "
                         "placement cannot tell apart")
        else:
            kept.append(spec)
    return kept, notes


def _durable_store(specs: list[ComponentSpec]) -> str:
    """The scheduler's own pick without workers: the first state store with etags whose data
    outlives the process ("" when there is none)."""
    for spec in specs:
        if spec.capability == "state":
            cls = resolve(spec.capability, spec.type, spec.version)
            if Feature.ETAG in cls.features and not cls.per_process:
                return spec.name
    return ""
