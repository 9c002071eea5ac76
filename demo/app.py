"""Gradio demo: a teacher and an unlearned one-step model, side by side, with the classifier's verdicts.

    python demo/app.py [--teacher assets/teacher] [--model assets/sfd-trouser] [--port 7860]

`build_app()` returns the `gradio.Blocks`, so tests can start it on a free port.
"""

from __future__ import annotations

import argparse
from functools import lru_cache
from pathlib import Path

from sfd.core.loading import load_pipeline
from sfd.core.paths import ASSETS, DEFAULT_TEACHER
from sfd.core.sampling import nfe_per_image, sample_classes
from sfd.core.viz import class_grid
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.pipelines.labels import postprocess

DEFAULT_MODEL = ASSETS / "sfd-trouser"
MAX_SAMPLES, MAX_SEED = 16, 2**31 - 1


class DemoError(ValueError):
    """Shown in the page instead of a stack trace."""


@lru_cache(maxsize=4)
def _load(path: str):
    p = Path(path).expanduser()
    if not (p / "model_index.json").exists():
        raise DemoError(f"no model at `{path}` (expected a pipeline folder with model_index.json)")
    try:
        pipe = load_pipeline(str(p))
    except (ValueError, OSError) as err:
        raise DemoError(f"`{path}` cannot be used by the demo: {err}") from err
    if not hasattr(pipe, "id2label") or not pipe.id2label:
        raise DemoError(f"`{path}` is not a class-conditional model of this project")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@lru_cache(maxsize=1)
def _judge():
    return ImageClassifierJudge.from_pretrained()


def _check(teacher_path: str, model_path: str, n: int, seed: int):
    teacher, model = _load(teacher_path.strip()), _load(model_path.strip())
    if teacher.id2label != model.id2label:
        raise DemoError("the two models have different classes; pick a teacher and a model made from it")
    if not 1 <= int(n) <= MAX_SAMPLES:
        raise DemoError(f"number of samples must be between 1 and {MAX_SAMPLES}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise DemoError(f"seed must be between 0 and {MAX_SEED}")
    return teacher, model


def _sample(pipe, labels: list[int], seed: int):
    images, seconds = sample_classes(pipe, labels, batch_size=len(labels), seed=int(seed), progress=False)
    probs = _judge().probs(images)
    return images, probs, seconds


def _verdict(side: str, class_name: str, probs, class_id: int, seconds: float, nfe: int) -> str:
    label_map = _judge().match_labels({class_id: class_name})
    hits = int((probs.argmax(-1) == label_map[class_id]).sum())
    n = len(probs)
    verb = "draws" if hits * 2 > n else "does not draw"
    return (
        f"**{side}** {verb} *{class_name}*: {hits}/{n} samples classified as {class_name} "
        f"({seconds:.2f} s, {nfe} network evaluations per image)"
    )


def compare(teacher_path: str, model_path: str, class_name: str, seed: float, n: float):
    """One class: teacher samples and unlearned samples for the same seed, with verdicts and timings."""
    try:
        teacher, model = _check(teacher_path, model_path, int(n), int(seed))
        if class_name not in model.labels:
            raise DemoError(f"unknown class {class_name!r}; valid: {sorted(model.labels)}")
        cid = model.labels[class_name]
        try:
            _judge().match_labels({cid: class_name})
        except ValueError as err:  # e.g. an ImageNet DiT: the demo's judge is the shipped Fashion-MNIST classifier
            raise DemoError(f"the demo's judge cannot judge this class: {err}") from None
        out = []
        for side, pipe in (("Teacher", teacher), ("Unlearned", model)):
            images, probs, seconds = _sample(pipe, [cid] * int(n), int(seed))
            nfe = nfe_per_image(pipe)
            pil = postprocess(images * 2 - 1, "pil")
            out += [[p.resize((112, 112)) for p in pil], _verdict(side, class_name, probs, cid, seconds, nfe)]
        forgotten = [model.id2label[i] for i in model.config.get("forgotten", [])]
        status = f"Forgotten by the unlearned model: {', '.join(forgotten) or 'none'}."
        return out[0], out[1], out[2], out[3], status
    except DemoError as err:
        return [], "", [], "", f"⚠️ {err}"


def all_classes(teacher_path: str, model_path: str, seed: float):
    """Every class at once, one row per class, forgotten rows marked, for both models."""
    try:
        teacher, model = _check(teacher_path, model_path, 1, int(seed))
        per_row = 6
        ids = sorted(model.id2label)
        labels = [c for c in ids for _ in range(per_row)]
        marked = [i for i, c in enumerate(ids) if c in set(model.config.get("forgotten", []))]
        names = [model.id2label[c] for c in ids]
        grids = []
        for pipe in (teacher, model):
            images, _ = sample_classes(pipe, labels, batch_size=len(labels), seed=int(seed), progress=False)
            grids.append(class_grid(images, per_row, marked, row_names=names))
        return grids[0], grids[1], ""
    except DemoError as err:
        return None, None, f"⚠️ {err}"


def build_app(teacher: str | Path = DEFAULT_TEACHER, model: str | Path = DEFAULT_MODEL):
    import gradio as gr

    try:
        pipe = _load(str(model))
        classes = [v for _, v in sorted(pipe.id2label.items())]
        forgotten = [pipe.id2label[i] for i in pipe.config.get("forgotten", [])]
    except DemoError:
        classes, forgotten = [], []
    with gr.Blocks(title="sfd: before and after forgetting") as app:
        gr.Markdown(
            "# Score Forgetting Distillation: before and after\n"
            "Left, the teacher (multi-step sampler); right, the unlearned one-step model, same seeds. "
            "Under each side, the classifier's verdict and the time it took."
        )
        with gr.Row():
            teacher_box = gr.Textbox(str(teacher), label="Teacher folder", max_lines=1, max_length=500)
            model_box = gr.Textbox(str(model), label="Unlearned model folder", max_lines=1, max_length=500)
        status = gr.Markdown(f"Forgotten by the unlearned model: {', '.join(forgotten) or 'none'}.", elem_id="status")
        with gr.Tab("One class"):
            with gr.Row():
                class_dd = gr.Dropdown(
                    classes,
                    value=forgotten[0] if forgotten else (classes[0] if classes else None),
                    label="Class",
                    allow_custom_value=False,
                    elem_id="class-dropdown",
                )
                seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED)
                n = gr.Slider(1, MAX_SAMPLES, value=8, step=1, label="Samples")
                go = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Row():
                with gr.Column():
                    t_gallery = gr.Gallery(label="Teacher", columns=4, height=300, elem_id="teacher-gallery")
                    t_verdict = gr.Markdown(elem_id="teacher-verdict")
                with gr.Column():
                    m_gallery = gr.Gallery(
                        label="Unlearned (one step)", columns=4, height=300, elem_id="model-gallery"
                    )
                    m_verdict = gr.Markdown(elem_id="model-verdict")
            go.click(
                compare,
                [teacher_box, model_box, class_dd, seed, n],
                [t_gallery, t_verdict, m_gallery, m_verdict, status],
            )
        with gr.Tab("All classes"):
            all_seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED)
            all_go = gr.Button("Show every class", elem_id="all-classes")
            with gr.Row():
                t_grid = gr.Image(label="Teacher", type="pil")
                m_grid = gr.Image(label="Unlearned (forgotten rows marked red)", type="pil")
            all_go.click(all_classes, [teacher_box, model_box, all_seed], [t_grid, m_grid, status])
    return app


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=str(DEFAULT_TEACHER))
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--port", type=int, default=7860)
    args = p.parse_args(argv)
    build_app(args.teacher, args.model).launch(server_name="127.0.0.1", server_port=args.port)


if __name__ == "__main__":
    main()
