"""A diffusers UNet plus its noise schedule, seen as a denoiser D(x, σ, c) that returns x̂₀.

Everything in SFD talks in the variance-exploding σ of EDM / k-diffusion: x_σ = x₀ + σ·ε. Two families of
teachers are wrapped here, once, so losses and samplers never see the parameterisation:
- DDPM-family schedulers (DDPM, DDIM, DPM-Solver, Euler, … with betas): a model with cumulative ᾱ_t lives at
  σ_t = sqrt((1 − ᾱ_t) / ᾱ_t), takes the input sqrt(ᾱ_t)·x_σ = x_σ / sqrt(1 + σ²) and the timestep t, and predicts
  ε, v or x₀ (`DDPMParameterisation`);
- EDM-style schedulers (diffusers' `EDMEulerScheduler`, `EDMDPMSolverMultistepScheduler`: they carry `sigma_data`):
  the network F sees c_in(σ)·x and c_noise(σ) = ¼·ln σ, and D = c_skip(σ)·x + c_out(σ)·F (Karras et al. 2022,
  Table 1), computed by the scheduler's own `precondition_*` methods (`EDMParameterisation`);
- flow-matching schedulers (`FlowMatchEulerDiscreteScheduler`: SD3 / SD3.5 style rectified flow): the model sees
  x_t = (1 − t)·x₀ + t·ε at timestep 1000·t and predicts the velocity v = ε − x₀. With σ = t / (1 − t), x_t is
  x_σ / (1 + σ), so x̂₀ = x_t − t·v̂ (`FlowMatchParameterisation`).
"""

from __future__ import annotations

import torch
from torch import nn

from .networks import predict

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
EDM_PREDICTION_TYPES = ("epsilon", "v_prediction")


def is_edm(scheduler_config) -> bool:
    """EDM-style schedulers are parameterised by σ and σ_data instead of a beta schedule."""
    return "sigma_data" in scheduler_config


def is_flow_matching(scheduler_config) -> bool:
    """Flow-matching (rectified-flow) schedulers: diffusers' FlowMatch* schedulers, which carry a time `shift`."""
    return str(scheduler_config.get("_class_name", "")).startswith("FlowMatch") or (
        "shift" in scheduler_config and "beta_start" not in scheduler_config
    )


def alphas_cumprod_from_config(scheduler_config) -> torch.Tensor:
    """ᾱ_t of a DDPM-family scheduler, rebuilt from its config (any diffusers scheduler with betas)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(scheduler_config).alphas_cumprod.float()


def sigmas_from_config(scheduler_config) -> torch.Tensor:
    """σ_t = sqrt((1 − ᾱ_t) / ᾱ_t) of every training timestep t of a DDPM-family scheduler, increasing in t."""
    alphas_cumprod = alphas_cumprod_from_config(scheduler_config)
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


def sigma_range_from_config(scheduler_config) -> tuple[float, float]:
    """The σ range the teacher was trained on: its first and last timestep's σ, or an EDM scheduler's σ_min / σ_max."""
    if is_edm(scheduler_config):
        return float(scheduler_config["sigma_min"]), float(scheduler_config["sigma_max"])
    if is_flow_matching(scheduler_config):
        return FlowMatchParameterisation(scheduler_config).sigma_range
    sigmas = sigmas_from_config(scheduler_config)
    return float(sigmas[0]), float(sigmas[-1])


def edm_scheduler(scheduler_config):
    """diffusers' EDMEulerScheduler with the EDM settings of any EDM scheduler's config (other solvers' keys dropped,
    which diffusers would otherwise warn about)."""
    import inspect

    from diffusers import EDMEulerScheduler

    keys = inspect.signature(EDMEulerScheduler.__init__).parameters
    return EDMEulerScheduler.from_config({k: v for k, v in dict(scheduler_config).items() if k in keys})


def scheduler_of_family(scheduler_config):
    """A DDPMScheduler, an EDMEulerScheduler or a FlowMatchEulerDiscreteScheduler built from the config, whichever
    family it belongs to: what a one-step pipeline stores (only its parameterisation is used) and a text teacher
    samples with."""
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

    if is_edm(scheduler_config):
        return edm_scheduler(scheduler_config)
    if is_flow_matching(scheduler_config):
        return FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    return DDPMScheduler.from_config(scheduler_config)


def check_ddpm_family(scheduler_config) -> None:
    """A DDPM-family scheduler carries a beta schedule; others (flow matching, …) have no ᾱ_t to rebuild."""
    if not {"beta_start", "trained_betas"} & set(scheduler_config):
        name = scheduler_config.get("_class_name", "this scheduler")
        raise ValueError(
            f"{name} is neither a DDPM-family scheduler (DDPM, DDIM, DPM-Solver, Euler, … with a beta schedule), an "
            "EDM-style one (EDMEulerScheduler, EDMDPMSolverMultistepScheduler, with sigma_data) nor a flow-matching "
            "one (FlowMatchEulerDiscreteScheduler)"
        )


class DDPMParameterisation(nn.Module):
    """σ ↔ t by interpolating log σ over the training table; input x/sqrt(1 + σ²); ε / v / x₀ → x̂₀."""

    def __init__(self, scheduler_config):
        super().__init__()
        check_ddpm_family(scheduler_config)
        prediction_type = scheduler_config.get("prediction_type", "epsilon")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unsupported prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")
        self.prediction_type = prediction_type
        self.register_buffer("log_sigmas", sigmas_from_config(scheduler_config).log(), persistent=False)

    @property
    def sigma_range(self) -> tuple[float, float]:
        return float(self.log_sigmas[0].exp()), float(self.log_sigmas[-1].exp())

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep for σ by linear interpolation of log σ over the training table."""
        log_sigma = sigma.float().log().clamp(self.log_sigmas[0], self.log_sigmas[-1])
        idx = torch.searchsorted(self.log_sigmas, log_sigma.contiguous()).clamp(1, len(self.log_sigmas) - 1)
        low, high = self.log_sigmas[idx - 1], self.log_sigmas[idx]
        frac = (log_sigma - low) / (high - low)
        return idx - 1 + frac

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * (1 + sigma**2).rsqrt(), self.sigma_to_t(sigma.flatten())

    def x0(self, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.prediction_type == "epsilon":  # x̂₀ = x − σ·ε̂
            return x - sigma * out
        if self.prediction_type == "v_prediction":  # x̂₀ = x/(1+σ²) − σ/sqrt(1+σ²)·v̂
            return x / (1 + sigma**2) - sigma / (1 + sigma**2).sqrt() * out
        return out


class EDMParameterisation(nn.Module):
    """EDM preconditioning (Karras et al. 2022, Table 1) by the diffusers EDM scheduler's own methods."""

    def __init__(self, scheduler_config):
        super().__init__()
        prediction_type = scheduler_config.get("prediction_type", "epsilon")
        if prediction_type not in EDM_PREDICTION_TYPES:
            raise ValueError(
                f"unsupported prediction_type {prediction_type!r} for an EDM scheduler; expected one of "
                f"{EDM_PREDICTION_TYPES}"
            )
        self.prediction_type = prediction_type
        self.scheduler = edm_scheduler(scheduler_config)
        self.sigma_range = sigma_range_from_config(scheduler_config)

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # c_in = 1/sqrt(σ² + σ_data²), c_noise = ¼·ln σ
        return self.scheduler.precondition_inputs(x, sigma), self.scheduler.precondition_noise(sigma.flatten())

    def x0(self, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.scheduler.precondition_outputs(x, out, sigma)  # D = c_skip·x + c_out·F


class FlowMatchParameterisation(nn.Module):
    """Rectified flow x_t = (1 − t)·x₀ + t·ε (SD3): t = σ/(1 + σ), input x_σ/(1 + σ) at timestep N·t, v → x̂₀."""

    prediction_type = "flow_prediction"

    def __init__(self, scheduler_config):
        super().__init__()
        if scheduler_config.get("use_dynamic_shifting"):
            raise ValueError(
                "a flow-matching scheduler with use_dynamic_shifting (Flux style, resolution-dependent shift) is not "
                "supported; SD3 / SD3.5-style FlowMatchEulerDiscreteScheduler with a fixed `shift` is"
            )
        from diffusers import FlowMatchEulerDiscreteScheduler

        self.num_train_timesteps = int(scheduler_config.get("num_train_timesteps", 1000))
        times = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config).sigmas.double()  # t, from 1 down
        # the training range: its smallest t, and its largest below t = 1 (σ = ∞, pure noise)
        t_lo, t_hi = float(times.min()), float(times[times < 1].max())
        self.sigma_range = (t_lo / (1 - t_lo), t_hi / (1 - t_hi))

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = sigma / (1 + sigma)  # x_t = x_σ/(1 + σ) = (1 − t)·x₀ + t·ε
        return x / (1 + sigma), self.num_train_timesteps * t.flatten()

    def x0(self, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x / (1 + sigma) - sigma / (1 + sigma) * out  # x̂₀ = x_t − t·v̂


def noise_parameterisation(scheduler_config) -> nn.Module:
    if is_edm(scheduler_config):
        return EDMParameterisation(scheduler_config)
    if is_flow_matching(scheduler_config):
        return FlowMatchParameterisation(scheduler_config)
    return DDPMParameterisation(scheduler_config)


class Denoiser(nn.Module):
    """D(x, σ, c) ≈ E[x₀ | x₀ + σ·ε = x, c] for a diffusers model and its scheduler (DDPM family, EDM or flow matching).

    The condition c is integer class labels (a `UNet2DModel` with class embeddings, or a DiT) or text conditions
    (a `UNet2DConditionModel`, an SDXL UNet or an SD3 transformer; see `conditions` for how pooled embeddings ride
    along); `unet` is whichever network it is (see `networks`).
    `guidance_scale` > 1 applies classifier-free guidance on x̂₀ (equivalent to guidance on ε) against the
    unconditional condition: `null_class_id`, the `null_embedding` of the empty prompt, or a per-call `uncond`
    (e.g. a negative prompt). With
    `guidance_interval` = (σ_lo, σ_hi), guidance applies only to rows whose σ lies in it (Kynkäänniemi et al.
    2024, "Applying guidance in a limited interval"); other rows get the conditional x̂₀.
    """

    def __init__(
        self,
        unet: nn.Module,
        scheduler_config,
        null_class_id: int | None = None,
        guidance_scale: float = 1.0,
        null_embedding: torch.Tensor | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ):
        super().__init__()
        if guidance_scale != 1.0 and null_class_id is None and null_embedding is None:
            raise ValueError(
                "classifier-free guidance needs a model trained with a null class or an empty-prompt embedding"
            )
        self.unet = unet
        self.parameterisation = noise_parameterisation(scheduler_config)
        self.null_class_id = null_class_id
        self.guidance_scale = guidance_scale
        self.null_embedding = null_embedding
        self.guidance_interval = None if guidance_interval is None else tuple(map(float, guidance_interval))

    @property
    def prediction_type(self) -> str:
        return self.parameterisation.prediction_type

    @property
    def sigma_min(self) -> float:
        return self.parameterisation.sigma_range[0]

    @property
    def sigma_max(self) -> float:
        return self.parameterisation.sigma_range[1]

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x_in, t = self.parameterisation.model_input(x, sigma)
        out = predict(self.unet, x_in, t, cond)  # each network called its own way (`networks.predict`)
        return self.parameterisation.x0(out.to(x.dtype), x, sigma)

    def null_condition(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.is_floating_point():
            if self.null_embedding is None:
                raise ValueError(
                    "guidance on text conditions needs `null_embedding` (the empty prompt's hidden states)"
                )
            return self.null_embedding.to(cond).expand_as(cond)
        return torch.full_like(cond, self.null_class_id)

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor | float, cond: torch.Tensor, uncond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x̂₀; with guidance, x̂₀(uncond) + w·(x̂₀(cond) − x̂₀(uncond)) (CFG, Ho & Salimans eq. 6 on x̂₀)."""
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype)
        sigma = sigma.flatten().expand(x.shape[0]).reshape(-1, 1, 1, 1)
        if self.guidance_scale == 1.0:
            return self._denoise(x, sigma, cond)
        uncond = self.null_condition(cond) if uncond is None else uncond
        x0_cond, x0_uncond = self._denoise(
            torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([cond, uncond])
        ).chunk(2)
        return x0_uncond + self.guidance_weight(sigma) * (x0_cond - x0_uncond)

    def guidance_weight(self, sigma: torch.Tensor) -> torch.Tensor | float:
        """w per row: the guidance scale, or 1 (no guidance) where σ lies outside `guidance_interval`."""
        if self.guidance_interval is None:
            return self.guidance_scale
        lo, hi = self.guidance_interval
        inside = (sigma >= lo) & (sigma <= hi)
        return torch.where(inside, self.guidance_scale, 1.0).to(sigma)
