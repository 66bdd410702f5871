"""Experiment-queue tooling: GPU gating for queued jobs and tmux log panes.

- :mod:`bootsep.jobs.gpus`: the GPU query interface (NVML through ``pynvml``, plus a fake).
- :mod:`bootsep.jobs.allocate`: ``allocate.py NUM_GPUS CMD...``, waits for GPUs, runs CMD.
- :mod:`bootsep.jobs.logs`: ``logs.py [RUN_FOLDER...] | sh``, one tmux pane per job/run log.

Importing this package does no work; ``pynvml`` is imported only when NVML is queried.
May import: utils.
"""

__all__ = ["allocate", "gpus", "logs"]
