"""Search spaces: keras-tuner hypermodels whose values are architectures."""

from kerasnas.spaces.base import Decision, SearchSpace
from kerasnas.spaces.macro import MacroSpace
from kerasnas.spaces.nasnet import NASNetSpace

__all__ = ["Decision", "MacroSpace", "NASNetSpace", "SearchSpace"]
