"""Generic webhooks: Soda's payload shape, signed the Standard Webhooks way."""
