# bench/: benchmarks (not tests); run by hand, see docs/benchmarks.md.
