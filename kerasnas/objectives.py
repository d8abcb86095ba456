"""Objectives that trade accuracy against a resource (parameters, FLOPs, latency)."""

from __future__ import annotations

from collections.abc import Mapping

import keras_tuner

# Resources a trained trial can report: `params` always, `latency` on demand.
TRAINED_RESOURCES = ("params", "latency")


class ResourceConstrained(keras_tuner.Objective):
    """MnasNet's soft-constrained reward (Tan et al., CVPR 2019):

    `metric * (resource / target) ** w`, with `w = alpha` when the resource is
    at most `target` and `w = beta` above it. With `alpha = beta = -0.07`
    (the default) a model twice the target must be about 5 % more accurate to
    score the same; `alpha = 0, beta = -1` makes the target a hard limit.

    The resource is read from the trial's metrics: `params` is recorded for
    every trial, `latency` (milliseconds per example, measured after training
    when an objective asks for it) for trained trials, and any metric a
    tabular benchmark maps (e.g. `flops`).

    Args:
        metric: The metric to maximise, e.g. `"val_accuracy"`.
        resource: The resource's metric name. Defaults to `"params"`.
        target: The resource's target value (> 0).
        alpha: Exponent when within the target. Defaults to -0.07.
        beta: Exponent when over the target. Defaults to -0.07.
    """

    def __init__(
        self,
        metric: str = "val_accuracy",
        resource: str = "params",
        target: float = 1e6,
        alpha: float = -0.07,
        beta: float = -0.07,
    ):
        if target <= 0:
            raise ValueError(f"target must be positive. Received: target={target}.")
        super().__init__(f"{metric}_x_{resource}", "max")
        self.metric = metric
        self.resource = resource
        self.target = float(target)
        self.alpha = float(alpha)
        self.beta = float(beta)

    @property
    def inputs(self) -> tuple[str, str]:
        return (self.metric, self.resource)

    def compute(self, metrics: Mapping[str, float]) -> float:
        """The reward from a trial's final metrics."""
        value, resource = metrics[self.metric], metrics[self.resource]
        if resource <= 0:
            return float(value)
        w = self.alpha if resource <= self.target else self.beta
        return float(value * (resource / self.target) ** w)

    def has_value(self, logs: Mapping[str, float]) -> bool:
        return self.name in logs or self.metric in logs

    def get_value(self, logs: Mapping[str, float]) -> float:
        # Per-epoch logs lack the resource, which does not change over epochs:
        # ranking epochs by the metric alone picks the same best epoch.
        if self.name in logs:
            return logs[self.name]
        if self.resource in logs:
            return self.compute(logs)
        return logs[self.metric]

    def __repr__(self) -> str:
        return (
            f"ResourceConstrained(metric={self.metric!r}, resource={self.resource!r}, "
            f"target={self.target:g}, alpha={self.alpha:g}, beta={self.beta:g})"
        )


def objective_inputs(objective: keras_tuner.Objective) -> list[str]:
    """The metric names an objective is computed from.

    A plain objective needs its own name, a keras-tuner multi-objective its
    members', a `ResourceConstrained` its metric and resource.
    """
    names = getattr(objective, "name_to_direction", {objective.name: None})
    return list(getattr(objective, "inputs", names))


def resource_constrained(
    metric: str = "val_accuracy",
    resource: str = "params",
    target: float = 1e6,
    alpha: float = -0.07,
    beta: float = -0.07,
) -> ResourceConstrained:
    """A `ResourceConstrained` objective; see its docstring."""
    return ResourceConstrained(metric, resource, target, alpha, beta)


def pareto_front(records: list[dict], objectives: list[tuple[str, str]]) -> list[dict]:
    """The records no other record dominates.

    Args:
        records: Dicts of metric values (missing names are skipped records).
        objectives: `(name, "max" | "min")` pairs.

    Returns:
        The non-dominated records, in the given order.
    """

    def signed(r):
        return [r[n] if d == "max" else -r[n] for n, d in objectives]

    points = [(r, signed(r)) for r in records if all(r.get(n) is not None for n, _ in objectives)]
    front = []
    for r, p in points:
        dominated = any(
            all(a >= b for a, b in zip(q, p, strict=True)) and q != p for _, q in points
        )
        if not dominated:
            front.append(r)
    return front
