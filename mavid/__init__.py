"""mavid."""
