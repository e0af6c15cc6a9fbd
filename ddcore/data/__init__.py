"""Datasets: a registry of metadata, sources probed in order, and in-memory uint8 splits."""
from .errors import DatasetCorruptError, DatasetNotFoundError
from .info import DatasetInfo, canonical_name
from .loader import (
    DATASETS,
    available,
    available_datasets,
    clear_cache,
    data_note,
    get_dataset_info,
    has_subset,
    list_datasets,
    load_dataset,
    local_info,
    local_variant,
    point_datasets,
    subset_note,
)
from .split import ImageSplit, LoadedDataset

__all__ = ["DATASETS", "available", "available_datasets", "DatasetCorruptError", "DatasetInfo", "DatasetNotFoundError",
           "ImageSplit", "LoadedDataset", "canonical_name", "clear_cache", "data_note", "get_dataset_info", "has_subset",
           "list_datasets", "load_dataset", "local_info", "local_variant", "point_datasets", "subset_note"]
