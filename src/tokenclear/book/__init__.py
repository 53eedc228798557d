"""Positions of the accounts whose margin is computed."""
