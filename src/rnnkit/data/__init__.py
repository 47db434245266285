"""Data: readers, tokenizers, vocabulary and batching."""
