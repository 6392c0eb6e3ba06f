"""Operating Quell: worker heartbeats, periodic jobs, health, metrics, housekeeping and backups."""
