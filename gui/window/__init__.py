"""The window: the main window's composition (docks, toolbar, menus, status bar, messages), its panels and its dialogs."""
