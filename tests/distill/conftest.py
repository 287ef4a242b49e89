import pytest

from edgekd.data.bundled import example_dataset
from edgekd.data.datasets import DatasetBundle


@pytest.fixture(scope="session")
def tiny_data() -> DatasetBundle:
    """256 train / 64 val / 64 test images of the bundled Fashion-MNIST subset."""
    d = example_dataset()
    return DatasetBundle(d.name, d.train.subset(256), d.val.subset(64), d.test.subset(64), d.class_names, d.mean,
                         d.std, d.source, d.digest)  # fmt: skip
