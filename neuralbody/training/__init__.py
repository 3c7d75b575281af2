"""neuralbody.training: configuration, ray sampling, the training loop and checkpoints."""

from neuralbody.training.checkpoint import LoadedRun, load_run, save_checkpoint
from neuralbody.training.config import TrainConfig

__all__ = ["LoadedRun", "TrainConfig", "load_run", "save_checkpoint"]
