"""The screens and dialogs that open over the main screen."""
