"""One-shot architecture search: supernets with shared weights and how to train them."""

from kerasnas.oneshot.nasbench201 import NASBench201Supernet
from kerasnas.oneshot.nasnet import NASNetSupernet
from kerasnas.oneshot.supernet import GhostBatchNorm, Slot, Supernet
from kerasnas.oneshot.train import OneShotTrainer, path_dropout, rank_paths, single_path

__all__ = [
    "GhostBatchNorm",
    "NASBench201Supernet",
    "NASNetSupernet",
    "OneShotTrainer",
    "Slot",
    "Supernet",
    "path_dropout",
    "rank_paths",
    "single_path",
]
