"""clipeval's CLIP exporter: Hugging Face CLIP checkpoints (or seeded random ones) to ONNX bundles."""
