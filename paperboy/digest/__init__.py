"""Email digests: who is due (plan), what each gets (compose), the mail itself (render), and the outbox
that sends each exactly once (send)."""
