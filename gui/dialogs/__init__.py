"""Dialogs: help, models, export."""
