"""sfd: Score Forgetting Distillation for diffusers models."""

__version__ = "0.1.0"


def forget(*args, **kwargs):
    """Erase classes or concepts from a diffusion teacher into a one-step generator; see `sfd.trainer.forget`."""
    from .trainer import forget as _forget

    return _forget(*args, **kwargs)


def distill(*args, **kwargs):
    """Plain SiD distillation (nothing forgotten), the first stage of two-stage SFD; see `sfd.trainer.distill`."""
    from .trainer import distill as _distill

    return _distill(*args, **kwargs)


def relearn(*args, **kwargs):
    """Relearning attack: fine-tune a copy on a few real images and measure the forget accuracy over the
    attacker's steps; see `sfd.relearn.relearn_curve`."""
    from .relearn import relearn_curve

    return relearn_curve(*args, **kwargs)


__all__ = ["distill", "forget", "relearn", "__version__"]
