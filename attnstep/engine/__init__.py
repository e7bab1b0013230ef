"""The engine: runs a model one decoder step at a time and yields trace records; loads checkpoints (the only layer above the model that imports torch)."""
