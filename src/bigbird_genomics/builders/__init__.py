"""Data-set builders: the embedded demo data and the real promoter, chromatin and long-range
builders. Each writes labelled FASTA that `bigbird-genomics tokenize` reads; none knows of
models."""
