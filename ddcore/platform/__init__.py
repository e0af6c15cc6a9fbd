"""The platform: where work runs and what it leaves behind, for every kind of task.

    store.py      the SQLite index and folders: runs, evaluations and artefacts (with lineage), migrated on open
    records.py    the typed records the store reads and writes (one type per result kind)
    queue.py      the generic job queue over task kinds: submit, positions, pause / step / stop, dependencies
    executors.py  where a task runs (threads in this process today; the interface a Ray executor implements)
    recorder.py   how a running task reports progress, metrics and images, and how a distillation run is saved
    bridge.py     the one module the UI imports: jobs, runs, artefacts and "this run now, live or stored"

Science modules (data, models, methods, evaluation) never import the platform; task kinds
(ddcore/tasks/) join the two.
"""
