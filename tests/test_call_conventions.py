"""Every pipeline takes diffusers' call conventions: per-image counts and generators, explicit noise, output types,
prompt embeddings, image sizes, label forms, step callbacks; numbers are compared, not just shapes."""

import numpy as np
import pytest
import torch

from sfd.core.loading import load_pipeline
from sfd.pipelines import (
    ClassConditionalDiffusionPipeline,
    OneStepClassConditionalPipeline,
    OneStepTextToImagePipeline,
)
from tests.helpers import make_t2i_teacher, make_teacher

CLASS = ("teacher", "one_step")
TEXT = ("t2i", "one_step_t2i")
MULTI = ("teacher", "t2i")
ALL = CLASS + TEXT
LABELS = [0, 1, 2]
PROMPTS = ["a photo of a cat", "a photo of a dog", "a bird"]


def one_step_class(teacher, **kwargs) -> OneStepClassConditionalPipeline:
    return OneStepClassConditionalPipeline(teacher.unet, teacher.scheduler, sigma_init=2.0, **kwargs)


def one_step_text(t) -> OneStepTextToImagePipeline:
    return OneStepTextToImagePipeline(t.unet, t.text_encoder, t.tokenizer, t.scheduler, vae=t.vae)


def save_teachers(root) -> dict:
    return {"teacher": str(make_teacher(root / "teacher")), "t2i": make_t2i_teacher(root / "t2i", with_vae=True)}


def load_all(folders) -> dict:
    """The four pipelines (class / text, multi-step / one-step), loaded from the tiny saved teachers."""
    teacher, t2i = load_pipeline(folders["teacher"]), load_pipeline(folders["t2i"])
    pipes = {
        "teacher": teacher,
        "one_step": one_step_class(teacher, id2label=teacher.id2label),
        "t2i": t2i,
        "one_step_t2i": one_step_text(t2i),
    }
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)
    return pipes


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return save_teachers(tmp_path_factory.mktemp("conventions"))


@pytest.fixture(scope="module")
def pipes(folders):
    return load_all(folders)


def gens(*seeds) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def conditions(name, items) -> dict:
    """The call's condition for condition indices `items`: class ids or prompts."""
    if name in CLASS:
        return {"class_labels": [LABELS[i] for i in items]}
    return {"prompt": [PROMPTS[i] for i in items]}


def defaults(name, kwargs) -> dict:
    """Few steps for multi-step pipelines, guidance on for the class teacher, tensors out."""
    kwargs = dict(kwargs)
    if name in MULTI:
        kwargs.setdefault("num_inference_steps", 2)
    if name == "teacher":
        kwargs.setdefault("guidance_scale", 2.0)
    kwargs.setdefault("output_type", "pt")
    return kwargs


def draw(pipes, name, items, **kwargs) -> torch.Tensor:
    return pipes[name](**defaults(name, {**conditions(name, items), **kwargs})).images


def noise_shape(pipe, n: int) -> tuple[int, ...]:
    """The shape of the standard normal noise of `n` images in the UNet's space."""
    if hasattr(pipe, "latent_shape"):
        return pipe.latent_shape(n)
    size = pipe.unet.config.sample_size
    return (n, pipe.unet.config.in_channels, size, size)


def max_diff(a, b) -> float:
    return float((torch.as_tensor(a).float() - torch.as_tensor(b).float()).abs().max())


# 1. num_images_per_prompt


@pytest.mark.parametrize("name", ALL)
def test_num_images_per_prompt_repeats_each_condition_in_order(pipes, name):
    repeated = draw(pipes, name, [1, 2], num_images_per_prompt=2, generator=gens(0, 1, 2, 3))
    listed = draw(pipes, name, [1, 1, 2, 2], generator=gens(0, 1, 2, 3))
    assert repeated.shape[0] == 4
    assert max_diff(repeated, listed) < 1e-5  # c0, c0, c1, c1
    interleaved = draw(pipes, name, [1, 2, 1, 2], generator=gens(0, 1, 2, 3))
    assert max_diff(repeated, interleaved) > 1e-3
    pil = draw(pipes, name, [0, 1, 2], num_images_per_prompt=3, output_type="pil")
    assert len(pil) == 9
    with pytest.raises(ValueError, match="num_images_per_prompt"):
        draw(pipes, name, [1], num_images_per_prompt=0)


# 2. generator: one, or a list of one per image


@pytest.mark.parametrize("name", ALL)
def test_a_list_of_generators_gives_each_image_what_a_single_call_gives(pipes, name):
    items, seeds = [1, 1, 2], (5, 6, 7)
    batch = draw(pipes, name, items, generator=gens(*seeds))
    for k, (item, seed) in enumerate(zip(items, seeds)):
        single = draw(pipes, name, [item], generator=torch.Generator().manual_seed(seed))
        assert max_diff(batch[k : k + 1], single) < 1e-4
    assert max_diff(batch[0], batch[1]) > 1e-3  # same condition, other generator: another image


@pytest.mark.parametrize("name", ALL)
def test_a_generator_list_of_the_wrong_length_is_an_error(pipes, name):
    with pytest.raises(ValueError, match="2 generators for 3 images"):
        draw(pipes, name, [0, 1, 2], generator=gens(0, 1))
    with pytest.raises(ValueError, match="2 generators for 4 images"):
        draw(pipes, name, [0, 1], num_images_per_prompt=2, generator=gens(0, 1))


# 3. latents


@pytest.mark.parametrize("name", ALL)
def test_latents_given_explicitly_equal_latents_drawn_with_the_same_generator(pipes, name):
    pipe = pipes[name]
    drawn = draw(pipes, name, [0, 2], generator=torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    z = torch.randn(noise_shape(pipe, 2), generator=generator)
    given = draw(pipes, name, [0, 2], latents=z, generator=generator)  # the sampler's step noise continues from it
    assert max_diff(drawn, given) < 1e-6
    other = draw(pipes, name, [0, 2], latents=torch.randn_like(z), generator=torch.Generator().manual_seed(4))
    assert max_diff(drawn, other) > 1e-3
    wrong = torch.zeros(noise_shape(pipe, 2)[:-1] + (3,))
    with pytest.raises(ValueError, match="latents have shape"):
        draw(pipes, name, [0, 2], latents=wrong)
    with pytest.raises(ValueError, match="latents have shape"):
        draw(pipes, name, [0, 2], latents=z, num_images_per_prompt=2)


def test_multistep_latents_are_standard_normal_and_scaled_by_init_noise_sigma(tmp_path):
    pipe = load_pipeline(str(make_teacher(tmp_path / "edm", edm=True)))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler.init_noise_sigma > 10
    seen = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, 8, 8, generator=generator)
    given = pipe(class_labels=[0, 1], num_inference_steps=2, latents=z, generator=generator, output_type="pt").images
    hook.remove()
    pipe.scheduler.set_timesteps(2)  # scale_model_input reads the scheduler's step index
    t0 = pipe.scheduler.timesteps[0]
    expected = pipe.scheduler.scale_model_input(z * pipe.scheduler.init_noise_sigma, t0)
    assert len(seen) == 2 and max_diff(seen[0], expected) < 1e-5
    drawn = pipe(class_labels=[0, 1], num_inference_steps=2, generator=gens(0)[0], output_type="pt").images
    assert max_diff(drawn, given) < 1e-6


# 4. output_type and return_dict


@pytest.mark.parametrize("name", ALL)
def test_output_types_hold_the_same_pixels_and_return_dict_false_gives_a_tuple(pipes, name):
    pt = draw(pipes, name, [0, 1], generator=gens(3, 4), output_type="pt")
    assert isinstance(pt, torch.Tensor) and pt.shape[:2] == (2, 1) and 0 <= pt.min() and pt.max() <= 1
    arr = draw(pipes, name, [0, 1], generator=gens(3, 4), output_type="np")
    assert isinstance(arr, np.ndarray) and arr.shape == (2, pt.shape[2], pt.shape[3], 1)
    assert max_diff(arr, pt.permute(0, 2, 3, 1)) < 1e-6
    pil = draw(pipes, name, [0, 1], generator=gens(3, 4), output_type="pil")
    assert len(pil) == 2 and pil[0].size == (pt.shape[3], pt.shape[2])
    assert max_diff(np.stack([np.asarray(p) for p in pil]), (arr[..., 0] * 255).round()) == 0
    as_tuple = pipes[name](
        **defaults(name, {**conditions(name, [0, 1]), "generator": gens(3, 4), "return_dict": False})
    )
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1 and max_diff(as_tuple[0], pt) == 0
    with pytest.raises(ValueError, match="output_type"):
        draw(pipes, name, [0], output_type="latent-ish")


def draw_raw(pipes, name, **kwargs):
    """A call with exactly these kwargs (no condition filled in)."""
    return pipes[name](**defaults(name, kwargs)).images


# 5. prompt embeddings, negative prompts, one-step guidance


@pytest.mark.parametrize("name", TEXT)
def test_prompt_embeds_give_the_images_of_their_prompts(pipes, name):
    embeds = pipes[name].encode_prompt(PROMPTS[:2])
    by_prompt = draw_raw(pipes, name, prompt=PROMPTS[:2], generator=gens(0, 1))
    by_embeds = draw_raw(pipes, name, prompt_embeds=embeds, generator=gens(0, 1))
    assert max_diff(by_prompt, by_embeds) < 1e-6
    repeated = draw_raw(pipes, name, prompt_embeds=embeds, num_images_per_prompt=2, generator=gens(0, 0, 1, 1))
    assert max_diff(repeated[::2], by_prompt) < 1e-5
    with pytest.raises(ValueError, match="exactly one of `prompt` and `prompt_embeds`"):
        draw_raw(pipes, name, prompt=PROMPTS[:2], prompt_embeds=embeds)
    with pytest.raises(ValueError, match="exactly one of `prompt` and `prompt_embeds`"):
        draw_raw(pipes, name)


@pytest.mark.parametrize("name", TEXT)
def test_negative_prompt_embeds_equal_the_negative_prompt_under_guidance(pipes, name):
    pipe = pipes[name]
    negative = ["a bird", "a bird"]
    kwargs = dict(prompt=PROMPTS[:2], guidance_scale=3.0)
    by_text = draw_raw(pipes, name, negative_prompt=negative, generator=gens(0, 1), **kwargs)
    one_string = draw_raw(pipes, name, negative_prompt="a bird", generator=gens(0, 1), **kwargs)
    by_embeds = draw_raw(
        pipes, name, negative_prompt_embeds=pipe.encode_prompt(negative), generator=gens(0, 1), **kwargs
    )
    assert max_diff(by_text, by_embeds) < 1e-6 and max_diff(by_text, one_string) < 1e-6
    empty = draw_raw(pipes, name, generator=gens(0, 1), **kwargs)
    assert max_diff(by_text, empty) > 1e-3  # the negative prompt is used
    empty_embeds = pipe.encode_prompt(["", ""])
    assert (
        max_diff(empty, draw_raw(pipes, name, negative_prompt_embeds=empty_embeds, generator=gens(0, 1), **kwargs))
        < 1e-6
    )
    with pytest.raises(ValueError, match="negative prompts give"):
        draw_raw(pipes, name, negative_prompt=["a bird"] * 3, generator=gens(0, 1), **kwargs)


def test_one_step_text_guidance_is_off_by_default_and_uses_the_negative_prompt_above_one(pipes):
    name = "one_step_t2i"
    default = draw(pipes, name, [0, 1], generator=gens(0, 1))
    for scale in (None, 1.0, 0.5):
        assert max_diff(default, draw(pipes, name, [0, 1], guidance_scale=scale, generator=gens(0, 1))) < 1e-6
    # below or at 1 the negative prompt is not read
    assert max_diff(default, draw(pipes, name, [0, 1], negative_prompt="a bird", generator=gens(0, 1))) < 1e-6
    guided = draw(pipes, name, [0, 1], guidance_scale=3.0, generator=gens(0, 1))
    assert max_diff(default, guided) > 1e-3
    bird = draw(pipes, name, [0, 1], guidance_scale=3.0, negative_prompt="a bird", generator=gens(0, 1))
    assert max_diff(guided, bird) > 1e-3
    # G(z, n) + w·(G(z, p) − G(z, n)) with n = p is G(z, p)
    itself = draw(pipes, name, [0, 1], guidance_scale=3.0, negative_prompt=PROMPTS[:2], generator=gens(0, 1))
    assert max_diff(default, itself) < 1e-5


# 6. height and width


@pytest.mark.parametrize("name", TEXT)
def test_height_and_width_multiples_of_the_down_sampling_give_that_size(pipes, name):
    pipe = pipes[name]
    assert pipe.vae_scale_factor == 2
    default = draw(pipes, name, [0], generator=gens(0))
    assert default.shape == (1, 1, 16, 16)
    same = draw(pipes, name, [0], height=16, width=16, generator=gens(0))
    assert max_diff(default, same) == 0
    big = draw(pipes, name, [0, 1], height=24, width=32, generator=gens(0, 1))
    assert big.shape == (2, 1, 24, 32)
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1, 2, 12, 16, generator=generator)
    assert max_diff(big[:1], draw(pipes, name, [0], height=24, width=32, latents=z, generator=generator)) < 1e-5
    for height, width in ((18, 16), (16, 17), (16, 15)):
        with pytest.raises(ValueError, match="multiples of 4"):
            draw(pipes, name, [0], height=height, width=width)
    with pytest.raises(ValueError, match="latents have shape"):
        draw(pipes, name, [0, 1], height=24, width=32, latents=torch.zeros(2, 2, 8, 8))


# 7. class labels


@pytest.mark.parametrize("name", CLASS)
def test_ids_names_nested_lists_and_tensors_give_the_same_images(pipes, name):
    flat = draw_raw(pipes, name, class_labels=[1, 2, 1], generator=gens(0, 1, 2))
    for labels in (
        ["dog", "bird", "dog"],
        [[1], [2], [1]],
        [[1, 2], 1],
        [1, "bird", [torch.tensor(1)]],
        torch.tensor([1, 2, 1]),
        torch.tensor([[1], [2], [1]]),
        np.array([1, 2, 1]),
    ):
        assert max_diff(flat, draw_raw(pipes, name, class_labels=labels, generator=gens(0, 1, 2))) < 1e-6, labels
    for one in (1, "dog", [[1]], torch.tensor(1), np.int64(1)):
        assert max_diff(flat[:1], draw_raw(pipes, name, class_labels=one, generator=gens(0))) < 1e-6, one
    assert max_diff(flat[0], flat[1]) > 1e-3


@pytest.mark.parametrize("name", CLASS)
def test_out_of_range_ids_and_unknown_names_are_errors(pipes, name):
    for labels in ([3], [0, -1], [[1], [7]]):
        with pytest.raises(ValueError, match="out of range 0..2"):
            draw_raw(pipes, name, class_labels=labels)
    with pytest.raises(ValueError, match="valid names"):
        draw_raw(pipes, name, class_labels=["horse"])


def without_names(pipes, name, how: str):
    """The pipeline `name` without id2label: constructed without it, or with its config entry set to None."""
    teacher = pipes["teacher"]
    names = {} if how == "constructed" else {"id2label": teacher.id2label}
    if name == "teacher":
        pipe = ClassConditionalDiffusionPipeline(
            teacher.unet, teacher.scheduler, default_num_inference_steps=3, **names
        )
    else:
        pipe = one_step_class(teacher, **names)
    if how == "config_none":
        pipe.register_to_config(id2label=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def unguided(name, **kwargs) -> dict:
    kwargs = defaults(name, kwargs)
    if name == "teacher":
        kwargs["guidance_scale"] = 1.0
    return kwargs


@pytest.mark.parametrize("how", ["constructed", "config_none"])
@pytest.mark.parametrize("name", CLASS)
def test_without_id2label_ids_of_the_unet_work_and_names_are_errors(pipes, name, how):
    pipe = without_names(pipes, name, how)
    assert pipe.id2label == {} and pipe.num_classes == pipes[name].unet.config.num_class_embeds == 4
    named = pipes[name](class_labels=[1, 2], **unguided(name, generator=gens(0, 1))).images
    assert max_diff(pipe(class_labels=[1, 2], **unguided(name, generator=gens(0, 1))).images, named) < 1e-6
    last = pipe(class_labels=[3], **unguided(name, generator=gens(0))).images  # every class embedding can be asked for
    assert max_diff(last, named[:1]) > 1e-3
    with pytest.raises(ValueError, match="no id2label"):
        pipe(class_labels=["dog"], **unguided(name))
    with pytest.raises(ValueError, match="out of range 0..3"):
        pipe(class_labels=[4], **unguided(name))


# 8. callback_on_step_end


def final_images_of_zero_latents(pipe, n: int) -> torch.Tensor:
    """What the pipeline outputs when its last latents are all zeros."""
    zeros = torch.zeros(noise_shape(pipe, n))
    with torch.no_grad():
        decoded = pipe.decode(zeros) if hasattr(pipe, "decode") else zeros
    return (decoded / 2 + 0.5).clamp(0, 1)


@pytest.mark.parametrize("name", MULTI)
def test_callback_on_step_end_sees_every_step_and_can_replace_the_latents(pipes, name):
    pipe = pipes[name]
    calls = []

    def record(p, i, t, tensors):
        calls.append((p, i, t, sorted(tensors), tensors["latents"].clone()))
        return tensors

    plain = draw(pipes, name, [0, 1], num_inference_steps=3, generator=gens(0, 1))
    recorded = draw(pipes, name, [0, 1], num_inference_steps=3, generator=gens(0, 1), callback_on_step_end=record)
    assert max_diff(plain, recorded) == 0
    assert [c[1] for c in calls] == [0, 1, 2] and all(c[0] is pipe and c[3] == ["latents"] for c in calls)
    assert [int(c[2]) for c in calls] == [int(t) for t in pipe.scheduler.timesteps]
    assert calls[0][4].shape == noise_shape(pipe, 2) and max_diff(calls[0][4], calls[1][4]) > 0

    def zero_at_the_end(p, i, t, tensors):
        return {"latents": torch.zeros_like(tensors["latents"])} if i == 2 else {}

    zeroed = draw(
        pipes, name, [0, 1], num_inference_steps=3, generator=gens(0, 1), callback_on_step_end=zero_at_the_end
    )
    assert max_diff(zeroed, final_images_of_zero_latents(pipe, 2)) < 1e-5
    assert max_diff(zeroed, plain) > 1e-3
    none = draw(pipes, name, [0, 1], num_inference_steps=3, generator=gens(0, 1), callback_on_step_end=lambda *a: None)
    assert max_diff(none, plain) == 0
    with pytest.raises(ValueError, match="may only name 'latents'"):
        draw(
            pipes,
            name,
            [0],
            callback_on_step_end=record,
            callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
        )


# 9. one-step generators take one step


@pytest.mark.parametrize("name", ["one_step", "one_step_t2i"])
def test_one_step_pipelines_refuse_more_steps_and_say_why(pipes, name):
    with pytest.raises(ValueError, match="one-step generator") as error:
        draw(pipes, name, [0], num_inference_steps=4)
    assert "num_inference_steps must be 1 (got 4)" in str(error.value)
    explicit = draw(pipes, name, [0], num_inference_steps=1, generator=gens(0))
    assert max_diff(explicit, draw(pipes, name, [0], generator=gens(0))) == 0


# 10. dtypes and the old call forms


@pytest.mark.parametrize("name", ALL)
def test_float64_pipelines_draw_what_float32_ones_draw(folders, pipes, name):
    from diffusers import DDIMScheduler

    narrow, wide = load_all(folders)[name], load_all(folders)[name].to(torch.float64)
    assert wide.unet.dtype == torch.float64
    assert torch.isfinite(draw({name: wide}, name, [0, 1], generator=gens(0, 1))).all()  # noise drawn in float64
    if name in MULTI:  # no step noise: the same images from the same float32 latents
        for pipe in (narrow, wide):
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    z = torch.randn(noise_shape(narrow, 2), generator=torch.Generator().manual_seed(0))
    got = draw({name: wide}, name, [0, 1], latents=z)
    assert got.dtype == torch.float32 and max_diff(got, draw({name: narrow}, name, [0, 1], latents=z)) < 1e-3
    if name in TEXT:  # float32 embeddings, e.g. from a float32 pipeline, are read in the UNet's dtype
        kwargs = dict(latents=z, guidance_scale=2.0, negative_prompt=["a bird"] * 2)
        by_text = draw_raw({name: wide}, name, prompt=PROMPTS[:2], **kwargs)
        kwargs.pop("negative_prompt")
        embeds = dict(
            prompt_embeds=narrow.encode_prompt(PROMPTS[:2]),
            negative_prompt_embeds=narrow.encode_prompt(["a bird"] * 2),
        )
        assert max_diff(by_text, draw_raw({name: wide}, name, **embeds, **kwargs)) < 1e-5


def test_old_call_forms_keep_working(pipes):
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    teacher, one_step = pipes["teacher"], pipes["one_step"]
    a = teacher([1, 2], 1.0, 2, g(), "pt").images
    b = teacher(class_labels=[1, 2], guidance_scale=1.0, num_inference_steps=2, generator=g(), output_type="pt")
    assert max_diff(a, b.images) == 0 and a.shape == (2, 1, 8, 8)
    a = one_step([1, 2], g(), "pt").images
    assert max_diff(a, one_step(class_labels=[1, 2], generator=g(), output_type="pt").images) == 0
    assert one_step([1, 2], g(), "pt", False)[0].shape == (2, 1, 8, 8)
    t2i, one_step_t2i = pipes["t2i"], pipes["one_step_t2i"]
    a = t2i(PROMPTS[:2], None, 2.0, 2, g(), "pt").images
    b = t2i(prompt=PROMPTS[:2], guidance_scale=2.0, num_inference_steps=2, generator=g(), output_type="pt")
    assert max_diff(a, b.images) == 0 and a.shape == (2, 1, 16, 16)
    a = one_step_t2i(PROMPTS[:2], g(), "pt").images
    assert max_diff(a, one_step_t2i(prompt=PROMPTS[:2], generator=g(), output_type="pt").images) == 0
    assert max_diff(a[:1], one_step_t2i(PROMPTS[0], g(), "pt").images) < 1e-4  # one string is one prompt


# 11. model CPU offload


@pytest.mark.parametrize("name", ALL)
def test_model_cpu_offload_draws_what_the_accelerator_draws(folders, name):
    if not torch.cuda.is_available():
        pytest.skip("enable_model_cpu_offload needs an accelerator")
    on_device = load_all(folders)[name].to("cuda")
    offloaded = load_all(folders)[name]
    offloaded.enable_model_cpu_offload()
    expected = draw({name: on_device}, name, [0, 1], generator=gens(0, 1))
    got = draw({name: offloaded}, name, [0, 1], generator=gens(0, 1))
    assert max_diff(got.cpu(), expected.cpu()) < 1e-4
    assert all(p.device.type == "cpu" for p in offloaded.unet.parameters())  # moved back after the call
