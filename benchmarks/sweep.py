"""One sweep, run twice: on this machine's executor and on a two-node Ray cluster started here on loopback.

    .venv/bin/python -m benchmarks.sweep                       # ~30 minutes on 2 cores; appends to results/sweep.jsonl
    .venv/bin/python -m benchmarks.sweep --executors ray --address HOST:PORT   # an existing cluster instead

The grid (12 cells): MNIST × {DM, random real} × IPC {1, 10} × seeds {0, 1, 2}, the quick presets with DM at
100 iterations, each set evaluated on a ConvNet with the quick protocol beside random real images of its IPC and
seed (one shared baseline per IPC and seed). Each executor gets a fresh store, so nothing is reused between them.

Recorded per executor: wall time, the nodes and jobs at once, the table (method × IPC, mean ± std over seeds),
and whether every cell's accuracies equal the other executor's (both run each job on one thread, so the same
seeds should give the same numbers). The load average is recorded beside each row.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GRID = dict(datasets=("mnist",), methods=("dm", "random"), ipcs=(1, 10), seeds=(0, 1, 2),
            overrides={"iterations": 100}, eval_architectures=("convnet",), label="benchmark sweep")


def run_sweep(executor: str, address: str | None) -> dict:
    from ddcore.platform.queue import JobManager
    from ddcore.platform.store import Store
    from ddcore.tasks.sweep import SweepSpec, summary_table

    store = Store(tempfile.mkdtemp(prefix=f"sweep-bench-{executor}-"))
    executors, cluster = {}, None
    if executor == "ray":
        from ddcore.platform.ray_executor import RayExecutor

        if address is None:
            from tests.raykit import LocalCluster

            cluster = LocalCluster()
            address = cluster.address
        executors["ray"] = RayExecutor(address)
    manager = JobManager(store, executors=executors)
    spec = SweepSpec(**GRID, executor="ray" if executor == "ray" else "local")
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    snap = manager.wait(manager.submit(spec).id, 4 * 3600)
    wall = time.monotonic() - start
    nodes = executors["ray"].nodes() if executor == "ray" else []
    at_once = executors["ray"].capacity("cpu") if executor == "ray" else manager.slots["cpu"]
    manager.shutdown(wait=30)
    if cluster is not None:
        import ray

        ray.shutdown()
        cluster.stop()
    cells = snap.result.cells if snap.status == "done" else ()
    return {"executor": executor, "status": snap.status, "message": snap.message, "wall_s": round(wall, 1),
            "nodes": [n["address"] for n in nodes] or ["this machine"], "jobs_at_once": at_once,
            "cells": len(cells), "cells_done": sum(c.status == "done" for c in cells),
            "summary": summary_table(cells), "accuracies": {f"{c.cell.method}-ipc{c.cell.ipc}-seed{c.cell.seed}":
                                                             [c.accuracy, c.baseline] for c in cells},
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M")}


def write_markdown(rows: list[dict]) -> None:
    lines = ["# Sweep: local executor against a two-node Ray cluster (benchmarks/sweep.py)", "",
             "Grid: MNIST × {DM, random real} × IPC {1, 10} × seeds {0, 1, 2} = 12 cells; quick presets, DM at 100 "
             "iterations; each set evaluated on a ConvNet (quick protocol) beside random real of its IPC and seed. "
             "Accuracies in percent. A fresh store per executor.", "",
             "| when | executor | nodes | jobs at once | cells done | wall time | load before → after |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['when']} | {r['executor']} | {len(r['nodes'])} ({', '.join(r['nodes'])}) | "
                     f"{r['jobs_at_once']} | {r['cells_done']}/{r['cells']} | {r['wall_s'] / 60:.1f} min | "
                     f"{r['load_before']} → {r['load_after']} |")
    latest = {}
    for r in rows:
        latest[r["executor"]] = r
    if {"threads", "ray"} <= set(latest):
        same = latest["threads"]["accuracies"] == latest["ray"]["accuracies"]
        speedup = latest["threads"]["wall_s"] / max(1e-9, latest["ray"]["wall_s"])
        lines += ["", f"Latest pair: the cluster took {speedup:.2f}× less wall time; every cell's accuracies "
                      f"{'are identical' if same else 'differ'} between the two executors."]
    for name, r in latest.items():
        if not r["summary"]:
            continue
        lines += ["", f"## Table from the {name} executor ({r['when']})", ""]
        columns = list(r["summary"][0])
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in r["summary"]:
            lines.append("| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in columns) + " |")
    (RESULTS / "sweep.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executors", default="threads,ray", help="comma-separated: threads, ray")
    parser.add_argument("--address", default=None, help="an existing Ray cluster (default: start two nodes here)")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    log = RESULTS / "sweep.jsonl"
    if not args.table_only:
        for executor in args.executors.split(","):
            row = run_sweep(executor.strip(), args.address)
            with open(log, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps({k: row[k] for k in ("executor", "status", "wall_s", "cells_done", "nodes")}))
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    write_markdown(rows)


if __name__ == "__main__":
    main()
