"""The tracing of the async bus and unit of work; its sync twin is generated."""
