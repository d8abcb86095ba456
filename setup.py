"""kerasnas: Keras-native neural architecture search on keras-tuner."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "kerasnas" / "__init__.py").read_text()
).group(1)

setup(
    name="kerasnas",
    version=VERSION,
    description="Keras-native neural architecture search: cell spaces, RL, evolution, "
    "morphism and random search as keras-tuner oracles.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["kerasnas", "kerasnas.*"]),
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "keras-tuner>=1.4.7",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9.x imports importlib_resources when it prepares a dataset
        # (DatasetBuilder.code_path, read by download_and_prepare's checksums lookup) but
        # declares it only for Python < 3.9: without it, load("tfds:NAME") fails with
        # ModuleNotFoundError before downloading (tests/tfds_download_test.py).
        "importlib_resources>=5.0",
        "absl-py>=1.0",
        # keras-tuner imports tensorboard at trial time; TensorFlow no longer pulls it in.
        "tensorboard>=2.16",
        # The embedded default dataset (8x8 digits) ships with scikit-learn.
        "scikit-learn>=1.0",
        # The Hungarian matching of skip connections in morphism search's kernel.
        "scipy>=1.7",
        # Architecture and search plots.
        "matplotlib>=3.5",
        "pydot>=1.4",
    ],
    extras_require={
        # nbclient runs the example notebooks (tests/notebooks_test.py) on an ipykernel.
        "test": [
            "pytest>=7",
            "pytest-timeout>=2",  # A hung test fails (setup.cfg) instead of stalling CI.
            "pytest-xdist>=3.2",  # `make test` runs the suite on 2 processes (worksteal).
            "ruff>=0.4",
            "nbclient>=0.7",
            "nbformat>=5.7",
            "ipykernel>=6",
            # The JAX backend's smoke test (tests/backends_test.py); `make test` adds a
            # CPU build of torch where one installs (`make backends`).
            "jax[cpu]>=0.4.30",
        ],
        "docs": ["mkdocs>=1.5", "mkdocstrings[python]>=0.24"],
        # Optuna's TPE sampler, the outside peer of `python -m kerasnas.benchmarks`.
        "bench": ["optuna>=3"],
    },
    entry_points={"console_scripts": ["kerasnas=kerasnas.cli:run"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
