"""Should the small text-to-image teacher work in the latent space of a VAE, as Stable Diffusion does?

    python -m bench.latent_vs_pixel --max_minutes 5

Trains a small `AutoencoderKL` on Fashion-MNIST (28×28 → 7×7×4 latents, 4× fewer values than pixels)
for a few minutes and measures what any latent model would inherit from it: its reconstructions of
test images, judged by the shipped classifier (accuracy, FID in its feature space, against the
teacher's own pixel-space sampling FID). A latent teacher cannot be better than its decoder.
Writes bench/results/latent-vs-pixel.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm.auto import tqdm

from bench.common import RESULTS, write_result
from sfd.core.metrics import feature_statistics, frechet_distance
from sfd.core.paths import DEFAULT_CLASSIFIER, DEFAULT_TEACHER
from sfd.core.precision import describe_machine
from sfd.data.fashion_mnist import load_fashion_mnist
from sfd.evaluation.judges import ImageClassifierJudge, classify
from sfd.evaluation.reference import load_reference_features


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        latent_channels=4,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        norm_num_groups=16,
        sample_size=28,
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max_minutes", type=float, default=5.0)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--kl_weight", type=float, default=1e-6)
    p.add_argument("--test_images", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    x, _ = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_test, y_test = x_test[: args.test_images], y_test[: args.test_images]
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    start, step = time.time(), 0
    bar = tqdm(desc="vae")
    while (time.time() - start) / 60 < args.max_minutes:
        batch = x[torch.randint(0, len(x), (args.batch_size,))]
        post = vae.encode(batch).latent_dist
        recon = vae.decode(post.sample()).sample
        loss = F.l1_loss(recon, batch) + args.kl_weight * post.kl().mean()  # β-VAE objective, small β
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    minutes = (time.time() - start) / 60
    vae.eval()
    with torch.no_grad():
        recon = torch.cat(
            [vae.decode(vae.encode(x_test[i : i + 500]).latent_dist.mode()).sample for i in range(0, len(x_test), 500)]
        ).clamp(-1, 1)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    to01 = lambda t: (t + 1) / 2  # noqa: E731
    p_real, f_real = classify(judge, to01(x_test))
    p_rec, f_rec = classify(judge, to01(recon))
    # FID against the same reference features (all 10,000 test images) and with the same sample count (1,000)
    # as the teacher's sampling FID; the real images themselves give the floor
    ref_f, _ = load_reference_features()
    mu_r, s_r = feature_statistics(ref_f.numpy())
    fid_recon = frechet_distance(*feature_statistics(f_rec[:1000].numpy()), mu_r, s_r)
    fid_floor = frechet_distance(*feature_statistics(f_real[:1000].numpy()), mu_r, s_r)
    teacher = json.loads((DEFAULT_TEACHER / "metrics.json").read_text())
    result = {
        "vae_steps": step,
        "vae_minutes": round(minutes, 2),
        "latent_shape": [4, 7, 7],
        "pixels": 784,
        "latent_values": 196,
        "test_images": len(x_test),
        "classifier_accuracy_real": float((p_real.argmax(-1) == y_test).float().mean()),
        "classifier_accuracy_reconstructed": float((p_rec.argmax(-1) == y_test).float().mean()),
        "reconstruction_mae": float((recon - x_test).abs().mean()),
        "fid_reconstructed_vs_real": fid_recon,
        "fid_real_vs_real": fid_floor,
        "pixel_teacher_sampling_fid": teacher["fid"],
        "seed": args.seed,
    }
    out = RESULTS
    out.mkdir(parents=True, exist_ok=True)
    verdict = (
        "pixel space: the VAE's reconstructions alone are further from the real images than the pixel-space "
        "teacher's samples"
        if fid_recon > teacher["fid"]
        else "latent space is viable: reconstructions are closer to real images than the pixel teacher's samples"
    )
    rows = "\n".join(f"| {k} | {v} |" for k, v in result.items())
    write_result(
        out / "latent-vs-pixel",
        result,
        f"# Latent or pixel space for the small text-to-image teacher\n\n`python -m bench.latent_vs_pixel` "
        f"(AutoencoderKL 28×28×1 → 7×7×4, {step} steps, {minutes:.1f} min on {describe_machine()}).\n\n| figure | value |\n|---|---|\n"
        f"{rows}\n\nFID is in the shipped classifier's feature space: 1,000 images against the 10,000 test images, "
        f"as the teacher's sampling FID.\n\n"
        f"**Decision: {verdict}.**\n",
    )
    print(json.dumps(result, indent=1))
    print(verdict)


if __name__ == "__main__":
    main()
