"""Synthetic inputs for tests and benchmarks: a still fake robot's messages, a reduced CogACT release."""
