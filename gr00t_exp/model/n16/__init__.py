"""GR00T N1.6 (model_type `Gr00tN1d6`): config, model, checkpoint I/O, processor (docs/model_n16.md)."""
