"""The GR00T N1.6 fine-tuning data path: processor files from a dataset, raw samples -> N1.6 batches."""
