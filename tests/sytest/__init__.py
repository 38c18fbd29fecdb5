"""sytest, the Matrix integration test suite, run against ChatGO (`python -m tests.sytest.run`; see NOTES.md)."""
