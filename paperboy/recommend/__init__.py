"""A member's own feed: `rank` (pure: what to show them and why) and `feed` (gathers what they showed
interest in from the store and ranks new and recent papers for them)."""
