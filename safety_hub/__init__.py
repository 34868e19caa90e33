"""safety-hub: hazardous-chemicals safety monitoring backend for a chemical industrial park."""

__version__ = "0.1.0"
