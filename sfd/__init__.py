"""sfd: Score Forgetting Distillation for diffusers models.

    import sfd
    pipe = sfd.forget("assets/teacher", forget="class=trouser", output_dir="outputs/no-trouser")

The package is layered; each layer imports only the ones before it:
`sfd.pipelines` (the diffusers pipelines of exported models) ← `sfd.core` (specs, losses, metrics, sampling,
loading) and `sfd.data` ← `sfd.evaluation` (judges, checks, reports, attacks) ← `sfd.training` (config, teachers'
conditioning, trainer) and `sfd.baselines` ← `sfd.cli`, `sfd.pretrain` and the demo.
"""

__version__ = "0.1.0"


def forget(*args, **kwargs):
    """Erase classes or concepts from a diffusion teacher into a one-step generator; see `sfd.training.api.forget`."""
    from .training.api import forget as _forget

    return _forget(*args, **kwargs)


def distill(*args, **kwargs):
    """Plain SiD distillation (nothing forgotten), the first stage of two-stage SFD; see `sfd.training.api.distill`."""
    from .training.api import distill as _distill

    return _distill(*args, **kwargs)


def relearn(*args, **kwargs):
    """Relearning attack: fine-tune a copy on a few real images and measure the forget accuracy over the
    attacker's steps; see `sfd.evaluation.relearn.relearn_curve`."""
    from .evaluation.relearn import relearn_curve

    return relearn_curve(*args, **kwargs)


__all__ = ["distill", "forget", "relearn", "__version__"]
