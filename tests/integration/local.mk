# tests/integration: see owner notes
