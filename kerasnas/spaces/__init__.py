"""Search spaces: keras-tuner hypermodels whose values are architectures."""

from kerasnas.spaces.base import Decision, SearchSpace
from kerasnas.spaces.chain import ChainSpace
from kerasnas.spaces.convnet import ConvNetSpace
from kerasnas.spaces.macro import MacroSpace
from kerasnas.spaces.nasbench101 import NASBench101Space
from kerasnas.spaces.nasbench201 import NASBench201Space
from kerasnas.spaces.nasnet import NASNetSpace

__all__ = [
    "ChainSpace",
    "ConvNetSpace",
    "Decision",
    "MacroSpace",
    "NASBench101Space",
    "NASBench201Space",
    "NASNetSpace",
    "SearchSpace",
]
