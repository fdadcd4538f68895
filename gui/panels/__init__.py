"""Dock panels of the main window: image list, question, answer, mask candidates."""
