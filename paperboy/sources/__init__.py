"""Upstream sources. They fetch and parse into paperboy.models; they never touch the database."""
