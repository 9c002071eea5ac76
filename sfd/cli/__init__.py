"""Command-line tools: sfd-train, sfd-eval, sfd-attack."""
