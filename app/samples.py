"""Cached real-data views for the UI: datasets held once per server, sample strips per class."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from app.widgets import labelled_grid
from ddcore.data import LoadedDataset, load_dataset

HOME_DATASETS = ("mnist", "fashionmnist", "cifar10")


@st.cache_resource(show_spinner="Loading the dataset into memory…")
def dataset(name: str) -> LoadedDataset:
    return load_dataset(name)


@st.cache_data(show_spinner=False, max_entries=32)
def class_samples_grid(name: str, per_class: int = 8, seed: int = 0, scale: int = 2) -> np.ndarray:
    """A uint8 grid of real training images: one row per class, its name on the left."""
    data = dataset(name)
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat([data.train.sample_class(c, per_class, g) for c in range(data.info.num_classes)])
    images = data.train.images[idx].permute(0, 2, 3, 1).numpy()
    return labelled_grid(images, data.train.labels[idx].numpy(), data.info.class_names, scale=scale)
