"""Microsoft Teams: an Adaptive Card to a Teams Workflows webhook URL."""
