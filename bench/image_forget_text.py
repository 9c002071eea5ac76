"""`--forget "image=PATH"` on the embedded text teacher: erase a class given one test image of it, no name.

    python -m bench.image_forget_text [--class_id 7] [--image_seed 0] [--samples_per_prompt 50] [--out STEM]

One Fashion-MNIST *test* image of the class (the first of a permutation drawn with `--image_seed`; saved beside the
result) is the only input: SFD runs `configs/t2i-sneaker.yaml` with `--forget "image=…"` and override "sandal" (the
token is learned from the image, then forgotten with the nearest word that best explains it). The one-step model
and the teacher are then measured on the class's own prompts by name ("a photo of a sneaker", …) and on the
remaining prompts: CLIP forget detection (target ≤ 5%) and the CLIP score of the remaining prompts (target ≥ 95% of
the teacher's), evaluation seed 1234. Writes bench/results/image-forget-text.{json,md,png} (or `--out`'s; the run
under bench/runs/ by the same name).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.common import PROJECT, RESULTS, RUNS, write_result
from sfd.core.paths import DEFAULT_CLIP
from sfd.core.precision import describe_machine
from sfd.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from sfd.evaluation.evaluate_text import evaluate_text_model
from sfd.evaluation.judges import CLIPJudge
from sfd.pipelines import TextToImageDiffusionPipeline

CONFIG = PROJECT / "configs" / "t2i-sneaker.yaml"
TEACHER = PROJECT / "assets" / "t2i-teacher"


def pick_image(class_id: int, seed: int, path) -> int:
    """Save the chosen test image as a PNG at `path`; returns its index in the test split."""
    x, y = load_fashion_mnist("test")
    rows = torch.nonzero(y == class_id).flatten()
    index = int(rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[0]])
    Image.fromarray(((x[index, 0].numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)).save(path)
    return index


def main(argv=None) -> None:
    import sfd

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--class_id", type=int, default=7, help="Fashion-MNIST class of the image (7: sneaker)")
    p.add_argument("--override", default="sandal")
    p.add_argument("--image_seed", type=int, default=0)
    p.add_argument("--samples_per_prompt", type=int, default=50)
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed")
    p.add_argument("--out", default=str(RESULTS / "image-forget-text"))
    args = p.parse_args(argv)
    name = FASHION_MNIST_CLASSES[args.class_id]
    out = Path(args.out)
    image = out.with_name(out.name + ".png")  # the input image, saved beside the result
    index = pick_image(args.class_id, args.image_seed, image)
    folder = RUNS / out.name
    started = time.time()
    pipe = sfd.forget(
        config=CONFIG,
        forget=f"image={image}",
        override=args.override,
        output_dir=str(folder),
        overwrite_output_dir=True,
        validation_steps=0,
        checkpointing_steps=0,
        final_eval_samples_per_class=0,
    )
    train_seconds = time.time() - started
    evidence = json.loads((folder / "training.json").read_text())["forget_image"]
    clip = CLIPJudge.from_pretrained(DEFAULT_CLIP)
    kw = dict(clip=clip, num_samples_per_prompt=args.samples_per_prompt, seed=args.seed, progress=False)
    forget = f"concept={name}"
    model = evaluate_text_model(pipe, forget, args.override, **kw)
    teacher = evaluate_text_model(TextToImageDiffusionPipeline.from_pretrained(TEACHER), forget, args.override, **kw)
    keep = ("clip_forget_detection", "clip_score_remaining", "clip_accuracy_remaining", "forget_prompts")
    ratio = model["clip_score_remaining"] / teacher["clip_score_remaining"]
    record = {
        "class": name,
        "test_index": index,
        "image_seed": args.image_seed,
        "override": args.override,
        "seed": args.seed,
        "samples_per_prompt": args.samples_per_prompt,
        "evidence": evidence,
        "train_seconds": train_seconds,
        "machine": describe_machine(),
        "model": {k: model[k] for k in keep},
        "teacher": {k: teacher[k] for k in keep},
        "clip_score_remaining_ratio": ratio,
    }
    detection = model["clip_forget_detection"]
    markdown = f"""# `--forget image=`: erasing "{name}" from the text teacher given one test image

![the image]({image.name}) Fashion-MNIST test image #{index} (seed {args.image_seed}), the only input. Learned
token {evidence["token"]!r}; nearest words {evidence["nearest_words"]}; their denoising loss {evidence["word_losses"]};
forgotten: {evidence["concepts"]}; override "{args.override}"; `configs/t2i-sneaker.yaml` otherwise
({train_seconds / 60:.1f} min with the inversion, {describe_machine()}).

Measured on the class's own prompts by name ({", ".join(model["forget_prompts"])}) and the remaining prompts,
{args.samples_per_prompt} samples per prompt, seed {args.seed}, CLIP judge `assets/clip`:

| model | CLIP forget detection ("{name}") | CLIP score, remaining | CLIP accuracy, remaining |
|---|---|---|---|
| teacher | {teacher["clip_forget_detection"]:.1%} | {teacher["clip_score_remaining"]:.2f} | {teacher["clip_accuracy_remaining"]:.1%} |
| SFD from the image | {detection:.1%} {"✅" if detection <= 0.05 else "❌"} (target ≤ 5%) | {model["clip_score_remaining"]:.2f} ({ratio:.3f} of the teacher's {"✅" if ratio >= 0.95 else "❌"}, target ≥ 0.95) | {model["clip_accuracy_remaining"]:.1%} |
"""
    print(markdown)
    write_result(args.out, record, markdown)


if __name__ == "__main__":
    main()
