"""The canvas and its tools: the image view, its layers and overlays, and the point, box, brush and polygon gestures."""
