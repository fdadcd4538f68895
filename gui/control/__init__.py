"""Control: what the user's actions do (edits pushed on undo stacks, requests to the engine, replies put back) and how the window shows it; every action is wired here."""
