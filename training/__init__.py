"""Training tooling for edge-fer (needs the ``[train]`` extra: TensorFlow)."""
