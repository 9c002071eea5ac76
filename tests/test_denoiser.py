import math

import pytest
import torch
from diffusers import DDPMScheduler, EDMEulerScheduler

from sfd.pipelines import ClassConditionalDiffusionPipeline, Denoiser
from sfd.pipelines.denoiser import scheduler_of_family, sigma_range_from_config
from sfd.pipelines.multistep import guided_sampling_loop
from tests.helpers import NAMES, tiny_unet


class Oracle(torch.nn.Module):
    """A 'UNet' that knows x₀ and ε and answers in the given parameterisation."""

    def __init__(self, x0, eps, alphas_cumprod, prediction_type):
        super().__init__()
        self.x0, self.eps, self.ac, self.kind = x0, eps, alphas_cumprod, prediction_type

    def forward(self, x_in, t, class_labels=None):
        a = torch.tensor([float(self.ac[int(round(float(v)))]) for v in t]).view(-1, 1, 1, 1)
        out = {"epsilon": self.eps, "sample": self.x0, "v_prediction": a.sqrt() * self.eps - (1 - a).sqrt() * self.x0}[
            self.kind
        ]
        return type("Out", (), {"sample": out})()


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_every_parameterisation_gives_the_same_x0(prediction_type):
    torch.manual_seed(0)
    sched = DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction_type)
    x0, eps = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    t = torch.tensor([10, 300, 900])
    ac = sched.alphas_cumprod
    sigma = ((1 - ac[t]) / ac[t]).sqrt().view(-1, 1, 1, 1)
    den = Denoiser(Oracle(x0, eps, ac, prediction_type), sched.config)
    torch.testing.assert_close(
        den(x0 + sigma * eps, sigma, torch.zeros(3, dtype=torch.long)), x0, atol=1e-4, rtol=1e-4
    )


def test_sigma_to_t_inverts_the_schedule():
    sched = DDPMScheduler(num_train_timesteps=1000)
    den = Denoiser(torch.nn.Identity(), sched.config)
    t = torch.tensor([0, 1, 37, 500, 999])
    sigma = ((1 - sched.alphas_cumprod[t]) / sched.alphas_cumprod[t]).sqrt()
    torch.testing.assert_close(den.parameterisation.sigma_to_t(sigma), t.float(), atol=1e-3, rtol=0)
    assert den.sigma_min == pytest.approx(float(sigma[0]), rel=1e-4)


def test_unknown_prediction_type_is_refused():
    cfg = dict(DDPMScheduler(num_train_timesteps=10).config)
    cfg["prediction_type"] = "flow"
    with pytest.raises(ValueError, match="unsupported prediction_type"):
        Denoiser(torch.nn.Identity(), cfg)


class EDMOracle(torch.nn.Module):
    """A network F that knows x₀ and ε, checks it was given EDM's c_in·x and c_noise = ¼·ln σ, and answers with the
    F for which c_skip·x + c_out·F = x₀ (Karras et al. 2022, Table 1; diffusers' v_prediction flips c_out's sign)."""

    def __init__(self, x0, eps, sigma, sigma_data, prediction_type):
        super().__init__()
        self.x0, self.eps, self.sigma, self.sd, self.sign = (
            x0,
            eps,
            sigma,
            sigma_data,
            1 if prediction_type == "epsilon" else -1,
        )

    def forward(self, x_in, t, class_labels=None):
        s, sd = self.sigma, self.sd
        x = self.x0 + s * self.eps
        torch.testing.assert_close(x_in, x / (s**2 + sd**2).sqrt())
        torch.testing.assert_close(t, s.flatten().log() / 4)
        c_skip, c_out = sd**2 / (s**2 + sd**2), self.sign * s * sd / (s**2 + sd**2).sqrt()
        return type("Out", (), {"sample": (self.x0 - c_skip * x) / c_out})()


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_edm_scheduler_is_wrapped_with_its_preconditioning(prediction_type):
    torch.manual_seed(0)
    sched = EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, prediction_type=prediction_type)
    x0, eps = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    sigma = torch.tensor([0.01, 1.0, 50.0]).view(-1, 1, 1, 1)
    den = Denoiser(EDMOracle(x0, eps, sigma, 0.5, prediction_type), sched.config)
    torch.testing.assert_close(
        den(x0 + sigma * eps, sigma, torch.zeros(3, dtype=torch.long)), x0, atol=1e-4, rtol=1e-4
    )
    assert (den.sigma_min, den.sigma_max) == (0.002, 80.0) == sigma_range_from_config(sched.config)


def test_edm_scheduler_with_sample_prediction_is_refused():
    cfg = dict(EDMEulerScheduler().config)
    cfg["prediction_type"] = "sample"
    with pytest.raises(ValueError, match="unsupported prediction_type 'sample' for an EDM scheduler"):
        Denoiser(torch.nn.Identity(), cfg)


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_edm_teacher_sampler_is_euler_on_the_wrapped_denoiser(guidance):
    """The teacher pipeline's EDM Euler loop, redone in σ-space with D(x, σ, c): the wrapping is the sampler's."""
    torch.manual_seed(0)
    sched = EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5)
    pipe = ClassConditionalDiffusionPipeline(unet=tiny_unet(len(NAMES) + 1), scheduler=sched, id2label=NAMES)
    labels, z = torch.tensor([0, 1, 2]), torch.randn(3, 1, 8, 8)
    null = torch.full_like(labels, len(NAMES))
    with torch.no_grad():
        expected = guided_sampling_loop(pipe, z.clone(), labels, null, guidance, 4)
        den = Denoiser(pipe.unet, sched.config, null_class_id=len(NAMES), guidance_scale=guidance)
        sigmas = sched.sigmas  # set by the loop above: 4 σ and a final 0
        x = z * math.sqrt(80.0**2 + 1)  # diffusers' EDM init_noise_sigma
        for s, s_next in zip(sigmas[:-1], sigmas[1:]):
            x = x + (s_next - s) * (x - den(x, s, labels)) / s  # Euler step of dx/dσ = (x − D(x, σ)) / σ
    torch.testing.assert_close(x, expected, atol=1e-4, rtol=1e-4)


def test_scheduler_of_family_keeps_the_teachers_family():
    assert isinstance(scheduler_of_family(EDMEulerScheduler(sigma_data=0.7).config), EDMEulerScheduler)
    assert scheduler_of_family(EDMEulerScheduler(sigma_data=0.7).config).config.sigma_data == 0.7
    assert type(scheduler_of_family(DDPMScheduler(prediction_type="v_prediction").config)) is DDPMScheduler
    from diffusers import (
        EDMDPMSolverMultistepScheduler,  # a solver's config: its EDM settings kept, its own keys dropped
    )

    edm = scheduler_of_family(EDMDPMSolverMultistepScheduler(sigma_data=0.6, sigma_max=40.0).config)
    assert type(edm) is EDMEulerScheduler and (edm.config.sigma_data, edm.config.sigma_max) == (0.6, 40.0)
    assert "solver_order" not in edm.config


def test_guidance_interval_guides_only_the_rows_whose_sigma_lies_in_it():
    torch.manual_seed(0)
    sched = DDPMScheduler(num_train_timesteps=1000).config
    unet = tiny_unet(num_class_embeds=len(NAMES) + 1)
    null = len(NAMES)
    x, labels = torch.randn(3, 1, 8, 8), torch.tensor([0, 1, 2])
    sigma = torch.tensor([0.1, 1.0, 10.0])
    everywhere = Denoiser(unet, sched, null_class_id=null, guidance_scale=3.0)
    limited = Denoiser(unet, sched, null_class_id=null, guidance_scale=3.0, guidance_interval=(0.5, 2.0))
    plain = Denoiser(unet, sched, null_class_id=null)
    with torch.no_grad():
        got, guided, cond = limited(x, sigma, labels), everywhere(x, sigma, labels), plain(x, sigma, labels)
    torch.testing.assert_close(got[1], guided[1])  # σ = 1 lies in [0.5, 2]
    for row in (0, 2):  # outside: the conditional x̂₀, no guidance
        torch.testing.assert_close(got[row], cond[row])
    assert not torch.allclose(guided[0], cond[0])
