"""The tests of messagebus.testing, the testing kit users opt into."""
