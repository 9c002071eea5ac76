"""`sfd-demo`: start the Gradio app in demo/app.py (needs the `demo` extra and an editable install)."""

import runpy
import sys

from .config import PROJECT_ROOT


def main() -> None:
    app = PROJECT_ROOT / "demo" / "app.py"
    if not app.exists():
        raise SystemExit(f"demo app not found at {app}; install the project with `pip install -e \".[demo]\"`")
    sys.argv[0] = str(app)
    runpy.run_path(str(app), run_name="__main__")
