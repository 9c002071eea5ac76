"""Checking a model: judges (classifier, CLIP), class and text evaluation, reference statistics, gold alignment,
reports and plots, the relearning attack. Never imports `sfd.training`."""
