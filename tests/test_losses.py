import torch

from sfd.core.losses import edm_weight, fake_score_loss, sample_sigmas, sid_generator_loss


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
    torch.testing.assert_close(fake_score_loss(y, x_g, sigma), expected)
    assert float(edm_weight(torch.tensor(0.5))) == 8.0  # (0.25 + 0.25) / (0.25·0.25)


def test_sampled_sigmas_stay_in_range_and_follow_the_rho_schedule():
    s = sample_sigmas(10_000, 0.01, 80.0, rho=7.0, u_max=0.8, generator=torch.Generator().manual_seed(0))
    upper = (80 ** (1 / 7) + 0.2 * (0.01 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert s.min() >= 0.01 - 1e-6 and s.max() <= upper + 1e-4
    assert abs(float(s.max()) - upper) / upper < 0.05
