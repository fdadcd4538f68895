"""The workspace: the images of the window and their sessions over the project, undo stacks, opening folders, the external-change watch, data paths and preferences."""
