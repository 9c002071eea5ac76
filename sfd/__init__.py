"""sfd: Score Forgetting Distillation for diffusers models."""

__version__ = "0.1.0"


def forget(*args, **kwargs):
    """Erase classes from a class-conditional teacher; see `sfd.trainer.forget`."""
    from .trainer import forget as _forget

    return _forget(*args, **kwargs)


__all__ = ["forget", "__version__"]
