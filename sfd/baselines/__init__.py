"""Unlearning methods SFD is compared against (bench/run.py): ESD-style fine-tuning, retraining."""
