# tests/raft: see owner notes
