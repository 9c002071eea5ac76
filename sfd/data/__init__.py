"""Dataset loading for the project's own recipes (Fashion-MNIST from Debian's package)."""
