"""A trained model without Lightning or Hydra: checkpoint loading, genome scans (predict),
evaluation of a tokenized split and the metrics both training and evaluation report."""
