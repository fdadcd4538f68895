"""Dock panels of the main window: images, objects, question, answer, mask candidates."""
