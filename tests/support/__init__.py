"""What the tests share: stand-in pipelines, GUI harnesses, dataset readers, project writers, tolerances (no tests here)."""
