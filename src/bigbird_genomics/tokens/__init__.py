"""DNA to token ids: the k-mer tokenizer, the window planner, and tokenized data sets on disk
(built from FASTA, memory-mapped for reading). Knows nothing of models."""
