"""The main screen's panels, each fed by the view of the current step."""
