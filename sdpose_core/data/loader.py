"""The DataLoader around a dataset: batches in an order that depends only on (seed, epoch), on one
process or under DDP; apart from the dataset, which makes one sample at a time."""

from __future__ import annotations

import itertools

import cv2
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["build_loader", "set_loader_epoch"]


def _worker_init(_: int) -> None:
    """Keep OpenCV single-threaded inside workers (the processes already run in parallel)."""
    cv2.setNumThreads(0)


class _ResumableSampler(DistributedSampler):
    """A `DistributedSampler` that can start an epoch part-way: the first ``skip`` indices of the
    epoch's permutation (the batches a run trained before it was stopped) are left out."""

    skip = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return max(super().__len__() - self.skip, 0)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    distributed: bool = False,
    drop_last: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader whose order depends only on (seed, epoch): resumable and DDP-ready.

    Shuffling always goes through a ``DistributedSampler`` (one replica when not
    ``distributed``) so the permutation is reproducible per epoch; call `set_loader_epoch`
    before each epoch. Workers are persistent when ``workers > 0``; memory is pinned when
    CUDA is available.
    """
    if distributed:
        sampler = _ResumableSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    else:
        sampler = _ResumableSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None,
    )


def set_loader_epoch(loader: DataLoader, epoch: int, start_batch: int = 0) -> None:
    """Set the epoch on the loader's sampler (shuffle order) and dataset (augmentation).

    ``start_batch``: begin the epoch at that batch (a run resumed part-way through an epoch gets
    the very batches, augmentation included, that an unbroken run would have had next)."""
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    if isinstance(sampler, _ResumableSampler):
        sampler.skip = start_batch * (loader.batch_size or 1)
    elif start_batch:
        raise ValueError("this loader's sampler cannot start an epoch part-way")
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
