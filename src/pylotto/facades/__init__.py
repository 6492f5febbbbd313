"""Facades: translate wire messages of each dialect to capability calls and back."""
