"""What members do: upvote, comment, submit papers, claim authorship. Operations over the store."""
