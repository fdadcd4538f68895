"""Dialogs of the main window: help, models, export, import, the class list and the class picker."""
