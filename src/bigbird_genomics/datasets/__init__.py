"""Data-set builders: the embedded demo's motif helpers and the real promoter, chromatin and
long-range builders. Each module writes labelled FASTA that `bigbird-genomics tokenize` reads."""
