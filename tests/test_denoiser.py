import pytest
import torch
from diffusers import DDPMScheduler

from pipelines import Denoiser


class Oracle(torch.nn.Module):
    """A 'UNet' that knows x₀ and ε and answers in the given parameterisation."""

    def __init__(self, x0, eps, alphas_cumprod, prediction_type):
        super().__init__()
        self.x0, self.eps, self.ac, self.kind = x0, eps, alphas_cumprod, prediction_type

    def forward(self, x_in, t, class_labels=None):
        a = torch.tensor([float(self.ac[int(round(float(v)))]) for v in t]).view(-1, 1, 1, 1)
        out = {"epsilon": self.eps, "sample": self.x0,
               "v_prediction": a.sqrt() * self.eps - (1 - a).sqrt() * self.x0}[self.kind]
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
    torch.testing.assert_close(den(x0 + sigma * eps, sigma, torch.zeros(3, dtype=torch.long)), x0, atol=1e-4, rtol=1e-4)


def test_sigma_to_t_inverts_the_schedule():
    sched = DDPMScheduler(num_train_timesteps=1000)
    den = Denoiser(torch.nn.Identity(), sched.config)
    t = torch.tensor([0, 1, 37, 500, 999])
    sigma = ((1 - sched.alphas_cumprod[t]) / sched.alphas_cumprod[t]).sqrt()
    torch.testing.assert_close(den.sigma_to_t(sigma), t.float(), atol=1e-3, rtol=0)
    assert den.sigma_min == pytest.approx(float(sigma[0]), rel=1e-4)


def test_unknown_prediction_type_is_refused():
    cfg = dict(DDPMScheduler(num_train_timesteps=10).config)
    cfg["prediction_type"] = "flow"
    with pytest.raises(ValueError, match="unsupported prediction_type"):
        Denoiser(torch.nn.Identity(), cfg)
