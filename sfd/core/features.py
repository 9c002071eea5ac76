"""A network's bottleneck features: the output of its middle block, averaged over space (or tokens).

Used to look inside a denoiser: `sfd-eval --representation` probes them, the optional contrastive term of training
shapes them.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def middle_block(network):
    """The module whose output is the network's bottleneck: a UNet's `mid_block`, a transformer's middle block."""
    if getattr(network, "mid_block", None) is not None:
        return network.mid_block
    blocks = getattr(network, "transformer_blocks", None)
    if blocks:
        return blocks[len(blocks) // 2]
    raise ValueError(f"{type(network).__name__} has no middle block to read features from")


def pooled(output) -> torch.Tensor:
    """(N, C, H, W) feature maps or (N, tokens, C) token states → (N, C); a joint (MMDiT) block returns (text states,
    image states): the image ones."""
    out = output[-1] if isinstance(output, tuple) else output
    return out.float().flatten(2).mean(-1) if out.dim() == 4 else out.float().mean(1)


@contextmanager
def middle_features(network):
    """Within the block, every forward of `network` appends its pooled middle-block features to the yielded list
    (gradients flow through them)."""
    captured: list[torch.Tensor] = []
    handle = middle_block(network).register_forward_hook(lambda module, inputs, out: captured.append(pooled(out)))
    try:
        yield captured
    finally:
        handle.remove()
