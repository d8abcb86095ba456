"""The flags that the registered spaces and strategies declare (`cli_flags`).

The registries are `kerasnas.spaces.SPACES` (`--space`) and
`kerasnas.oracles.STRATEGIES` (`--strategy`). Each class there declares the
command-line flags it takes in its `cli_flags` class attribute,
`{flag: Flag(...)}`: the constructor argument that the flag sets and the
flag's definition (type, help, bounds), e.g.

    cli_flags = {
        "population_size": Flag("population_size", type=int, lower_bound=2,
                                help="Population size P."),
    }

Several classes may take one flag (`--filters` sets an argument of most
spaces): it is one flag, defined by the declarations that give a `type` (they
must agree), and shared by the bare ones, which give only the argument
(`Flag("stem_filters")`, or just `"stem_filters"`; `("num_stacks", 1)` is
`Flag("num_stacks", offset=1)`). A class without `cli_flags` takes none; a
subclass inherits its base's.

The command line defines the declared flags from the registries when it
parses its flags (`define`), so a class registered before then, at run time
included, gets its flags; the help of each shows the defaults of the
constructor arguments it sets (`constructor_default`). Every declared flag
defaults to None: unset, the class's own default holds.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from absl import flags

FLAGS = flags.FLAGS

#: The types a declared flag may have (each has its absl DEFINE_*).
_TYPES = (int, float, str, bool, list)


@dataclasses.dataclass(frozen=True)
class Flag:
    """A command-line flag that a space or strategy takes, declared in its `cli_flags`.

    Attributes:
        argument: The constructor argument that the flag sets.
        type: `int`, `float`, `str`, `bool` or `list` (comma-separated
            items). None: the flag is defined by another class's declaration
            (with a type), and this class shares it.
        help: What the flag means; the command line adds which classes take
            it, the argument each sets and its default.
        choices: The values a `str` flag accepts (an enum flag).
        lower_bound: The smallest value of an `int` or `float` flag, or of
            each item of a `list` flag.
        upper_bound: The largest value, likewise.
        item: The type of each item of a `list` flag (`str` or `int`); the
            argument receives the converted items as a list.
        check: Called with the (converted) value when the flags are parsed;
            raises ValueError for a bad value, whose message is the error.
        default_text: Shown as the default in the help instead of the
            constructor's (e.g. "no limit" for a default of None).
        offset: Added to the value: the argument is the flag's value plus
            `offset`.
    """

    argument: str
    type: type | None = None
    help: str = ""
    choices: Sequence[str] | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    item: type = str
    check: Callable[[Any], Any] | None = None
    default_text: str | None = None
    offset: int = 0

    def definition(self) -> tuple[Any, ...]:
        """What makes two declarations the same flag (all but the argument, help and default)."""
        choices = tuple(self.choices) if self.choices is not None else None
        return (self.type, choices, self.lower_bound, self.upper_bound, self.item, self.check)


def positive(value: float) -> None:
    """A `Flag.check`: the value must be greater than zero."""
    if value <= 0:
        raise ValueError("the value must be positive.")


def _declaration(cls: type, flag: str) -> Flag:
    """The declaration of `flag` in `cls.cli_flags`, as a Flag."""
    target = cls.cli_flags[flag]
    if isinstance(target, Flag):
        declaration = target
    elif isinstance(target, str):
        declaration = Flag(target)
    elif isinstance(target, tuple) and len(target) == 2:
        declaration = Flag(target[0], offset=target[1])
    else:
        declaration = None
    if (
        declaration is None
        or not isinstance(declaration.argument, str)
        or isinstance(declaration.offset, bool)
        or not isinstance(declaration.offset, int)
        or declaration.type not in (None, *_TYPES)
    ):
        raise TypeError(
            f"{cls.__name__}.cli_flags[{flag!r}] must be a kerasnas.cli.registry.Flag (of type "
            "int, float, str, bool or list), an argument name or an (argument, offset) pair. "
            f"Received: {target!r}."
        )
    return declaration


def takers(registry: Mapping[str, type], flag: str) -> dict[str, Flag]:
    """The registered classes that take `flag`: name -> declaration, in registry order."""
    return {
        name: _declaration(cls, flag)
        for name, cls in registry.items()
        if flag in getattr(cls, "cli_flags", {})
    }


def declarations(registry: Mapping[str, type]) -> dict[str, dict[str, Flag]]:
    """Every flag that the registry's classes declare, with its `takers`."""
    declared: dict[str, dict[str, Flag]] = {}
    for name, cls in registry.items():
        for flag in getattr(cls, "cli_flags", {}):
            declared.setdefault(flag, {})[name] = _declaration(cls, flag)
    return declared


def definition(registry: Mapping[str, type], flag: str, users: Mapping[str, Flag]) -> Flag:
    """The declaration that defines `flag`: the first of `users` with a type.

    Raises:
        TypeError: No user gives the flag a type, or two define it differently.
    """
    typed = [(name, d) for name, d in users.items() if d.type is not None]
    if not typed:
        names = ", ".join(registry[name].__name__ for name in users)
        raise TypeError(
            f"--{flag} ({names}) has no definition: declare it in one class with "
            f'kerasnas.cli.registry.Flag("argument", type=..., help=...).'
        )
    first_name, first = typed[0]
    for name, declaration in typed[1:]:
        if declaration.definition() != first.definition():
            raise TypeError(
                f"{registry[first_name].__name__} and {registry[name].__name__} define --{flag} "
                "differently (type, choices, bounds or check); make them agree, or declare it "
                "in one of them only by its argument."
            )
    return first


def constructor_default(cls: type, argument: str) -> Any:
    """The default of a constructor argument of `cls` (or of the base class that takes it)."""
    for klass in inspect.getmro(cls):
        init = vars(klass).get("__init__")
        parameter = inspect.signature(init).parameters.get(argument) if init else None
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None


def convert(spec: Flag, value: Any) -> Any:
    """A parsed flag value as the argument takes it: list items converted (ValueError if bad)."""
    if value is None or spec.type is not list:
        return value
    items = [spec.item(item) for item in value]
    for item in items:
        if spec.lower_bound is not None and item < spec.lower_bound:
            raise ValueError(f"each item must be at least {spec.lower_bound}; got {item!r}.")
        if spec.upper_bound is not None and item > spec.upper_bound:
            raise ValueError(f"each item must be at most {spec.upper_bound}; got {item!r}.")
    return items


def argument_value(declaration: Flag, spec: Flag, value: Any) -> tuple[str, Any]:
    """The constructor argument that a given flag sets, and the value it receives."""
    value = convert(spec, value)
    return declaration.argument, value + declaration.offset if declaration.offset else value


def _shown(value: Any) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def help_text(registry: Mapping[str, type], option: str, flag: str) -> str:
    """The help of a declared flag: its meaning, then the classes that take it.

    E.g. "Blocks per cell. Sets --space=nasnet: num_blocks (default 5);
    --space=rnn: num_nodes (default 8)."; takers that set the same argument
    with the same default share one entry (--strategy=oneshot|spos|...).
    """
    users = takers(registry, flag)
    spec = definition(registry, flag, users)
    groups: dict[tuple[str, str], list[str]] = {}
    for name, declaration in users.items():
        argument, offset = declaration.argument, declaration.offset
        default = declaration.default_text
        if default is None:
            default = constructor_default(registry[name], argument)
            if offset and isinstance(default, (int, float)):
                default -= offset
            default = _shown(default)
        if offset:  # The flag is the argument minus the offset.
            argument = f"{argument} {'-' if offset > 0 else '+'} {abs(offset)}"
        groups.setdefault((argument, default), []).append(name)
    sets = "; ".join(
        f"--{option}={'|'.join(names)}: {argument} (default {default})"
        for (argument, default), names in groups.items()
    )
    meaning = spec.help.strip()
    if meaning and not meaning.endswith("."):
        meaning += "."
    return f"{meaning} Sets {sets}.".strip()


#: The flags that `define` defined: name -> (option, definition). A flag that absl's
#: `flagsaver` has removed since is defined afresh.
_DEFINED: dict[str, tuple[str, tuple[Any, ...]]] = {}


def _absl_help(spec: Flag, help: str) -> str:
    """The help as absl keeps it: an enum flag's choices come first."""
    if spec.type in (None, str) and spec.choices is not None:
        return f"<{'|'.join(spec.choices)}>: {help}"
    return help


def _define_one(name: str, spec: Flag, help: str, module_name: str) -> None:
    common: dict[str, Any] = {"flag_values": FLAGS, "module_name": module_name}
    if spec.type is int:
        flags.DEFINE_integer(name, None, help, spec.lower_bound, spec.upper_bound, **common)
    elif spec.type is float:
        flags.DEFINE_float(name, None, help, spec.lower_bound, spec.upper_bound, **common)
    elif spec.type is bool:
        flags.DEFINE_boolean(name, None, help, **common)
    elif spec.type is list:
        flags.DEFINE_list(name, None, help, **common)
    elif spec.choices is not None:
        flags.DEFINE_enum(name, None, list(spec.choices), help, **common)
    else:
        flags.DEFINE_string(name, None, help, **common)

    def check(value: Any) -> bool:
        if value is not None:
            try:
                converted = convert(spec, value)
                if spec.check is not None:
                    spec.check(converted)
            except ValueError as err:
                raise flags.ValidationError(str(err)) from None
        return True

    if spec.type is list or spec.check is not None:
        flags.register_validator(name, check, flag_values=FLAGS)


def define(registry: Mapping[str, type], option: str, module_name: str) -> list[str]:
    """Defines the flags that the registry's classes declare; returns their names.

    It can be called again (the command line calls it before it parses its
    flags): it defines the flags of classes registered since, checks that
    the flags defined before keep their definition, and rewrites the help
    of each (its takers may have grown).

    Args:
        registry: `kerasnas.spaces.SPACES` or `kerasnas.oracles.STRATEGIES`.
        option: The flag that picks a class of the registry: "space" or "strategy".
        module_name: The module the flags belong to (the one `--help` lists).

    Raises:
        TypeError: A declaration is malformed, names a flag of the command line
            itself or of the other registry, or defines a flag differently
            from an earlier one.
    """
    names = []
    for name, users in declarations(registry).items():
        spec = definition(registry, name, users)
        help = help_text(registry, option, name)
        known = _DEFINED.get(name) if name in FLAGS else None
        if known is None and name in FLAGS:
            raise TypeError(
                f"{', '.join(registry[u].__name__ for u in users)} declare --{name}, which is a "
                "flag of the command line itself; choose another name."
            )
        if known is None:
            _define_one(name, spec, help, module_name)
            _DEFINED[name] = (option, spec.definition())
        elif known[0] != option:
            raise TypeError(f"--{name} is declared both by a space and by a strategy.")
        elif known[1] != spec.definition():
            raise TypeError(
                f"--{name} is defined already, with another type, choices, bounds or check "
                f"than {registry[next(iter(users))].__name__} declares."
            )
        else:
            FLAGS[name].help = _absl_help(spec, help)
        names.append(name)
    return names
