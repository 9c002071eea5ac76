"""The Gradio demo (`sfd-demo`, or `python demo/app.py`): a teacher and an unlearned model side by side."""
