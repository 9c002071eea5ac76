"""Training: the typed config, the teachers' conditioning, the override choice, the trainer, layered erasure, the
model card and `forget()` / `distill()`."""
