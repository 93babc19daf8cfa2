"""The cookbook: chapters that build the reading club application, run as tests."""
