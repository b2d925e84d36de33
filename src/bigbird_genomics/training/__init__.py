"""Training with PyTorch Lightning under Hydra: the app (`bigbird-genomics-train`), the run it
drives, resuming, the Lightning module and data module, callbacks, config checks and W&B."""
