"""Training: the ignite loop, its handlers, checkpoints, samplers and DDP plumbing.

- :mod:`~bootsep.engine.trainer`: :class:`~bootsep.engine.trainer.Trainer`, one training step,
  validation, logging.
- :mod:`~bootsep.engine.checkpoint`: self-describing checkpoints, written atomically.
- :mod:`~bootsep.engine.handlers`, :mod:`~bootsep.engine.curriculum`,
  :mod:`~bootsep.engine.remixit`: training handlers selected by name.
- :mod:`~bootsep.engine.samplers`, :mod:`~bootsep.engine.distributed`: resumable sampling, DDP.

Plain classes, no gin. Importing the package imports none of its modules.
May import: dsp, losses, metrics, models, utils.
"""

__all__ = ["checkpoint", "curriculum", "distributed", "handlers", "remixit", "samplers",
           "trainer"]
