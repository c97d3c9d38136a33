"""The web app: pages and the JSON API over the same data functions (listings.py)."""
