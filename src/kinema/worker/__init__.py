"""Workers: claim tasks from the task store, run them through the engine, store the results.

`Worker` runs one task at a time (`run_once`, `run_forever`), `WorkerPool` runs N of them as threads,
`sweep` enforces retention. The composition root (cli) builds the store, storage and engine and passes
them in; nothing here builds a backend or speaks HTTP.
"""

from kinema.worker.catalog import catalog_of
from kinema.worker.pool import WorkerOptions, WorkerPool
from kinema.worker.retention import sweep
from kinema.worker.runner import Generator, Worker, new_worker_id

__all__ = ["Generator", "Worker", "WorkerOptions", "WorkerPool", "catalog_of", "new_worker_id", "sweep"]
