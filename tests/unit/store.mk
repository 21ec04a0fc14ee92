# tests/unit/store.mk: segment store tests.
