"""Reading and writing the field's files: FASTA, label tables, BED intervals and peaks, tables,
and the atomic writer every output goes through. Knows nothing of tokens or models."""
