"""lockflow: a data pipeline that people steer."""

__version__ = "0.1.0"
