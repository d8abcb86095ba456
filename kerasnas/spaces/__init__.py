"""Search spaces: keras-tuner hypermodels whose values are architectures."""

from kerasnas.spaces.base import Decision, SearchSpace
from kerasnas.spaces.chain import ChainSpace
from kerasnas.spaces.channel import ChannelSpace
from kerasnas.spaces.convnet import ConvNetSpace
from kerasnas.spaces.macro import MacroSpace
from kerasnas.spaces.nasbench101 import NASBench101Space
from kerasnas.spaces.nasbench201 import NASBench201Space
from kerasnas.spaces.nasnet import NASNetSpace
from kerasnas.spaces.rnn import RNNCellSpace

#: Spaces by name: the `--space` values of the command line (`python -m kerasnas`).
#: Each class's `cli_flags` maps the command-line flags it takes to its constructor
#: arguments: `flag: argument`, or `flag: (argument, offset)` when the argument is the
#: flag's value plus `offset`. A class without `cli_flags` takes no space flag.
SPACES: dict[str, type[SearchSpace]] = {
    "nasnet": NASNetSpace,
    "convnet": ConvNetSpace,
    "macro": MacroSpace,
    "nasbench101": NASBench101Space,
    "nasbench201": NASBench201Space,
    "rnn": RNNCellSpace,
}

__all__ = [
    "SPACES",
    "ChainSpace",
    "ChannelSpace",
    "ConvNetSpace",
    "Decision",
    "MacroSpace",
    "NASBench101Space",
    "NASBench201Space",
    "NASNetSpace",
    "RNNCellSpace",
    "SearchSpace",
]
