"""EfficientSAM, ours: the published model (encoder, decoder) and the segmenter that encodes an
image once and decodes every click."""
