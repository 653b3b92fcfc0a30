"""What a model's configuration means for the layers below the registry.

The registry reads a model's :class:`~oipserve.repository.config.ModelConfig` and translates it
here into the plain values the scheduler and execution take: a
:class:`~oipserve.scheduling.batcher.BatchPolicy` and an
:class:`~oipserve.execution.instance.InstanceSpec`. The scheduler and execution never see the
config schema.
"""

from __future__ import annotations

from oipserve.execution.instance import InstanceSpec, execution_kind
from oipserve.model import LoadContext
from oipserve.repository.config import ModelConfig
from oipserve.scheduling.batcher import BatchPolicy


def instance_spec(backend: str, ctx: LoadContext) -> InstanceSpec:
    """The instances of one version: ``instance_group`` counts summed (at least one) and kinds, and
    the ``[parameters] execution`` entry (``thread``, the default; ``process`` is reserved)."""
    config = ctx.config
    count = sum(group.count for group in config.instance_group) or 1
    execution = execution_kind(config.parameter_strings().get("execution", ""), ctx.name)
    kinds = tuple(group.kind for group in config.instance_group)
    return InstanceSpec(backend, ctx, count=count, execution=execution, kinds=kinds)


def batch_policy(config: ModelConfig, instance_count: int = 1) -> BatchPolicy:
    """Triton's ``dynamic_batching`` section as the scheduler's policy; ``instance_count`` is how
    many batches the model's instances run at once."""
    db = config.dynamic_batching
    if db is None:
        return BatchPolicy(
            max_batch_size=config.max_batch_size, dynamic=False, instance_count=instance_count
        )
    queue = db.default_queue_policy
    timeout_ns = 0
    allow_override = True
    max_queue_size = 0
    if queue is not None:
        max_queue_size = queue.max_queue_size
        if queue.timeout_action.upper() == "DELAY":
            allow_override = False
        else:
            timeout_ns = queue.default_timeout_microseconds * 1000
            allow_override = queue.allow_timeout_override
    return BatchPolicy(
        max_batch_size=config.max_batch_size,
        dynamic=config.max_batch_size > 0,
        max_queue_delay_ns=db.max_queue_delay_microseconds * 1000,
        preferred_batch_sizes=tuple(sorted(set(db.preferred_batch_size))),
        max_queue_size=max_queue_size,
        priority_levels=db.priority_levels,
        default_priority_level=db.default_priority_level,
        default_timeout_ns=timeout_ns,
        allow_timeout_override=allow_override,
        instance_count=instance_count,
    )


__all__ = ["batch_policy", "instance_spec"]
