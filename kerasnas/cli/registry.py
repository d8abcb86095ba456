"""The flags that the registered spaces and strategies declare (`cli_flags`).

The registries are `kerasnas.spaces.SPACES` (`--space`) and
`kerasnas.oracles.STRATEGIES` (`--strategy`). Each class there declares the
command-line flags it takes in its `cli_flags` class attribute:
`{flag: argument}`, the constructor argument that the flag sets, or
`{flag: (argument, offset)}` when the argument is the flag's value plus
`offset`. A class without `cli_flags` takes none; a subclass inherits its
base's. The command line reads these declarations (when it defines its help
texts and whenever it runs); it keeps no table of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from absl import flags

FLAGS = flags.FLAGS


def _target(cls: type, flag: str) -> tuple[str, int]:
    """The constructor argument that `flag` sets in `cls`, and the offset added to the value."""
    target = cls.cli_flags[flag]
    argument, offset = (target, 0) if isinstance(target, str) else tuple(target)
    if not isinstance(argument, str) or isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(
            f"{cls.__name__}.cli_flags[{flag!r}] must be an argument name or an "
            f"(argument, offset) pair. Received: {target!r}."
        )
    return argument, offset


def takers(registry: Mapping[str, type], flag: str) -> dict[str, tuple[str, int]]:
    """The registered classes that take `flag`: name -> (argument, offset), in registry order."""
    return {
        name: _target(cls, flag)
        for name, cls in registry.items()
        if flag in getattr(cls, "cli_flags", {})
    }


def declarations(registry: Mapping[str, type]) -> dict[str, dict[str, tuple[str, int]]]:
    """Every flag that the registry's classes declare, with its `takers`.

    Raises:
        TypeError: A class declares a flag that the command line does not
            define, or one that is not optional (the flags that a class
            declares default to None: unset, the class's own default holds).
    """
    declared: dict[str, dict[str, tuple[str, int]]] = {}
    for name, cls in registry.items():
        for flag in getattr(cls, "cli_flags", {}):
            if flag not in FLAGS or FLAGS[flag].default is not None:
                raise TypeError(
                    f"{cls.__name__}.cli_flags names --{flag}, which is not an optional flag "
                    "of kerasnas.cli.flags: define it there first."
                )
            declared.setdefault(flag, {})[name] = _target(cls, flag)
    return declared


def constructor_default(cls: type, argument: str) -> Any:
    """The default of a constructor argument of `cls` (or of the base class that takes it)."""
    for klass in inspect.getmro(cls):
        init = vars(klass).get("__init__")
        parameter = inspect.signature(init).parameters.get(argument) if init else None
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None
