"""ChatGO: a Matrix homeserver. See ../shared/DESIGN.md for the layers."""
