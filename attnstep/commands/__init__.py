"""What the command line composes: each module joins engine, trace and UI for one command."""
