"""A tiny insertion dataset (two synthetic-layout triplets) built once per session for the trainer tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _fixtures_module():
    path = Path(__file__).resolve().parents[1] / "data" / "dataset_fixtures.py"
    spec = importlib.util.spec_from_file_location("dataset_fixtures_for_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    from insertanywhere.data.dataset_reference import ClassicalEmbedder
    from insertanywhere.data.rose import build_dataset

    root = tmp_path_factory.mktemp("train_data")
    fixtures = _fixtures_module()
    for seed in range(2):
        fixtures.write_tiny_triplet(root / "src" / f"case{seed}", seed=seed)
    build_dataset(root / "src", root / "dataset", ClassicalEmbedder())
    return root / "dataset"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One latent cache for every run in the session (the tiny model and geometry are the same)."""
    return tmp_path_factory.mktemp("latent_cache")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread than on two contended ones."""
    try:
        import torch
    except ImportError:  # the torch-free tests still run
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
