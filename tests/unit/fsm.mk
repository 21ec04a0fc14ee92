# tests/unit: see owner notes
