"""The unit of work, message store and repository base of the SQLAlchemy adapter, asynchronous."""
