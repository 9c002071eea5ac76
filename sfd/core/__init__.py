"""The building blocks every layer above uses: forget specs and prompts, losses, metrics, sampling, loading, atomic
files, precision and the shipped paths. Imports only `sfd.pipelines`."""
