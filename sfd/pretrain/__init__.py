"""Scripts that train the embedded Fashion-MNIST assets (teacher, classifier, CLIP, FID statistics)."""
