"""One-shot architecture search: supernets with shared weights and how to train them."""

from kerasnas.oneshot import methods
from kerasnas.oneshot.darts import Darts, DartsOptions
from kerasnas.oneshot.enas import EnasOptions
from kerasnas.oneshot.gdas import GdasOptions
from kerasnas.oneshot.methods import OneShotResult, build_supernet
from kerasnas.oneshot.nasbench201 import NASBench201Supernet
from kerasnas.oneshot.nasnet import NASNetSupernet
from kerasnas.oneshot.spos import SposOptions
from kerasnas.oneshot.supernet import GhostBatchNorm, Slot, Supernet
from kerasnas.oneshot.train import OneShotTrainer, path_dropout, rank_paths, single_path
from kerasnas.oneshot.uniform import UniformOptions

__all__ = [
    "Darts",
    "DartsOptions",
    "EnasOptions",
    "GdasOptions",
    "GhostBatchNorm",
    "NASBench201Supernet",
    "NASNetSupernet",
    "OneShotResult",
    "OneShotTrainer",
    "Slot",
    "SposOptions",
    "Supernet",
    "UniformOptions",
    "build_supernet",
    "methods",
    "path_dropout",
    "rank_paths",
    "single_path",
]
