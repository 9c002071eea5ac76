import torch

from sfd.core.losses import edm_weight, fake_score_loss, native_weight, sample_sigmas, sid_generator_loss
from sfd.pipelines.denoiser import Denoiser


def test_sid_generator_loss_matches_a_hand_computed_value():
    x_g = torch.tensor([[[[0.0, 1.0]]]])
    y_real = torch.tensor([[[[1.0, 1.0]]]])
    y_fake = torch.tensor([[[[0.5, 2.0]]]])
    # w = mean|y_real − x_g| = 0.5; diff = (0.5, −1); (y_real − x_g) − α·diff with α = 1.2 = (1 − 0.6, 0 + 1.2)
    # Σ diff·(…)/w = (0.5·0.4 + (−1)·1.2) / 0.5 = −2.0
    loss = sid_generator_loss(y_real, y_fake, x_g, alpha=1.2)
    torch.testing.assert_close(loss, torch.tensor(-2.0))
    weighted = sid_generator_loss(
        y_real.repeat(2, 1, 1, 1),
        y_fake.repeat(2, 1, 1, 1),
        x_g.repeat(2, 1, 1, 1),
        alpha=1.2,
        sample_weight=torch.tensor([1.0, 0.5]),
    )
    torch.testing.assert_close(weighted, torch.tensor((-2.0 - 1.0) / 2))


def test_sid_loss_gradient_flows_only_through_its_inputs():
    x_g = torch.randn(2, 1, 3, 3, requires_grad=True)
    y_real, y_fake = x_g * 0.5, x_g * 0.2
    sid_generator_loss(y_real, y_fake, x_g, alpha=1.0).backward()
    assert x_g.grad is not None and torch.isfinite(x_g.grad).all()


def test_fake_score_loss_is_weighted_mse():
    x_g = torch.zeros(2, 1, 2, 2)
    y = torch.ones(2, 1, 2, 2)
    sigma = torch.tensor([0.5, 1.0]).view(-1, 1, 1, 1)
    expected = (edm_weight(torch.tensor(0.5)) * 1 + edm_weight(torch.tensor(1.0)) * 1) / 2
    torch.testing.assert_close(fake_score_loss(y, x_g, edm_weight(sigma)), expected)
    assert float(edm_weight(torch.tensor(0.5))) == 8.0  # (0.25 + 0.25) / (0.25·0.25)


class _Constant(torch.nn.Module):
    """A 'UNet' whose prediction is a fixed tensor, whatever its input."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, x, t, class_labels=None):
        return type("Out", (), {"sample": self.out.expand_as(x)})()


def test_native_weight_turns_the_x0_error_into_the_networks_own_loss():
    ddpm = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear"}
    sigma = torch.tensor([0.3, 2.0, 9.0]).view(-1, 1, 1, 1)
    x0, eps = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    x_t = x0 + sigma * eps
    alpha, s = (1 + sigma**2).rsqrt(), sigma * (1 + sigma**2).rsqrt()  # VP: x_vp = α·x0 + s·ε
    for prediction_type in ("epsilon", "v_prediction", "sample"):
        out = torch.randn(1, 1, 4, 4)
        d = Denoiser(_Constant(out), {**ddpm, "prediction_type": prediction_type})
        x0_hat = d(x_t, sigma, torch.zeros(3, dtype=torch.long))
        target = {"epsilon": eps, "v_prediction": alpha * eps - s * x0, "sample": x0}[prediction_type]
        own = (out - target).pow(2).flatten(1).mean(1)  # the loss in the network's own output space
        via_x0 = native_weight(sigma, d).flatten() * (x0_hat - x0).pow(2).flatten(1).mean(1)
        torch.testing.assert_close(via_x0, own, rtol=1e-4, atol=1e-5)


def test_sampled_sigmas_stay_in_range_and_follow_the_rho_schedule():
    s = sample_sigmas(10_000, 0.01, 80.0, rho=7.0, u_max=0.8, generator=torch.Generator().manual_seed(0))
    upper = (80 ** (1 / 7) + 0.2 * (0.01 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert s.min() >= 0.01 - 1e-6 and s.max() <= upper + 1e-4
    assert abs(float(s.max()) - upper) / upper < 0.05
