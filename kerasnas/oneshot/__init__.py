"""One-shot architecture search: supernets with shared weights and how to train them.

What users call: `build_supernet(space)` (a `Supernet`), `methods.run` (an
`OneShotResult`) and the methods' options. The supernets of each space, the
trainer and the path samplers are in the submodules (`supernet`,
`nasbench201`, `nasnet`, `rnn`, `train`, one module per method).
"""

from kerasnas.oneshot import methods
from kerasnas.oneshot.common import OneShotResult, build_supernet
from kerasnas.oneshot.darts import DartsOptions
from kerasnas.oneshot.enas import EnasOptions
from kerasnas.oneshot.gdas import GdasOptions
from kerasnas.oneshot.spos import SposOptions
from kerasnas.oneshot.supernet import Supernet
from kerasnas.oneshot.uniform import UniformOptions

__all__ = [
    "DartsOptions",
    "EnasOptions",
    "GdasOptions",
    "OneShotResult",
    "SposOptions",
    "Supernet",
    "UniformOptions",
    "build_supernet",
    "methods",
]
