"""Scripts that train the embedded Fashion-MNIST assets (teacher, classifier, CLIP, FID statistics)."""

import argparse


def asset_parser(doc: str, output_dir: str, batch_size: int, learning_rate: float) -> argparse.ArgumentParser:
    """The options every asset script shares: where the asset goes, where the data is, the seed, the optimiser."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", default=output_dir)
    p.add_argument("--data_root", default=None, help="Fashion-MNIST IDX folder (default: Debian's package)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=batch_size)
    p.add_argument("--learning_rate", type=float, default=learning_rate)
    return p
