"""Meetings that organisers live in: sign-in, twinning pairs and scheduled sessions."""
