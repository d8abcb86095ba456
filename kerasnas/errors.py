"""kerasnas's exceptions, all in one place (`kerasnas.errors`).

Each is a `ValueError` (`NotInTableError` through keras-tuner's
`FatalValueError`), so code that catches `ValueError` keeps working; catch
these to tell kerasnas's errors apart. `CorruptStoreError`,
`OutOfSpaceError` and `ProjectInUseError` are importable from `kerasnas` too.
"""

from keras_tuner import errors as kt_errors

__all__ = [
    "CorruptStoreError",
    "MorphError",
    "NotDownloadedError",
    "NotInTableError",
    "OutOfSpaceError",
    "ProjectInUseError",
]


class CorruptStoreError(ValueError):
    """A file of the trial store that cannot be read back."""


class OutOfSpaceError(ValueError):
    """An architecture, or a set of decision values, that a space cannot hold."""


class ProjectInUseError(ValueError):
    """Another search is writing the same project."""


class MorphError(ValueError):
    """A morphism that cannot be applied to a model (a `ValueError`)."""


class NotInTableError(kt_errors.FatalValueError):
    """An architecture that the benchmark's table does not hold.

    It is a keras-tuner `FatalError`, so it ends a search instead of being
    recorded as a failed trial: a table that misses architectures of its
    space is a set-up error.
    """


class NotDownloadedError(ValueError):
    """A tensorflow-datasets dataset that is not prepared in its `data_dir`.

    `kerasnas.data.load("tfds:NAME", download=False)` (and `"fashion_mnist"`
    without its IDX files, offline) raise it instead of tensorflow-datasets's
    assertion; `load("tfds:NAME")` raises it within seconds when the data must
    be downloaded and there is no network (instead of tensorflow-datasets'
    minutes of retries and a `ConnectionError`), naming the `data_dir` and how
    to fetch the data elsewhere.
    """
