"""Task kinds: each kind of work is one file here, registered by name (see base.py for the contract).

    TASKS.get("distill")          # the task object
    task_for(spec)                # the task a spec belongs to (spec.kind)
    producer_of("expert-trajectories")   # the task that makes an artefact kind
"""
from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Prepared, Task, TaskContext

TASKS: Registry[Task] = Registry("task kind")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: one instance per kind, registered under cls.kind."""
    TASKS.add(cls.kind, cls(), cls.title, produces=cls.produces)
    return cls


def task_for(spec: Any) -> Task:
    kind = getattr(spec, "kind", None)
    if not isinstance(kind, str):
        raise TypeError(f"a task spec has a 'kind'; {type(spec).__name__} has none")
    return TASKS.get(kind)


def producer_of(artefact_kind: str) -> Task:
    for entry in TASKS.entries():
        if entry.obj.produces == artefact_kind:
            return entry.obj
    raise LookupError(f"no task kind produces '{artefact_kind}' artefacts "
                      f"(known producers: {', '.join(e.name for e in TASKS.entries() if e.obj.produces) or 'none'})")


def resolve_artefacts(requirements: Any, store: Any, device: str = "auto", data: Any = None,
                      recorder: Any = None, control: Any = None) -> dict[str, Any]:
    """The loaded artefacts for `requirements` (kind -> object), making any that are missing right here with
    their producer task: for library calls and the CLI, which run a method without the job queue. `control` is the
    caller's, so a stop (the CLI's Ctrl-C) reaches a producer too (expert training can take minutes)."""
    from ..platform.recorder import EventControl, NullRecorder

    out = {}
    for requirement in requirements:
        producer = producer_of(requirement.kind)
        record = store.get_artefact(requirement.key())
        if record is None:
            prepared = producer.prepare(producer.spec_for(requirement, device), store)
            ctx = TaskContext(store=store, recorder=recorder or NullRecorder(), control=control or EventControl(),
                              data=data)
            record = producer.run(prepared.spec, ctx)
        out[requirement.kind] = producer.load_artefact(record, store)
    return out


def _register_builtin() -> None:
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_register_builtin()

__all__ = ["TASKS", "Prepared", "Task", "TaskContext", "producer_of", "register_task", "resolve_artefacts", "task_for"]
