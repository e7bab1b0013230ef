"""Pictures and tables made from traces, and text made safe for a terminal: torch-free and Textual-free."""
