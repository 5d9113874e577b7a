"""Scripts the process-model tests run in fresh interpreters (``python -m tests.proc_scripts.run``)."""
