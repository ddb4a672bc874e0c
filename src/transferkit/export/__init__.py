"""Artifact directories (save/load) and exports to other runtimes."""
