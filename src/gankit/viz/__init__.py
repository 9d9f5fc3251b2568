"""Pictures: plots for low-dimensional runs."""
