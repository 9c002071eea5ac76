"""The Gradio demo: built as a function, errors shown in the page, and an end-to-end browser test."""

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
gr = pytest.importorskip("gradio")

from sfd.demo import app as demo_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_wrong_paths_and_bounds_give_messages_not_stack_traces(tiny_teacher, tmp_path):
    outs = demo_app.compare(str(tmp_path / "missing"), tiny_teacher, "cat", 0, 2)
    assert outs[-1].startswith("⚠️") and "no model at" in outs[-1]
    outs = demo_app.compare(tiny_teacher, tiny_teacher, "cat", 0, 99)
    assert "between 1 and 16" in outs[-1]
    outs = demo_app.compare(tiny_teacher, tiny_teacher, "cat", -5, 2)
    assert "seed must be" in outs[-1]
    outs = demo_app.compare(tiny_teacher, tiny_teacher, "cat", 0, 2)  # classes the shipped judge does not know
    assert outs[-1].startswith("⚠️") and "the demo's judge cannot judge this class" in outs[-1]
    assert isinstance(demo_app.build_app(tiny_teacher, tiny_teacher), gr.Blocks)


def test_all_classes_view_gives_one_row_per_class(tiny_teacher, monkeypatch):
    monkeypatch.setattr(demo_app, "_judge", lambda: pytest.fail("the grid view needs no classifier"))
    teacher_grid, model_grid, message = demo_app.all_classes(tiny_teacher, tiny_teacher, 0)
    assert message == "" and teacher_grid.size == model_grid.size
    assert teacher_grid.height > 3 * 8 * 2  # three rows of 8-pixel images, scaled ×2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_browser_shows_the_teacher_drawing_the_class_and_the_model_not():
    from playwright.sync_api import sync_playwright

    model = demo_app.DEFAULT_MODEL
    forgotten = demo_app._load(str(model)).id2label[demo_app._load(str(model)).config.forgotten[0]]
    port = free_port()
    app = demo_app.build_app()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.locator("#class-dropdown input").click()
            page.get_by_role("option", name=forgotten, exact=True).click()
            page.locator("#generate").click()
            page.wait_for_function(
                "document.querySelector('#model-verdict').innerText.includes('classified')", timeout=240_000
            )
            teacher_text = page.locator("#teacher-verdict").inner_text()
            model_text = page.locator("#model-verdict").inner_text()
            assert f"draws {forgotten}" in teacher_text and "does not draw" not in teacher_text
            assert f"does not draw {forgotten}" in model_text
            assert page.locator("#teacher-gallery img").count() >= 8
            assert page.locator("#model-gallery img").count() >= 8
            for gallery in ("#teacher-gallery", "#model-gallery"):
                page.wait_for_function(
                    f"Array.from(document.querySelectorAll('{gallery} img')).every(i => i.complete && i.naturalWidth > 0)",
                    timeout=30_000,
                )
            page.wait_for_timeout(500)
            shot = ROOT / "assets" / "demo.png"
            page.screenshot(path=str(shot.with_suffix(".tmp.png")), full_page=True)
            shutil.move(shot.with_suffix(".tmp.png"), shot)
            browser.close()
    finally:
        app.close()
