"""One-shot architecture search: supernets with shared weights and how to train them."""

from kerasnas.oneshot import methods
from kerasnas.oneshot.methods import Darts, OneShotResult, build_supernet
from kerasnas.oneshot.nasbench201 import NASBench201Supernet
from kerasnas.oneshot.nasnet import NASNetSupernet
from kerasnas.oneshot.supernet import GhostBatchNorm, Slot, Supernet
from kerasnas.oneshot.train import OneShotTrainer, path_dropout, rank_paths, single_path

__all__ = [
    "Darts",
    "GhostBatchNorm",
    "NASBench201Supernet",
    "NASNetSupernet",
    "OneShotResult",
    "OneShotTrainer",
    "Slot",
    "Supernet",
    "build_supernet",
    "methods",
    "path_dropout",
    "rank_paths",
    "single_path",
]
