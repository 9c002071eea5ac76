import gzip
import struct

import numpy as np
import pytest
import torch

from sfd.data.fashion_mnist import load_fashion_mnist, read_idx


def write_idx(path, array, compress):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader_and_loader(tmp_path, compress):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, compress)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([7, 1]), compress)
    assert (read_idx(tmp_path / "t10k-images-idx3-ubyte") == images).all()
    x, y = load_fashion_mnist("test", tmp_path)
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32 and y.tolist() == [7, 1]
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_missing_dataset_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("valid", tmp_path)
