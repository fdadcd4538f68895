"""Pure numpy on images and maps: reading images, masks and their contours, heat-map points,
fusion, overlays. Frames are documented per function: (x, y) pixels or [G, G] grid cells."""
